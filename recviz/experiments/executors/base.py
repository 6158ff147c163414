"""The executor interface: whatever trains runs — this machine (`local`), Ray tasks on a cluster
(`ray`), a process pool, Slurm — behind one class, so that its callers (`recviz train`, `recviz
sweep`, the app's worker) never ask which one runs.

An executor takes runs — new ones, from configs (the CLI), or runs already in the store (the app's
queue) — and for each: claims it for this process, trains it, stores every epoch report as it comes
(the live curves read them), passes on a cancel asked in the store (`RunStore.request_cancel`: the
app's Cancel, `recviz cancel`), and records how it ended — done with its artifacts and summary,
failed with a reason people can read, or cancelled — so that no page can tell where a run trained.
A run whose trainer dies is reaped by the store (`RunStore.reap`) as any dead worker's run.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from threading import Event
from typing import TYPE_CHECKING, ClassVar

from recviz.config import DATA_FIELDS, RunConfig

if TYPE_CHECKING:
    from recviz.experiments.store import RunStore
    from recviz.training.report import EpochReport

OnStart = Callable[[int, RunConfig], None]  # a run was taken to train: its id, the config it trains
OnEpoch = Callable[[int, "EpochReport"], None]  # a run's epoch report, already stored
OnDone = Callable[[int, str], None]  # a run ended, recorded: "done", "failed", "cancelled" (or "lost")
More = Callable[[int | None], list[int]]  # up to n further runs claimed by this process (None: all there are)
Load = Callable[[RunConfig], object]  # a config's prepared data (`prepared.prepare_data`)


class Executor(ABC):
    """Trains runs recorded in a `RunStore`. Constructed with what the caller knows of this
    process: `address` (where the executor's machines are, for those that have one: a Ray
    cluster), `threads` (the worker's torch threads per run, a resource of this machine, not part
    of a run's stored config), `run_logs` (this process is a background worker: its output goes
    to each run's log while the run trains) and `interrupted` (set when this process is asked to
    stop: the worker's SIGTERM)."""

    label: ClassVar[str]  # for the Train page's choice: "this machine"
    help: ClassVar[str]  # one line for --help and the Train page
    install: ClassVar[str | None] = None  # how to install what it needs beyond recviz, if anything
    takes_address: ClassVar[bool] = False  # whether `address` means anything to it

    def __init__(self, *, address: str = "auto", threads: int | None = None, run_logs: bool = False,
                 interrupted: Event | None = None):
        self.address = address
        self.threads = threads
        self.run_logs = run_logs
        self.interrupted = interrupted if interrupted is not None else Event()

    # ---- what it offers, before any run -------------------------------------------------------------
    @classmethod
    def require(cls) -> None:
        """A RecvizError saying what to install when this executor cannot be used here at all."""

    def check(self) -> None:
        """Whether runs can train now; a RecvizError within seconds when they cannot (a cluster
        that does not answer), called before any run is created."""

    @classmethod
    @abstractmethod
    def where(cls, address: str = "auto") -> str:
        """One line for the sidebar and `recviz executor`: where runs train and what that offers."""

    def check_fits(self, config: RunConfig, data) -> None:
        """A RecvizError with a fix (a smaller emb_dim, --sample-users) when the run would not fit
        in the memory of the machine that trains it, instead of an out-of-memory kill. Runs here
        are checked against this machine; an executor whose machines are elsewhere says otherwise."""
        from recviz.analysis.estimate import refuse_if_too_big

        refuse_if_too_big(config, data)

    @classmethod
    def probe(cls, address: str = "auto") -> dict:
        """What it offers now ({"cpus", "gpus", "nodes", ...}), asking its machines where that
        means joining them; a RecvizError when they cannot be reached."""
        return machine()

    # ---- the work ------------------------------------------------------------------------------------
    def train(self, store: RunStore, configs: Sequence[RunConfig], *, sweep_id=None, mlflow: str | None = None,
              load: Load | None = None, on_start: OnStart | None = None, on_epoch: OnEpoch | None = None,
              on_done: OnDone | None = None) -> dict[int, str]:
        """New runs, one per config, trained by this executor for this process (`recviz train`,
        `recviz sweep`). What can be checked is checked before the first run is created: the models,
        MLflow, `check`, and the data, read once per dataset with `load(config)` (default:
        `prepared.prepare_data`). `mlflow`: a tracking URI ("" for MLflow's default store) to log
        each finished run to. Returns each run's final status by run id, in the order of `configs`."""
        from recviz.experiments import tracking
        from recviz.experiments.prepared import prepare_data
        from recviz.models import registry

        for config in configs:
            registry.get(config.model)  # a typo is not worth a failed run in the store
        if mlflow is not None:
            tracking.check_installed()  # before training, not after
            tracking.check(mlflow)
        self.check()
        load = load or prepare_data
        data: dict[tuple, object] = {}
        for config in configs:
            if data_key(config) not in data:
                data[data_key(config)] = load(config)
            self.check_fits(config, data[data_key(config)])
        outcome = self.execute(store, list(configs), sweep_id=sweep_id, mlflow=mlflow, data=data,
                               on_start=on_start, on_epoch=on_epoch, on_done=on_done)
        return dict(sorted(outcome.items()))  # run ids grow in the order the runs were created

    @abstractmethod
    def execute(self, store: RunStore, runs: Sequence[int | RunConfig], *, sweep_id=None, mlflow: str | None = None,
                data: dict | None = None, on_start: OnStart | None = None, on_epoch: OnEpoch | None = None,
                on_done: OnDone | None = None, more: More | None = None) -> dict[int, str]:
        """Train `runs` and record each one's outcome in `store`; returns each run's final status by
        run id. A run id names a run in the store, queued or claimed by this process (the app's
        queue); a config is a new run, created claimed by this process (in `sweep_id`, logged to
        `mlflow`) when the executor takes it. `data`: prepared data by `data_key`, for the runs whose
        data the caller has read (others read their own). `more(n)` is asked, whenever the
        executor could take more, for up to n further runs (None: all there are) — the app's queue,
        so a run launched meanwhile need not wait for this batch. A run that fails or is cancelled
        is an outcome, not an exception; a KeyboardInterrupt (Ctrl-C, the worker's SIGTERM) ends
        the runs out as cancelled and is raised again."""

    def cancel(self, store: RunStore, run_id: int) -> str:
        """Ask a run to stop: the flag every executor passes on to its run (a queued run is
        cancelled at once). The same as the app's Cancel and `recviz cancel`. Returns its status."""
        return store.request_cancel(run_id)

    # ---- for implementations -------------------------------------------------------------------------
    @staticmethod
    def create(store: RunStore, config: RunConfig, sweep_id=None, mlflow: str | None = None,
               device: str | None = None) -> int:
        """A new run, claimed by this process from the start (never queued: no worker takes it)."""
        run_id = store.create(config, sweep_id=sweep_id, claim=os.getpid(), device=device)
        if mlflow is not None:
            from recviz.experiments import tracking

            tracking.request(store.run_dir(run_id), mlflow)
        return run_id


class LastData(dict):
    """Prepared data kept by a process that trains run after run (a pool's worker process): the
    data of the last dataset a run asked for, read when a run first needs it (inside the run, so
    that a dataset that cannot be read fails that run, as it would have alone). One dataset at a
    time: a process never holds two."""

    def of(self, config: RunConfig):
        key = data_key(config)
        if key not in self:
            from recviz.experiments.prepared import prepare_data

            self.clear()  # before reading the next one
            self[key] = prepare_data(config)
        return self[key]


def prepared(data: dict | None, config: RunConfig):
    """The prepared data `data` holds for `config` (read now for `LastData`), or None: the run
    reads its own."""
    return data.of(config) if isinstance(data, LastData) else (data or {}).get(data_key(config))


def data_key(config: RunConfig) -> tuple:
    """What a config's prepared data depends on (the dataset at its version, and its preparation):
    runs with equal keys train on the same data (a sweep reads it once)."""
    return config.split_key[:len(DATA_FIELDS)]


def machine() -> dict:
    """This machine's CPUs and GPUs, as `probe` reports a cluster's."""
    import time

    import torch

    return {"cpus": os.cpu_count() or 1, "gpus": torch.cuda.device_count(), "nodes": 1,
            "at": time.time()}


def capacity(seen: dict) -> str:
    """'2 CPUs, 0 GPUs' (with the number of nodes when there are several)."""
    nodes = f" on {seen['nodes']} nodes" if seen.get("nodes", 1) > 1 else ""
    return f"{seen['cpus']} CPUs, {seen['gpus']} GPUs{nodes}"
