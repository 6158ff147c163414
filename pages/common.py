"""Widgets and cached handles shared by the pages. Only Streamlit glue lives here: anything worth
testing is computed in `recviz`."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import streamlit as st

from recviz.config import RunConfig
from recviz.errors import RecvizError, StoreError

APP = Path(__file__).resolve().parents[1] / "app.py"
DEFAULT_DATASET = RunConfig().dataset  # the built-in dataset a fresh app opens on
STATUS_BADGE = {"queued": ":grey[● queued]", "running": ":blue[● running]", "done": ":green[● done]",
                "failed": ":red[● failed]", "cancelled": ":orange[● cancelled]"}


@contextlib.contextmanager
def error_boundary(where: str):
    """No traceback reaches the page: an unexpected error inside becomes one short message that
    names the log file holding its traceback (`recviz.crashlog`); a store that cannot be used
    (`StoreError`) is shown with how to recover and stops the page. Streamlit's own control flow
    (st.stop, st.rerun, st.switch_page) passes through: it is not an Exception."""
    try:
        yield
    except StoreError as exc:  # nothing works without the store: say how to recover, once, and stop
        from recviz import crashlog

        log = crashlog.write(exc, where)
        show_error(exc)
        if log:
            st.caption(f"Details: {log}")
        st.stop()
    except Exception as exc:  # noqa: BLE001 — the boundary
        from recviz import crashlog
        from recviz.experiments.reasons import cause

        log = crashlog.write(exc, where)
        known = cause(exc)  # a full disk, a directory that cannot be written: say so
        st.error(f"{known}  \nDetails: {log}" if known else crashlog.message(exc, log))


def show_error(err, rename: dict[str, str] | None = None) -> None:
    """A RecvizError on the page: the problem, then its fix on a line of its own; `rename` puts
    the names a person knows in place of server paths (an upload's temporary copy)."""
    problem, fix = str(err), None
    if getattr(err, "fix", None):
        problem, _, fix = str(err).partition("\n  Fix: ")
    for path, name in (rename or {}).items():
        problem = problem.replace(path, name)
    st.error(problem + (f"  \n**Fix:** {fix}" if fix else ""))


def status_badge(run) -> str:
    """A run's status as a coloured badge; a run its driver holds that waits for a slot on a Ray
    cluster is not shown training."""
    from recviz.experiments.store import WAITING_FOR_SLOT

    if run.waiting:
        return f":grey[● {WAITING_FOR_SLOT}]"
    return STATUS_BADGE.get(run.status, run.status)


def store():
    """The run store of the current data directory (cached per directory: RECVIZ_HOME may change
    between app sessions in one process, as it does between tests)."""
    from recviz import paths

    return _store(str(paths.home()))


@st.cache_resource
def _store(home: str):
    from recviz.experiments.store import RunStore

    return RunStore(Path(home) / "runs.db")


def on_app_start() -> None:
    """Once per browser session: mark runs whose worker died as failed, so nothing shows
    'running' forever after a crash or a server restart, and give queued runs a worker if the
    one they waited for is gone."""
    if not st.session_state.get("_reaped"):
        recover()
        st.session_state["_reaped"] = True


def recover() -> None:
    """`recviz.experiments.worker.recover` with this app's worker threads (the Train page's poll calls it)."""
    from recviz.experiments import worker

    worker.recover(worker_threads())


@st.cache_resource
def devices() -> list[str]:
    """The device choices this machine has: cuda only where torch sees a GPU."""
    import torch

    from recviz.options import DEVICES

    return [d for d in DEVICES if d != "cuda" or torch.cuda.is_available()]


@st.cache_resource
def device_label() -> str:
    from recviz.models.device import describe

    return describe()


def worker_threads() -> int | None:
    """torch threads for workers started from the app: on a small machine leave a core for the
    server and the browser (RECVIZ_WORKER_THREADS overrides)."""
    if os.environ.get("RECVIZ_WORKER_THREADS"):
        return int(os.environ["RECVIZ_WORKER_THREADS"])
    return 1 if (os.cpu_count() or 1) <= 2 else None


def submit(config: RunConfig, sweep_id=None, mlflow: str | None = None) -> int:
    from recviz.experiments.worker import submit as submit_run

    return submit_run(config, threads=worker_threads(), sweep_id=sweep_id, mlflow=mlflow)


def mlflow_switch() -> str | None:
    """The Train page's "Log to MLflow" switch: None when off (or MLflow is missing, which it
    says with how to install it), else the tracking URI, "" for MLflow's default store."""
    from recviz.experiments import tracking

    if not st.toggle("Log to MLflow", key="mlflow_on",
                     help="When each run finishes, log its config, curves, metrics and weights to MLflow "
                          "(HR@10 is named HR_at_10 there)."):
        return None
    if not tracking.installed():
        st.warning(f"MLflow is not installed, so runs cannot be logged to it: {tracking.INSTALL_FIX}")
        return None
    return st.text_input("MLflow tracking URI", key="mlflow_uri",
                         placeholder="empty: MLflow's default (MLFLOW_TRACKING_URI, else ./mlflow.db)").strip()


_app = threading.local()  # per script run (each session runs its script in a thread of its own)


@contextlib.contextmanager
def inside_app():
    """app.py runs the chosen page inside this (`app_page` tells)."""
    _app.running = True
    try:
        yield
    finally:
        _app.running = False


def app_page() -> None:
    """The first call of every page. Streamlit takes a `pages/` folder beside app.py for its older
    multipage layout, so opening a page's address directly (a bookmark, a reload) runs that file
    alone: no navigation (the sidebar lists `app` and `common` as pages), no sidebar caption, no
    error boundary. Then this runs the app, which runs the page in its place, and stops. (A page
    run as the main script itself, as a test may, has no app to run.)"""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if getattr(_app, "running", False) or ctx is None or Path(ctx.main_script_path).resolve() != APP:
        return
    import app

    app.main()
    st.stop()


def executor_choice() -> str:
    """The Train page's "Where runs train": local (the worker on this machine) or ray (each run a
    Ray task; the worker is their driver). Remembered in the data directory for the app's queue;
    choosing a cluster joins it once from a short-lived process, to say at once whether it can be
    reached and what it offers. Returns a caption saying where the next run trains."""
    from recviz.errors import RecvizError
    from recviz.experiments import executors

    current = executors.chosen()
    left, right = st.columns([1, 2])
    picked = left.radio("Where runs train", executors.EXECUTORS, horizontal=True, key="executor",
                        index=executors.EXECUTORS.index(current["executor"]),
                        format_func={"local": "this machine", "ray": "a Ray cluster"}.get,
                        captions=[executors.EXECUTOR_HELP[e] for e in executors.EXECUTORS])
    address = right.text_input("Ray address", current["address"], key="ray_address", disabled=picked != "ray",
                               help=executors.ADDRESS_HELP[0].upper() + executors.ADDRESS_HELP[1:])
    check, address = False, address.strip() or "auto"  # as `choose` keeps it: not changed on every rerun
    if (picked, address) != (current["executor"], current["address"]):
        try:
            current = executors.choose(picked, address)
            check = picked == "ray"
        except RecvizError as err:
            show_error(err)
    if current["executor"] == "ray":
        check |= right.button("Check the cluster", key="check_cluster",
                              help="Join it now and show how many CPUs and GPUs it offers.")
        if check:
            with st.spinner(f"Joining the Ray cluster at {current['address']}…"):
                try:
                    executors.probe(current["address"])
                except RecvizError as err:
                    st.warning(f"{err} — runs you launch will fail with this until it is reachable.")
    return executors.where_runs_train(current) + "."


def executor_sidebar(slot) -> None:
    """Every page's sidebar (`slot`, a place in it): where runs train and what that offers."""
    from recviz.experiments import executors

    slot.caption(executors.where_runs_train())


def quick_start_config() -> RunConfig:
    """The one-click run on Home: the default model with its defaults on the built-in dataset —
    exactly what `recviz train --dataset synthetic --model neumf` trains."""
    return RunConfig()


def explain(*terms: str, container=None) -> None:
    """A "What do these numbers mean?" popover beside numbers: the glossary's words for `terms`
    (HR@K, NDCG@K, the protocol, the best validation epoch; all of them when none are named)."""
    from recviz.eval.glossary import explain as words

    with (container or st).popover("What do these numbers mean?", icon=":material/help:"):
        st.markdown(words(*terms))


# ---- a form generated from declarations -------------------------------------------------------------
def option_input(option, key: str, container=None, value=None):
    """One widget for one declared option; returns (value, error). Numbers with a range get a
    stepper bounded by it; lists, texts and values spanning orders of magnitude get a text field
    checked as the option declares (the message goes under the field)."""
    from recviz.errors import RecvizError
    from recviz.options import format_value

    box = container or st
    value = option.default if value is None else value
    help_text = option.describe()
    if option.kind == "bool":
        return box.checkbox(option.title, value=bool(value), key=key, help=help_text), None
    if option.choices:
        choices = list(option.choices)
        return box.selectbox(option.title, choices, index=choices.index(value), key=key, help=help_text), None
    if option.kind == "int" and option.low is not None and option.high is not None:
        return int(box.number_input(option.title, int(option.low), int(option.high), int(value), step=1,
                                    key=key, help=help_text)), None
    if option.kind == "float" and not option.log and option.low is not None and option.high is not None \
            and option.high - option.low <= 10:
        return float(box.number_input(option.title, float(option.low), float(option.high), float(value),
                                      step=0.05, key=key, help=help_text)), None
    text = box.text_input(option.title, "" if value is None else format_value(value), key=key, help=help_text)
    try:
        return option.parse(text), None
    except RecvizError as err:
        box.error(err.problem)
        return value, err.problem


# ---- datasets ---------------------------------------------------------------------------------------
def dataset_options() -> list[str]:
    """Datasets usable right now: saved uploads, generated and already-downloaded catalog entries."""
    from recviz.data import catalog
    from recviz.data.load import saved_names

    ready = [row["name"] for row in catalog.describe() if row["cached"]]
    return saved_names() + [n for n in ready if n not in saved_names()]


def current_dataset() -> str:
    return st.session_state.get("dataset", DEFAULT_DATASET)


def choose_dataset(label: str = "Dataset", key: str = "dataset_choice") -> str:
    """A dataset picker bound to session_state["dataset"], the one choice all pages share: a
    dataset chosen or saved elsewhere shows up here, and a change here is seen everywhere."""
    options = dataset_options()
    current = current_dataset()
    if current not in options:
        options = [current] + options
    if st.session_state.get(key) != current:
        st.session_state[key] = current  # before the widget exists, so this run already shows it

    def changed() -> None:
        st.session_state["dataset"] = st.session_state[key]

    st.selectbox(label, options, key=key, on_change=changed)
    return current_dataset()


@contextlib.contextmanager
def uploaded(upload):
    """An uploaded file as a path on disk, under the name the person gave it (so errors name that
    file), for this script run only: removed on the way out whatever happens, so incoming/ never
    fills up. None in, None out (an optional uploader left empty)."""
    if upload is None:
        yield None
        return
    from recviz import paths

    folder = paths.home() / "incoming" / upload.file_id
    path = folder / paths.safe_file_name(upload.name)  # a name too long for the file system is shortened
    folder.mkdir(parents=True, exist_ok=True)
    path.write_bytes(upload.getvalue())
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
        folder.rmdir()


def load_data(ref: str, min_user: int = 0, min_item: int = 0, min_rating: float | None = None):
    """The prepared dataset, cached per data directory and preparation."""
    from recviz import paths

    return _load_data(str(paths.home()), ref, min_user, min_item, min_rating)


@st.cache_resource(max_entries=8, show_spinner="Loading the dataset…")
def _load_data(home: str, ref: str, min_user: int, min_item: int, min_rating: float | None):
    from recviz.experiments.experiment import prepare_data

    return prepare_data(RunConfig(dataset=ref, min_user=min_user, min_item=min_item, min_rating=min_rating))


def clear_data_cache() -> None:
    """After saving a dataset under an existing name, the cached copy is stale."""
    _load_data.clear()


def load_data_or_error(ref: str, **kw):
    """The dataset, or None after showing the readable error on the page."""
    try:
        return load_data(ref, **kw)
    except RecvizError as err:
        st.error(str(err))
        return None
