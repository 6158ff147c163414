"""The public Python API: `import recviz` in a notebook.

    data = recviz.load(df)                      # or "ml-100k", a saved name, a path
    run = recviz.train(data, model="gmf", epochs=2)
    run.history, run.metrics, run.recommend("42")
    run.save()                                  # now in the run store: the app shows it

Every function here is a thin layer over what the CLI and the worker already call — the readers
and validation (`recviz.data`), `RunConfig.build` (options checked against the model's declaration),
`experiment.run`, `record.store_result` (a run recorded as the worker records one), the store's
`epochs_frame`, `recviz.experiments.tracking` for MLflow — so a number means the same thing wherever it
is shown. Importing `recviz` imports none of this; torch comes in when a model trains.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from recviz.config import RunConfig
from recviz.data.interactions import Interactions
from recviz.models import registry

FRAME_PREFIX = "frame-"  # a DataFrame's data is saved under frame-<fingerprint> when its run is saved


def load(data, *, dedup: str | None = None, name: str | None = None, **column_map) -> Interactions:
    """Load and validate a dataset.

    Parameters
    ----------
    data : str, os.PathLike or pandas.DataFrame
        A catalog name (``"ml-100k"``, ``"synthetic"``), a saved dataset's name, a file, folder
        or zip in any supported format (CSV, Parquet, MovieLens, ...), or a DataFrame with one row
        per interaction.
    dedup : {"error", "last", "first", "keep"}, optional
        What repeated (user, item) rows do; refused by default, as in ``recviz import``.
    name : str, optional
        The name the data is saved under when a run trained on it is saved (a DataFrame, or a
        file read with a column mapping, which no reference alone reads back); default
        ``frame-<content fingerprint>``. If the name holds other data, this becomes its next
        version (runs trained on earlier versions keep theirs).
    **column_map
        Which column holds each role, by name or 0-based position: ``user=``, ``item=``,
        ``rating=``, ``timestamp=``, ``behavior=``. Without it roles are guessed from column names.

    Returns
    -------
    recviz.data.interactions.Interactions
        Validated interactions with contiguous ids and maps back to the raw ids. Bad data raises
        the same `recviz.errors.DataError` the CLI prints.
    """
    if isinstance(data, Interactions):
        return data
    if isinstance(data, pd.DataFrame):
        from recviz.data.formats.frame import read_frame

        inter = read_frame(data, column_map or None, dedup, name=name or "DataFrame")
        ref = None  # no reference reads it back: it is saved with the first run saved on it
    else:
        from recviz.data.load import load as load_ref

        inter = load_ref(str(data), mapping=column_map or None, dedup=dedup)
        # a run can name the data by its reference only when that alone reads it back the same
        ref = None if column_map or dedup else str(data)
    if name is not None:
        from recviz.data.load import check_name

        check_name(name)
    inter.meta = {**inter.meta, "ref": ref, "save_as": name}
    return inter


def train(data, model: str = registry.DEFAULT_MODEL, *, protocol: str | None = None, seed: int | None = None,
          split_seed: int | None = None, progress: bool = False, mlflow: str | bool | None = None, **options) -> Run:
    """Train a model and evaluate it, in this process.

    Parameters
    ----------
    data : Interactions, str or pandas.DataFrame
        What `load` returns, or anything `load` takes.
    model : str
        A registered model: ``gmf``, ``mlp``, ``neumf``, ``dmf``, ``einmf``, ``itempop``, ...
    protocol : {"loo", "ratio"}, optional
        Leave-one-out with sampled candidates, or an 80/10/10 split with full ranking (default:
        `RunConfig`'s, leave-one-out).
    seed : int, optional
        Same data, config and seed on CPU give the same numbers (default: `RunConfig`'s).
    split_seed : int, optional
        Draw the split with this seed instead of ``seed``: runs of different seeds with one
        ``split_seed`` share their split, so `compare` pairs them (default: the run's seed).
    progress : bool
        Show a progress bar on stderr, one step per epoch.
    mlflow : str or bool, optional
        Log the run to MLflow: a tracking URI, or True for MLflow's default store. The run is
        saved first (MLflow gets the stored run, as from ``recviz export --mlflow``).
    **options
        The model's declared options (``epochs=2``, ``emb_dim=16``, ``lr=0.001``, ...) and run
        settings (``candidates``, ``valid``, ``min_user``, ``device``, ...); ``preset="paper"``
        takes the paper's settings. An unknown name is an error listing the valid ones.

    Returns
    -------
    Run
        The trained model with its metrics and history; `Run.save` stores it.
    """
    if mlflow not in (None, False):
        from recviz.experiments import tracking

        tracking.check_installed()  # before training, not after
        tracking.check(mlflow)
    inter = load(data)
    settings = {k: v for k, v in (("protocol", protocol), ("seed", seed), ("split_seed", split_seed)) if v is not None}
    ref = inter.meta.get("ref") or frame_name(inter)
    config = RunConfig.build(dataset=ref, model=model, **settings, **options)
    from recviz.experiments import experiment
    from recviz.experiments.prepared import prepare

    prepared = prepare(inter, config)
    bar = ProgressBar(config) if progress else None
    try:
        result = experiment.run(config, data=prepared, on_epoch=bar)
    finally:
        if bar is not None:
            bar.close()
    run = Run(result.config, result=result, source=inter)
    if mlflow not in (None, False):
        run.log_mlflow(None if mlflow is True else mlflow)
    return run


def runs(status: str | None = None, model: str | None = None, limit: int = 200) -> pd.DataFrame:
    """The stored runs, newest first, one row each — the rows of ``recviz runs --json``: id,
    status, model, dataset, protocol, seed, HR@10, NDCG@10, epochs, timing, error."""
    from recviz.experiments.rows import run_row
    from recviz.experiments import launch
    from recviz.experiments.store import RunStore

    launch.recover()  # a dead run shows failed, as in `recviz runs`
    rows = [run_row(r) for r in RunStore().list(status=status, model=model, limit=limit)]
    return pd.DataFrame(rows, columns=None if rows else ["id", "status", "model", "dataset"])


def open_run(run_id: int) -> Run:
    """A stored, finished run; its `Run.recommend` scores with the stored weights."""
    from recviz.errors import RecvizError
    from recviz.experiments.store import RunStore

    store = RunStore()
    try:
        run_id = int(run_id)
    except (TypeError, ValueError):
        raise RecvizError(f"a run id is a whole number, not {run_id!r}",
                          fix="pick a run from recviz.runs()") from None
    stored = store.get(run_id)
    if stored.status != "done":
        raise RecvizError(f"run {stored.id} is {stored.status}, so it has no trained model",
                          fix="pick a finished run from recviz.runs(status='done')")
    return Run(stored.config, run_id=stored.id, stored=stored)


def compare(a, b, metric: str | None = None, *, resamples: int | None = None, seed: int | None = None):
    """Compare two stored runs judged on the same split, user by user (``recviz compare A B``).

    Parameters
    ----------
    a, b : int, Run, or a list of them
        Run ids or saved `Run`s. A list is one setting repeated over seeds: each of its runs is
        paired with the run of the other list on the same split (same seed), and each user's value
        is the mean over those seeds.
    metric : str, optional
        A per-user test metric: ``"NDCG@10"`` (the default), ``"HR@5"``, ...
    resamples, seed : int, optional
        The bootstrap's resamples and seed (defaults: `recviz.eval.significance.RESAMPLES`, ``BOOTSTRAP_SEED``).

    Returns
    -------
    recviz.analysis.paired.Comparison
        ``.verdict`` (in words), ``.test`` (Wilcoxon, paired t, bootstrap CI, wins), ``.frame()``
        (one row per user: A, B, difference), ``.to_dict()`` (what ``--json`` prints). Runs on
        different splits raise `recviz.analysis.paired.NotPaired` with the reason; runs stored
        without per-user results raise `recviz.analysis.peruser.NotAvailable`.
    """
    from recviz.analysis import paired
    from recviz.experiments.store import RunStore

    store = RunStore()
    options = {k: v for k, v in (("resamples", resamples), ("seed", seed)) if v is not None}
    return paired.compare(_stored(store, a), _stored(store, b), metric=metric or paired.DEFAULT_METRIC, **options)


def report(*runs, k: int = 10, metric: str | None = None) -> dict[str, pd.DataFrame]:
    """Beyond accuracy and who a run fails, from stored runs (``recviz report RUN...``).

    Returns
    -------
    dict of DataFrames
        ``beyond_accuracy``: per run HR@K, NDCG@K, Coverage@K, ARP@K, Popularity lift@K, Gini@K,
        Novelty@K, Long tail@K (NaN, with a ``note`` saying why, for runs stored without per-user
        results); ``activity`` and ``popularity``: `metric` per bucket of user activity and of
        held-out item popularity; ``popularity_bias``: consumed against recommended popularity
        per bucket of users' taste.
    """
    from recviz.analysis import exposure, paired, peruser, slices
    from recviz.experiments.store import RunStore

    store = RunStore()
    loaded = [peruser.load(store, _run_id(r)) for r in runs]
    ready = [r for r in loaded if r.available]
    metric = metric or paired.DEFAULT_METRIC
    return {"beyond_accuracy": exposure.table(loaded, k=k),
            **{by: slices.sliced(ready, metric, by) for by in slices.SLICES},
            "popularity_bias": slices.popularity_bias(ready, k=k)}


def _stored(store, runs) -> list:
    """A run or a list of runs (ids or saved `Run`s) with their stored per-user results."""
    from recviz.analysis import peruser

    return [peruser.load(store, _run_id(r)) for r in (runs if isinstance(runs, (list, tuple)) else [runs])]


def _run_id(run) -> int:
    """A run id from an id or a saved `Run`."""
    if isinstance(run, Run):
        if run.id is None:
            from recviz.errors import RecvizError

            raise RecvizError("this run is not saved, so it has no stored per-user results", fix="call run.save() first")
        return run.id
    return int(run)


def frame_name(inter: Interactions) -> str:
    """What a DataFrame's data is saved as: its own name, else named by its content."""
    from recviz.data import saved

    return inter.meta.get("save_as") or FRAME_PREFIX + saved.fingerprint(inter)[:12]


class Run:
    """One trained model: in memory after `train`, or stored (`save`, `open_run`).

    Attributes
    ----------
    config : RunConfig
        Everything the run was trained with (``config.options``: the model's options).
    id : int or None
        Its id in the run store (None until saved).
    """

    def __init__(self, config: RunConfig, *, result=None, source: Interactions | None = None,
                 run_id: int | None = None, stored=None):
        self.config, self.id = config, run_id
        self._result, self._source, self._stored = result, source, stored
        self._model = self._split = None
        self.mlflow_run_id: str | None = None

    def __repr__(self) -> str:
        where = f"run {self.id}" if self.id is not None else "unsaved run"
        shown = ", ".join(f"{k} {v:.4f}" for k, v in self.metrics.items() if k in ("HR@10", "NDCG@10"))
        return f"<recviz {where}: {self.config.model} on {self.config.dataset} · {shown}>"

    @property
    def summary(self) -> dict:
        """Test and validation metrics, timing, best epoch and the config (the ``--json`` of
        ``recviz train``)."""
        return self._result.summary() if self._result is not None else dict(self._stored.summary or {})

    @property
    def metrics(self) -> dict[str, float]:
        """Test metrics at the best validation epoch: ``{"HR@10": ..., "NDCG@10": ..., ...}``."""
        return dict(self.summary.get("metrics") or {})

    @property
    def history(self) -> pd.DataFrame:
        """One row per epoch: epoch, phase, train_loss, seconds, samples_per_second, the
        validation metrics (``valid_HR@10``, ...), as the app's learning curves read them."""
        from recviz.experiments.store import RunStore, epochs_frame

        if self._result is not None:
            return epochs_frame([r.to_dict() for r in self._result.history])
        return RunStore().epochs(self.id)

    def recommend(self, user, k: int = 10, *, why: bool = False) -> pd.DataFrame:
        """The top-`k` items for a user, by the user's raw id, among items the user did not have
        in train or validation.

        Parameters
        ----------
        why : bool
            Add ``why``: per item, the user's history items that most support it, with the
            measure in ``.attrs["why"]`` (`recviz.analysis.why`: ItemKNN neighbours and their
            similarity weights; for embedding models the history items closest in the model's
            item space; ItemPop: popular overall, not personal).

        Returns
        -------
        pandas.DataFrame
            rank, item (raw id), title, score, and ``held out``: whether the item is the user's
            held-out test item (+ ``why``).
        """
        from recviz.analysis.dataset import find_user, item_titles, top_list
        from recviz.eval.protocols import recommend

        model, split = self._trained()
        data = split.data
        u = find_user(data.user_ids, user, f"{self.config.dataset}")
        k = max(1, min(int(k), data.n_items))
        items, scores = recommend(model, np.array([u]), split.known_before("test", users=[u]), k,
                                  seed=self.config.seed, with_scores=True)
        test_users, test_items = split.held_out("test")
        table = top_list(items[0], scores[0], data.item_ids, item_titles(data), held_out=test_items[test_users == u])
        if why:
            from recviz.analysis import why as reasons

            shown = items[0][np.isfinite(scores[0])]
            explained = reasons.explain(model, split, u, shown, k=3)
            lines = explained.lines()
            table["why"] = [lines.get(r, "") for r in table["rank"]]
            table.attrs["why"] = explained.measure
        return table

    def _trained(self):
        """(model, split): in memory, or rebuilt from the stored weights and the stored split."""
        if self._result is not None:
            return self._result.model, self._result.split
        if self._model is None:
            from recviz.experiments import artifacts, experiment
            from recviz.experiments.store import RunStore

            store = RunStore()
            self._model = artifacts.load_model(artifacts.run_files(store, store.get(self.id)))[0]
            self._split = experiment.prepare_split(self.config)
        return self._model, self._split

    def save(self) -> int:
        """Store the run — epochs, weights, top-N lists, metrics — so that ``recviz runs`` and the
        app's pages show it. A DataFrame's data is saved too (as `frame_name`, or a new version
        of it), since the pages re-read a run's data. Returns the run id; saving twice is a no-op."""
        if self.id is not None:
            return self.id
        from recviz.data import saved
        from recviz.experiments import record
        from recviz.experiments.store import RunStore

        if self._source is not None and self._source.meta.get("ref") is None:
            saved.save(self.config.dataset, self._source, replace=True, source="recviz.load(DataFrame)")
        self._result.config = self.config = self.config.pinned()
        self.id = record.store_result(RunStore(), self._result)
        return self.id

    def log_mlflow(self, uri: str | None = None) -> str:
        """Send the run to MLflow (`uri`: a tracking URI; None: MLflow's default store), saving it
        first. Returns the MLflow run id."""
        from recviz.experiments import tracking
        from recviz.experiments.store import RunStore

        tracking.check_installed()
        uri = tracking.check(uri)
        self.save()
        self.mlflow_run_id = tracking.export(RunStore(), [self.id], uri)[self.id]
        return self.mlflow_run_id


class ProgressBar:
    """A one-line bar on stderr, redrawn after each epoch (``\\r``; terminals and Jupyter both
    show it in place): ``gmf [######......] 3/10  loss 0.3121  HR@10 0.6412  NDCG@10 0.3801``.
    The bar counts every phase the model declares (NeuMF with pre-training: gmf, mlp, neumf)
    and names the phase it is in."""

    def __init__(self, config: RunConfig, width: int = 24, stream=None):
        from recviz.analysis.progress import EpochLog

        self.log, self.width, self.model = EpochLog(config.model, config.options), width, config.model
        self.stream, self.done = stream or sys.stderr, 0

    def __call__(self, report) -> None:
        line = self.log.add(report)
        pos = self.log.position
        self.done = pos.done
        filled = int(self.width * pos.fraction)
        self.stream.write(f"\r{self.model} [{'#' * filled}{'.' * (self.width - filled)}] "
                          f"{pos.done}/{pos.total}  {line}   ")
        self.stream.flush()

    def close(self) -> None:
        if self.done:
            self.stream.write("\n")
            self.stream.flush()
