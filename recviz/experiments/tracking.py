"""MLflow tracking: a stored run sent to an MLflow tracking store, next to a team's other experiments.

The run store stays the truth. MLflow gets a copy of a *finished, stored* run, made by one function
(`export`) whoever asks for it: `recviz export --mlflow`, `recviz train/sweep --mlflow`, the Train
page's switch and `recviz.train(..., mlflow=...)`. A run that should be logged when it finishes
carries a request file in its run directory (`request`); whoever finishes the run
(`record.finish`) then exports it (`export_requested`). So the worker, the CLI and a notebook log
runs the same way, and a run trained without MLflow can be sent later.

What one run becomes in MLflow:
- params: the config, flat — run settings, `model`, `preset` and the model's options by name;
- metrics: per epoch (step = the epoch's position in the run) `train_loss`, `valid_<metric>` and
  `epoch_seconds`; NeuMF's pre-training epochs under their phase (`gmf/train_loss`); then the test
  metrics at the best validation epoch, `train_seconds`, `best_epoch` and `epochs_run`;
- tags: `protocol`, `protocol_detail`, `dataset`, `model`, `recviz.run_id`, `recviz.store`;
- artifacts under `recviz/`: the weights (`model.pt`), top-N lists (`topn.npz`, read with
  `ids.npz`), per-user test results, history and `meta.json`;
- a sweep: one parent run (tag `recviz.role` = sweep) with a child per value, found again by its
  sweep id, so runs of one sweep exported one by one still share their parent.

MLflow metric names cannot hold `@`: `HR@10` is logged as `HR_at_10` (`metric_name`). MLflow is
an optional dependency, imported only here and only when something is logged.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

from recviz.errors import RecvizError
from recviz.experiments.store import RunStore

REQUEST_FILE = "mlflow.json"
EXPERIMENT = "recviz"
INSTALL_FIX = 'install it: pip install "recviz[mlflow]" (or pip install mlflow)'


def metric_name(name: str) -> str:
    """An MLflow-safe metric name: `HR@10` → `HR_at_10` (MLflow refuses `@`)."""
    return str(name).replace("@", "_at_")


def installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("mlflow") is not None


def check_installed() -> None:
    if not installed():
        raise RecvizError("MLflow is not installed, so runs cannot be logged to it", fix=INSTALL_FIX)


# the tracking URI schemes MLflow can store runs in (a database URI may name its driver: postgresql+psycopg2)
SCHEMES = ("http", "https", "sqlite", "file", "databricks", "databricks-uc", "postgresql", "mysql", "mssql")
URI_FIX = ("give http(s)://host:port for a tracking server or sqlite:///path/to/mlflow.db for a local "
           "store, or --mlflow alone (mlflow=True) for MLflow's default store")


def check(uri) -> str | None:
    """The tracking URI to use, checked before anything trains: None (or True, or "") is MLflow's
    default store — `MLFLOW_TRACKING_URI` when set, which is then checked too. Anything else that
    is not text naming a store MLflow knows is one RecvizError that names it, with the fix."""
    import os
    import sys

    if uri is None or uri is True or uri == "":
        env = os.environ.get("MLFLOW_TRACKING_URI")
        if env is not None:
            _check_text(env, " (from MLFLOW_TRACKING_URI)")
        elif "mlflow" in sys.modules:  # a notebook may have set its own with mlflow.set_tracking_uri
            check_sqlite(sys.modules["mlflow"].get_tracking_uri())
        else:  # MLflow's default store: ./mlflow.db, in the working directory
            check_sqlite(f"sqlite:///{Path.cwd() / 'mlflow.db'}")
        return None
    if not isinstance(uri, str):
        raise RecvizError(f"an MLflow tracking URI is text, not {type(uri).__name__} ({uri!r})", fix=URI_FIX)
    return _check_text(uri, "")


def _check_text(uri: str, where: str) -> str:
    from urllib.parse import urlsplit

    text = uri.strip()
    if not text:
        raise RecvizError(f"the MLflow tracking URI{where} is blank", fix=URI_FIX)
    scheme = urlsplit(text).scheme.lower() if "://" in text or text.startswith("file:") else ""
    if scheme and scheme.split("+")[0] not in SCHEMES:
        raise RecvizError(f"MLflow cannot store runs at '{text}'{where}: it does not know the scheme '{scheme}'",
                          fix=URI_FIX)
    check_sqlite(text)
    return text


def _sqlite_file(uri: str) -> Path | None:
    """The database file of a `sqlite:///` tracking URI (None: another kind of store, or in memory)."""
    from urllib.parse import unquote

    if not uri.startswith("sqlite:///"):
        return None
    raw = unquote(uri[len("sqlite:///"):].split("?", 1)[0])
    return None if raw in ("", ":memory:") else Path(raw).absolute()


def check_sqlite(uri: str) -> None:
    """A SQLite store must be a file MLflow can create or write, in a folder it can write (for the
    journal): checked before MLflow touches it, since MLflow retries an unopenable database for
    minutes and then names no file."""
    import os

    path = _sqlite_file(uri)
    if path is None:
        return
    fix = "give --mlflow sqlite:///PATH/mlflow.db with PATH a folder you can write"
    if path.is_dir():
        raise RecvizError(f"the MLflow store {uri} is a folder, not a database file", fix=fix)
    folder = path.parent
    if not folder.is_dir():
        raise RecvizError(f"the folder of the MLflow store {uri} ({folder}) does not exist", fix=fix)
    if path.exists() and not path.is_file():
        raise RecvizError(f"the MLflow store {uri} is not a regular file", fix=fix)
    probe = folder / f".recviz-mlflow-probe-{os.getpid()}"
    try:  # os.access says yes to root on a read-only mount: try it
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        probe.unlink()
        if path.exists():
            os.close(os.open(path, os.O_RDWR))
    except OSError as e:
        raise RecvizError(f"the MLflow store {uri} cannot be written ({e.strerror or e})", fix=fix) from None


def params_of(config) -> dict[str, str]:
    """The config as MLflow params: every run setting, model, preset and the model's options,
    by the names `RunConfig.build` takes, values as text (MLflow stores params as text)."""
    flat = {k: v for k, v in config.to_dict().items() if k != "options"} | dict(config.options)
    return {k: json.dumps(v) if isinstance(v, (list, tuple, dict)) else str(v) for k, v in flat.items()}


# ---- asking for an export when a run finishes ---------------------------------------------------------
def request(run_dir: Path, uri: str | None) -> None:
    """Ask for this run to be logged to MLflow (`uri`; None or "" = MLflow's default store) once
    it finishes. Fails at once, with how to install it, when MLflow is missing, and with the
    fix when the URI is one MLflow cannot use."""
    check_installed()
    uri = check(uri)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / REQUEST_FILE).write_text(json.dumps({"uri": uri or None}))


def export_requested(store: RunStore, run_id: int) -> str | None:
    """Export a finished run that asked for it; returns its MLflow run id (None: not asked, or
    the export failed). The run is done and stored whatever MLflow does: a failure to log it is
    reported on stderr (the worker's log, the CLI's terminal) with how to send it again, never
    turned into a failed run."""
    path = store.run_dir(run_id) / REQUEST_FILE
    if not path.exists():
        return None
    uri = json.loads(path.read_text()).get("uri")
    try:
        return export(store, [run_id], uri)[run_id]
    except Exception as exc:  # noqa: BLE001 — the run itself succeeded: one line, never a traceback
        import sys

        again = " ".join(filter(None, ["recviz export --mlflow", uri, str(run_id)]))
        print(f"recviz: run {run_id} is stored, but logging it to MLflow failed "
              f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); send it again "
              f"with `{again}`", file=sys.stderr, flush=True)
        return None


# ---- the export -------------------------------------------------------------------------------------
def client(uri: str | None = None):
    """An MlflowClient for `uri` (None: MLflow's default, `MLFLOW_TRACKING_URI` or its local
    SQLite store). A client, not the fluent API: nothing global (an active run) is left behind
    in the caller's process, which may be a notebook with its own MLflow runs."""
    check_installed()
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri or None)


def export(store: RunStore, run_ids, uri: str | None = None, experiment: str = EXPERIMENT) -> dict[int, str]:
    """Log stored, finished runs to MLflow; returns {RecViz run id: MLflow run id}. Runs of a
    sweep go under that sweep's parent run (created the first time)."""
    uri = check(uri)
    runs = [store.get(int(r)) for r in run_ids]
    for run in runs:
        if run.status != "done":
            raise RecvizError(f"run {run.id} is {run.status}; only finished runs can be logged to MLflow",
                              fix="pick runs from `recviz runs --status done`")
    check_installed()
    import mlflow

    target = uri or mlflow.get_tracking_uri()  # what MLflow will use: named in every message
    check_sqlite(target)
    again = " ".join(["recviz export --mlflow", *([uri] if uri else []), *(str(r.id) for r in runs)])
    fix = f"check that the MLflow store at {target} is up and writable, then send the runs again: `{again}`"
    _probe(target, fix)
    try:
        with _one_exporter(target, store), short_requests():
            c = client(uri)
            exp_id = _experiment_id(c, experiment)
            return {run.id: _log_run(c, exp_id, store, run) for run in runs}
    except RecvizError:
        raise
    except Exception as exc:  # noqa: BLE001 — MLflow's own errors, said with the store they concern
        first = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise RecvizError(f"could not log to MLflow at {target}: {first}", fix=fix) from None


@contextlib.contextmanager
def _one_exporter(target: str, store: RunStore):
    """Hold the export lock (an exclusive flock; the kernel drops it when a process dies): one
    export at a time per SQLite MLflow store (the lock file beside it), else per RecViz store. Runs
    trained side by side finish together, and MLflow's steps are get-or-create without a lock:
    two processes opening a new SQLite store both create its tables ("duplicate column name"),
    and both see no experiment, or no parent run for the sweep, and make one each — so a run was
    lost, or a sweep had two parents."""
    import fcntl
    import os

    db = _sqlite_file(target)
    path = db.with_name(db.name + ".recviz-export.lock") if db is not None else \
        store.path.parent / "mlflow-export.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _experiment_id(c, name: str) -> str:
    """The experiment `name`'s id, created if missing — by another process meanwhile too (one
    outside the export lock: another RecViz store's export to the same server): MLflow then says
    RESOURCE_ALREADY_EXISTS, and the one it made is used."""
    from mlflow.exceptions import MlflowException

    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return c.create_experiment(name, artifact_location=_artifacts_beside(c.tracking_uri))
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS" or (exp := c.get_experiment_by_name(name)) is None:
            raise
        return exp.experiment_id


# MLflow's HTTP client waits 120 s per request and retries 7 times with backoff: minutes against a
# dead server. For an export (and only while it runs) a request gets HTTP_TIMEOUT_S and no retries,
# unless the user set these variables themselves.
HTTP_TIMEOUT_S = 10
PROBE_TIMEOUT_S = 3.0


@contextlib.contextmanager
def short_requests():
    import os

    settings = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(HTTP_TIMEOUT_S),
                "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0", "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0"}
    ours = {k: v for k, v in settings.items() if k not in os.environ}
    os.environ.update(ours)
    try:
        yield
    finally:
        for k in ours:
            os.environ.pop(k, None)


def _probe(uri: str, fix: str) -> None:
    """A tracking server that nothing answers at is one message at once, not MLflow's retries."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as e:
        raise RecvizError(f"could not log to MLflow at {uri}: nothing answers at {parts.hostname}:{port} "
                          f"({e.strerror or e})", fix=fix) from None


def _artifacts_beside(uri: str) -> str | None:
    """For a SQLite store, keep the artifacts in `mlruns/` beside the database file rather than
    in the current directory (MLflow's default): the store is then one folder that can be moved.
    None (MLflow's choice) for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri[len("sqlite:///"):]).resolve()
    return (db.parent / "mlruns").as_uri()


def _log_run(c, exp_id: str, store: RunStore, run) -> str:
    summary = run.summary or {}
    tags = {"mlflow.runName": run.name or f"#{run.id} {run.model} on {run.dataset}", "recviz.run_id": str(run.id),
            "recviz.store": str(store.path), "dataset": run.dataset, "model": run.model, "protocol": run.protocol,
            "protocol_detail": run.config.protocol_detail}
    if run.sweep_id not in (None, ""):
        tags["mlflow.parentRunId"] = _sweep_parent(c, exp_id, store, run)
        tags["recviz.sweep_id"] = str(run.sweep_id)
    mlrun = c.create_run(exp_id, start_time=_ms(run.started_at or run.created_at), tags=tags)
    rid = mlrun.info.run_id
    try:
        _fill_run(c, rid, store, run, summary)
    except BaseException:  # never left RUNNING forever: the MLflow run says it failed
        with contextlib.suppress(Exception):
            c.set_terminated(rid, "FAILED", end_time=_ms(time.time()))
        raise
    return rid


def _fill_run(c, rid: str, store: RunStore, run, summary: dict) -> None:
    from mlflow.entities import Metric, Param

    now = _ms(time.time())
    metrics = [Metric(key, float(value), now, step) for key, value, step in _epoch_metrics(store.epochs(run.id))]
    final = {metric_name(k): v for k, v in (summary.get("metrics") or {}).items()}
    final |= {k: summary.get(k) for k in ("train_seconds", "best_epoch", "epochs_run", "samples_per_second")}
    metrics += [Metric(k, float(v), now, 0) for k, v in final.items() if v is not None]
    params = [Param(k, v) for k, v in params_of(run.config).items()]
    for start in range(0, max(len(metrics), len(params)), 100):  # MLflow's batch limits
        c.log_batch(rid, metrics=metrics[start:start + 100], params=params[start:start + 100])
    run_dir = store.run_dir(run.id)
    from recviz.experiments import artifacts

    for name in artifacts.FILES + artifacts.OPTIONAL_FILES:
        if (run_dir / name).exists():
            c.log_artifact(rid, str(run_dir / name), artifact_path="recviz")
    c.set_terminated(rid, "FINISHED", end_time=_ms(run.finished_at or time.time()))


def _epoch_metrics(epochs):
    """(name, value, step) per number of each stored epoch; the model's own phase unprefixed."""
    if epochs.empty:
        return
    last_phase = epochs["phase"].iloc[-1]
    valid_cols = [c for c in epochs.columns if c.startswith("valid_")]
    for step, row in enumerate(epochs.to_dict("records"), start=1):
        prefix = "" if row["phase"] == last_phase else f"{row['phase']}/"
        values = {"train_loss": row.get("train_loss"), "epoch_seconds": row.get("seconds")}
        values |= {metric_name(c): row.get(c) for c in valid_cols}
        for key, value in values.items():
            if value is not None and value == value:  # not NaN
                yield prefix + key, value, step


def _sweep_parent(c, exp_id: str, store: RunStore, run) -> str:
    """The MLflow run that stands for the sweep `run` belongs to: found by its tags, else made."""
    sweep_id = str(run.sweep_id).replace("'", "")
    found = c.search_runs([exp_id], filter_string=f"tags.`recviz.sweep_id` = '{sweep_id}' and "
                                                  f"tags.`recviz.role` = 'sweep'", max_results=1)
    if found:
        return found[0].info.run_id
    from recviz.experiments.sweep import param_of

    parent = c.create_run(exp_id, start_time=_ms(run.created_at), tags={
        "mlflow.runName": f"sweep {run.sweep_id}", "recviz.role": "sweep", "recviz.sweep_id": sweep_id,
        "recviz.store": str(store.path), "dataset": run.dataset, "model": run.model, "protocol": run.protocol})
    c.log_param(parent.info.run_id, "sweep_param", str(param_of(run.sweep_id)))
    c.set_terminated(parent.info.run_id, "FINISHED")
    return parent.info.run_id


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
