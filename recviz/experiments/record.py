"""Recording one run in the store while it trains — shared by the background worker
(`recviz.experiments.worker`) and the in-process `recviz train` (and `recviz bench --store`).

Whoever trains a run does the same things in the same order: resolve the device (a GPU asked for on
a machine without one fails here, readable), mark the run running with it, keep a heartbeat and
watch the cancel flag in a daemon thread (`Watch`), store every epoch report, save the artifacts,
and finish with the summary. However it ends, `record_outcome` turns the end into a status:
cancelled (a cancel request, Ctrl-C, SIGTERM) or failed with a message people can read.
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from pathlib import Path

from recviz.training.report import EpochReport
from recviz.config import RunConfig
from recviz.errors import Cancelled
from recviz.experiments import reasons
from recviz.experiments.store import RunStore

HEARTBEAT_S = 2.0  # how often the heartbeat is written
POLL_S = 0.25  # how often the cancel flag is read (cancel answers within about this)


class Stop(Exception):
    """Raised by `Watch.check` when a cancel arrives outside the training loop."""


class Watch(threading.Thread):
    """Heartbeat + cancel flag, in a daemon thread so a long epoch cannot delay either.
    `terminated` (the worker's SIGTERM flag) also counts as a cancel."""

    def __init__(self, store: RunStore, run_id: int, terminated: threading.Event | None = None):
        super().__init__(daemon=True, name=f"recviz-heartbeat-{run_id}")
        self.store, self.run_id = store, run_id
        self.terminated = terminated or threading.Event()
        self.cancel, self.lost, self._done = threading.Event(), threading.Event(), threading.Event()

    def run(self) -> None:
        last_beat = time.monotonic()
        while not self._done.wait(POLL_S):
            try:
                if time.monotonic() - last_beat >= HEARTBEAT_S:
                    if not self.store.heartbeat(self.run_id):
                        self.lost.set()
                    last_beat = time.monotonic()
                if self.store.cancel_requested(self.run_id):
                    self.cancel.set()
            except Exception as exc:  # noqa: BLE001 — a busy database must not end the heartbeat
                print(f"heartbeat of run {self.run_id}: {exc!r}", file=sys.stderr, flush=True)

    def should_stop(self) -> bool:
        return self.cancel.is_set() or self.lost.is_set() or self.terminated.is_set()

    def check(self) -> None:
        if self.should_stop():
            raise Stop()

    def stop(self) -> None:
        self._done.set()
        if self.ident is not None:  # started (a signal may land before `start`)
            self.join(timeout=5)


# ---- pieces ----------------------------------------------------------------------------------------
def resolve_device(config: RunConfig) -> str:
    """What the run trains on, for the store and the summary. Baselines are numpy (no torch
    import, which costs seconds); iterative models resolve it as their training will, so a GPU
    asked for on a machine without one fails here with the training code's own message."""
    from recviz.models import registry

    if not registry.get(config.model).uses_device:
        return "cpu"
    import torch

    from recviz.models.device import pick_device, set_threads

    set_threads(config.threads)
    device = pick_device(config.device)
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def main_phase(history: list[EpochReport]) -> list[EpochReport]:
    """The epochs of the model's own (last) phase: NeuMF's after GMF/MLP pre-training."""
    if not history:
        return []
    last = history[-1].phase
    return [h for h in history if h.phase == last]


def median_speed(history: list[EpochReport]) -> float | None:
    """Median training samples per second over the model's own epochs (the training pass only,
    not validation); None for one-pass baselines."""
    speeds = [h.samples_per_second for h in main_phase(history) if h.samples_per_second]
    return statistics.median(speeds) if speeds else None


def summarize(result, device: str, run_id: int | None = None, run_dir: Path | None = None) -> dict:
    """`RunResult.summary()` plus what only a recorded run knows, the CPU threads it trained with
    among them (results can depend on them)."""
    from recviz.options import threads_for

    return result.summary() | {
        "run_id": run_id, "device": device, "threads": threads_for(result.config.threads),
        "best_epoch": result.best_epoch,
        "samples_per_second": median_speed(result.history),
        "artifacts": None if run_dir is None else str(run_dir)}




def is_cancel(exc: BaseException) -> bool:
    return isinstance(exc, (Stop, KeyboardInterrupt, Cancelled))


# ---- the whole thing -------------------------------------------------------------------------------
def train_and_record(store: RunStore, run_id: int, config: RunConfig, run_dir: Path, watch: Watch, *,
                     data=None, on_epoch=None, before_fit=None, holder: int | None = None):
    """Train a run this process has claimed (status running, our pid — or `holder`'s, the process
    that holds it for us: a pool's driver) and store everything; returns (RunResult, summary).
    Raises whatever ended it; pass that to `record_outcome`."""
    device = resolve_device(config)
    store.mark_running(run_id, os.getpid() if holder is None else holder, device)
    if before_fit is not None:
        before_fit()
    watch.check()
    from recviz.experiments import experiment

    def report(epoch: EpochReport) -> None:
        store.add_epoch(run_id, epoch.to_dict())
        if on_epoch is not None:
            on_epoch(epoch)

    result = experiment.run(config, data=data, on_epoch=report, should_stop=watch.should_stop)
    watch.check()
    summary = finish(store, run_id, run_dir, result, device)
    return result, summary


def finish(store: RunStore, run_id: int, run_dir: Path, result, device: str) -> dict:
    """The end of every recorded run: artifacts on disk, then the summary that marks it done,
    then the MLflow export it asked for (`tracking.request`), if any."""
    from recviz.experiments import artifacts, tracking

    artifacts.save(run_dir, result)
    summary = summarize(result, device, run_id, run_dir)
    store.finish(run_id, summary)
    tracking.export_requested(store, run_id)
    return summary


def store_result(store: RunStore, result, sweep_id=None) -> int:
    """Record a run trained elsewhere — in a notebook, `recviz.train(...).save()` — exactly as a
    run trained by the worker is recorded: claimed by this process, its epoch reports, artifacts
    and summary. Returns the new run's id."""
    device = resolve_device(result.config)
    run_id = store.create(result.config, sweep_id=sweep_id, claim=os.getpid())
    run_dir = store.run_dir(run_id)
    try:
        store.mark_running(run_id, os.getpid(), device)
        store.add_epochs(run_id, [report.to_dict() for report in result.history])
        finish(store, run_id, run_dir, result, device)
    except BaseException as exc:  # noqa: BLE001 — a half-stored run must not stay "running"
        store.fail(run_id, reasons.describe(exc))
        raise
    return run_id


def record_outcome(store: RunStore, run_id: int, exc: BaseException, watch: Watch,
                   log_path: Path | None = None) -> str:
    """Turn how training ended into a status (and an error text people can read)."""
    if watch.lost.is_set():  # reaped or deleted meanwhile: the store has already decided
        return "lost"
    if is_cancel(exc):
        store.mark_cancelled(run_id, reason=(str(exc) or None) if isinstance(exc, KeyboardInterrupt) else None)
        return "cancelled"
    store.fail(run_id, reasons.describe(exc, log_path))
    return "failed"


def train_here(config: RunConfig, store: RunStore | None = None, *, data=None, on_epoch=None,
               on_start=None, sweep_id=None, mlflow: str | None = None):
    """Create a run and train it in this process, recorded exactly as the worker records one
    (`recviz train`, `recviz bench --store`). Returns (run_id, RunResult, summary); re-raises
    what ended a run that did not finish, after recording it as cancelled or failed. `mlflow`:
    a tracking URI ("" for MLflow's default store) to log the finished run to."""
    from recviz.models import registry
    from recviz.experiments import tracking

    registry.get(config.model)  # a typo is not worth a failed run in the store
    if mlflow is not None:
        tracking.check_installed()  # before training, not after
        tracking.check(mlflow)
    store = store or RunStore()
    run_id = store.create(config, sweep_id=sweep_id, claim=os.getpid())  # never queued: ours from the start
    run_dir = store.run_dir(run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    if mlflow is not None:
        tracking.request(run_dir, mlflow)
    if on_start is not None:
        on_start(run_id)
    watch = Watch(store, run_id)
    watch.start()
    try:
        result, summary = train_and_record(store, run_id, config, run_dir, watch, data=data,
                                           on_epoch=on_epoch)
    except BaseException as exc:  # noqa: BLE001 — every outcome must reach the store
        record_outcome(store, run_id, exc, watch)
        raise
    finally:
        watch.stop()
    return run_id, result, summary
