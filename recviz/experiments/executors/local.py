"""The `local` executor: runs train on this machine, as many at once as it has slots —
`RECVIZ_LOCAL_SLOTS` (a number, or "cores", `DEFAULT_SLOTS`) — so that a sweep or the app's queue can
keep every core busy with one-thread runs (a two-thread run is barely faster than a one-thread one
on small matrices, and two one-thread runs side by side train twice the work).

A run that asks for N threads (`--threads N`) takes N slots' worth of cores (see `execute`).
With one slot, or a single run to train (`recviz train`, the API), a run trains in this process —
`recviz train` and `recviz sweep` in the command's own process, the app's queue in its background
worker (`recviz.experiments.worker`), which passes `run_logs` (each run's output goes to its log)
and its SIGTERM flag (`interrupted`). With more, each trains in a one-thread worker process of its
own (`recviz.experiments.executors.pool`), with the same store, cancel, liveness and failure
semantics and the numbers of the same run trained alone with one thread.

Each run: claimed by this process, a heartbeat and the cancel flag watched in a daemon thread
(`record.Watch`), every epoch stored as it comes, artifacts and summary saved, and however it ends
recorded (`record.record_outcome`); a failure's full traceback goes to the run's worker.log.

Test hook: `RECVIZ_TEST_SLEEP_BEFORE_FIT=<seconds>` makes a run wait (cancellably) after it is
marked running and before training, so tests can kill or cancel a run mid-way.
"""

from __future__ import annotations

import copy
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from recviz.config import RunConfig
from recviz.errors import RecvizError
from recviz.experiments.executors.base import Executor, More, OnDone, OnEpoch, OnStart, capacity, machine, prepared

if TYPE_CHECKING:
    from recviz.experiments.store import RunStore

TEST_SLEEP_ENV = "RECVIZ_TEST_SLEEP_BEFORE_FIT"
SLOTS_ENV = "RECVIZ_LOCAL_SLOTS"
DEFAULT_SLOTS = "cores"  # unset: every core this process may use trains a one-thread run


class LocalExecutor(Executor):
    label = "this machine"
    help = (f"train on this machine, a sweep's or the queue's runs side by side, one thread each in a worker "
            f"process ({SLOTS_ENV}=N runs at once or 'cores', default {DEFAULT_SLOTS!r}; 1: one at a time)")

    @classmethod
    def slots(cls) -> int:
        """How many runs train at once: `RECVIZ_LOCAL_SLOTS`, a number or "cores" (the cores this
        process may use; `DEFAULT_SLOTS` when unset), so that a sweep or the queue keeps every core
        busy with one-thread runs."""
        text = os.environ.get(SLOTS_ENV, "").strip() or DEFAULT_SLOTS
        if text == "cores":
            return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        if not text.isdigit() or not 1 <= int(text) <= 1024:
            raise RecvizError(f"{SLOTS_ENV}={text!r} is not a number of runs to train at once",
                              fix=f"set {SLOTS_ENV} to a whole number from 1 to 1024 (1: one run at a time), or "
                                  f"to 'cores' to use every core (unset: {DEFAULT_SLOTS!r})")
        return int(text)

    @classmethod
    def require(cls) -> None:
        cls.slots()

    def check(self) -> None:
        self.slots()

    @classmethod
    def where(cls, address: str = "auto") -> str:
        slots = cls.slots()
        at_once = "one at a time" if slots == 1 else f"{slots} at a time, one thread each"
        return f"Runs train on this machine: {capacity(machine())}, {at_once}"

    def execute(self, store: RunStore, runs: Sequence[int | RunConfig], *, sweep_id=None, mlflow: str | None = None,
                data: dict | None = None, on_start: OnStart | None = None, on_epoch: OnEpoch | None = None,
                on_done: OnDone | None = None, more: More | None = None) -> dict[int, str]:
        """Side by side in worker processes when there are several slots and more than one run
        (a sweep, the app's queue); otherwise one after another in this process. Runs that ask
        for several threads (`--threads N`) keep them, and take as many slots: a sweep of
        two-thread runs on 4 cores trains two at a time, on 2 cores one at a time."""
        slots = self.slots() // max(1, max((c.threads for c in runs if isinstance(c, RunConfig)), default=1))
        if slots > 1 and (more is not None or len(runs) > 1):
            from recviz.experiments.executors import pool

            return pool.execute(self, slots, store, runs, sweep_id=sweep_id, mlflow=mlflow, on_start=on_start,
                                on_epoch=on_epoch, on_done=on_done, more=more)
        return self.one_by_one(store, runs, sweep_id=sweep_id, mlflow=mlflow, data=data, on_start=on_start,
                               on_epoch=on_epoch, on_done=on_done, more=more)

    def one_by_one(self, store: RunStore, runs: Sequence[int | RunConfig], *, sweep_id=None,
                   mlflow: str | None = None, data: dict | None = None, on_start: OnStart | None = None,
                   on_epoch: OnEpoch | None = None, on_done: OnDone | None = None,
                   more: More | None = None) -> dict[int, str]:
        """Each run in this process, one after another."""
        outcome: dict[int, str] = {}
        waiting = list(runs)
        while True:
            if not waiting and more is not None and not self.interrupted.is_set():
                waiting = list(more(1))  # one at a time: a run taken is a run training
            if not waiting:
                return outcome
            item = waiting.pop(0)
            if isinstance(item, RunConfig):
                run_id = self.create(store, item, sweep_id, mlflow)
                outcome[run_id] = self.train_one(store, run_id, item, data, on_start, on_epoch, on_done)
            else:
                outcome[item] = self.train_one(store, item, None, data, on_start, on_epoch, on_done)

    def train_one(self, store: RunStore, run_id: int, config: RunConfig | None, data: dict | None = None,
                  on_start: OnStart | None = None, on_epoch: OnEpoch | None = None,
                  on_done: OnDone | None = None, holder: int | None = None) -> str:
        """Train one run (queued, or claimed by this process) here and record its outcome; returns
        its final status. `config`: the config of a run this process just created (else the
        stored one). `holder`: the process that claimed the run for this one (a pool's driver);
        the run starts now, not when it was claimed. A KeyboardInterrupt is recorded as a cancel,
        then raised again."""
        from recviz.experiments import record

        claimed = store.mark_running(run_id, os.getpid()) if holder is None else \
            store.mark_running(run_id, holder, started_at=time.time())
        if not claimed:
            status = store.get(run_id).status  # a RecvizError when there is no such run
            self._say(f"run {run_id} is {status}, not queued: nothing to do")
            return status
        run_dir = store.run_dir(run_id)
        watch = record.Watch(store, run_id, self.interrupted)
        kept, interrupt = None, None
        # From here on the run is "running" in the store: everything, even the log redirection, sits
        # inside the try, so that a SIGTERM landing at any point still ends as a recorded outcome.
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            if self.run_logs:
                kept = _redirect_output(run_dir / "worker.log")
            self._say(f"worker {os.getpid()}: run {run_id} started")
            watch.start()
            config = config if config is not None else store.get(run_id).config
            if self.threads:  # this machine's business: the stored config stays as submitted
                config = copy.copy(config)
                config.threads = self.threads
            if on_start is not None:
                on_start(run_id, config)
            report = None if on_epoch is None else (lambda epoch: on_epoch(run_id, epoch))
            record.train_and_record(store, run_id, config, run_dir, watch, data=prepared(data, config),
                                    on_epoch=report, before_fit=lambda: _test_pause(watch.should_stop),
                                    holder=holder)
            status = "done"
        except BaseException as exc:  # noqa: BLE001 — every outcome must reach the store
            status = _record(store, run_id, exc, watch, run_dir / "worker.log")
            interrupt = exc if isinstance(exc, KeyboardInterrupt) else None
        finally:
            watch.stop()
        self._say(f"worker {os.getpid()}: run {run_id} {status}")
        if kept is not None:
            _restore_output(kept)
        if on_done is not None:
            on_done(run_id, status)
        if interrupt is not None:
            raise interrupt
        return status

    def _say(self, line: str) -> None:
        """What a background worker notes in its log (a command's own output stays its own)."""
        if self.run_logs:
            print(line, flush=True)


def _record(store: RunStore, run_id: int, exc: BaseException, watch, log: Path) -> str:
    """Turn how training ended into a status; a failure's full traceback goes to the run's log."""
    from recviz.experiments import record

    if not watch.lost.is_set() and not record.is_cancel(exc):
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            with open(log, "a") as out:
                traceback.print_exception(exc, file=out)
        except OSError:  # a full disk, a read-only directory: the stored reason says so
            pass
    return record.record_outcome(store, run_id, exc, watch, log)


def _test_pause(should_stop) -> None:
    end = time.monotonic() + float(os.environ.get(TEST_SLEEP_ENV) or 0)
    while time.monotonic() < end and not should_stop():
        time.sleep(0.05)


def _redirect_output(path: Path) -> tuple[int, int]:
    """Point fds 1 and 2 at `path` (append), so prints, tracebacks and C-level output land there;
    returns copies of the fds they pointed at (`_restore_output`)."""
    sys.stdout.flush()
    sys.stderr.flush()
    kept = os.dup(1), os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    return kept


def _restore_output(kept: tuple[int, int]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    for target, fd in zip((1, 2), kept):
        os.dup2(fd, target)
        os.close(fd)
