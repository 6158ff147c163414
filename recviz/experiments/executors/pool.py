"""Several runs at once on this machine — the `local` executor's way when it has more than one slot
(`recviz.experiments.executors.local`). Each slot trains its runs in a worker process of its own —
`python -m recviz.experiments.worker RUN_ID --threads 1 --holder PID --serve FD`, the local worker's
one-run path, with one torch thread (or the run's own `--threads N`) — and as many train at once as
there are slots; the others wait for a slot.

A slot's process trains one run, says on its pipe how it ended, and takes the slot's next run
from its stdin (`worker.serve`): the second and later runs of a slot skip the process's start-up
(~1.8 s of CPU importing torch, pandas and RecViz) and, on the same dataset, reading the data. A
process that dies is replaced by a fresh one for the slot's next run; when the driver has no more
runs, it closes the processes' stdin and they end.

The process that calls `execute` holds the runs (claimed by its pid, as a Ray driver holds its
runs), so that if it dies they are reaped as any dead worker's are, and its worker processes,
finding their parent gone, stop. Each worker process stores its run's epochs, heartbeat,
artifacts and outcome itself, with the very code the local worker runs: a run's numbers are those
of the same run trained alone with one thread. A cancel is the store's flag: a waiting run ends at
once, a training one between batches. A worker process that dies (killed, out of memory) fails
its run saying how it ended, and the other runs go on.
"""

from __future__ import annotations

import math
import os
import select
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from recviz.config import RunConfig
from recviz.experiments.executors.base import Executor, More, OnDone, OnEpoch, OnStart
from recviz.training.report import EpochReport

if TYPE_CHECKING:
    from recviz.experiments.store import RunStore

POLL_S = 0.25  # how often the driver looks at its runs: epochs to pass on, ends, cancels of waiting runs
HEARTBEAT_S = 2.0  # how often a waiting run's heartbeat is written (a training one's: by its worker)
STOP_GRACE_S = 10.0  # a worker process asked to stop (SIGTERM) that has not ended by then is killed


@dataclass(eq=False)
class _Slot:
    """A worker process of the pool, and the run it is training (None: it waits for one)."""

    run_id: int | None
    proc: subprocess.Popen
    threads: int = 1
    replies: int | None = None  # the read end of its pipe: "RUN_ID STATUS" when a run has ended
    heard: bytes = b""  # what it said that has not yet made a whole line
    seen: int = 0  # its run's epochs already passed to `on_epoch`

    def give(self, run_id: int) -> None:
        """The slot's next run, to this (waiting) process."""
        self.run_id, self.seen = run_id, 0
        self.proc.stdin.write(f"{run_id}\n".encode())
        self.proc.stdin.flush()

    def ended(self) -> bool:
        """Whether the process has said its run has ended (read without waiting)."""
        try:
            while chunk := os.read(self.replies, 4096):
                self.heard += chunk
        except BlockingIOError:
            pass
        done = self.heard.endswith(b"\n")  # one run at a time: a whole line is its outcome
        if done:
            self.heard = b""
        return done

    def close(self) -> None:
        """No more runs: its stdin ends, and so does the process."""
        for end in (self.proc.stdin.close, lambda: os.close(self.replies)):
            try:
                end()
            except OSError:  # it is gone already
                pass


def execute(executor: Executor, slots: int, store: RunStore, runs: Sequence[int | RunConfig], *, sweep_id=None,
            mlflow: str | None = None, on_start: OnStart | None = None, on_epoch: OnEpoch | None = None,
            on_done: OnDone | None = None, more: More | None = None) -> dict[int, str]:
    """`executor.execute`, `slots` runs at once, each in a one-thread worker process; the worker
    processes read their runs' data themselves, and `more(n)` is asked for as many runs as there
    are free slots."""
    from recviz.experiments.store import WAITING_FOR_SLOT

    pid = os.getpid()
    outcome: dict[int, str] = {}
    waiting: list[tuple[int, RunConfig]] = []  # claimed by this process, shown waiting for a slot
    busy: dict[int, _Slot] = {}
    idle: list[_Slot] = []  # processes whose run has ended, waiting for the next
    beat = 0.0

    def ended(run_id: int, status: str) -> None:
        outcome[run_id] = status
        if on_done is not None:
            on_done(run_id, status)

    def take(batch: Sequence[int | RunConfig]) -> None:
        for item in batch:
            if isinstance(item, RunConfig):
                waiting.append((executor.create(store, item, sweep_id, mlflow, device=WAITING_FOR_SLOT), item))
            elif store.mark_running(item, pid, WAITING_FOR_SLOT):
                waiting.append((item, store.get(item).config))
            else:  # not ours to run: cancelled while queued, ended, or another worker's
                ended(item, store.get(item).status)

    def start(run_id: int, threads: int) -> _Slot:
        """A waiting process with these threads takes the run, else a new one (in place of a
        waiting one with other threads, if all the slots' processes are alive)."""
        for slot in idle:
            if slot.threads == threads:
                idle.remove(slot)
                slot.give(run_id)
                return slot
        if idle and len(idle) + len(busy) >= slots:
            _close([idle.pop(0)])
        return _start(run_id, pid, threads)

    try:
        take(runs)
        while True:
            free = slots - len(busy) - len(waiting)
            if more is not None and free > 0 and not executor.interrupted.is_set():
                take(more(free))
            for run_id, config in list(waiting):
                if store.cancel_requested(run_id):  # nothing started: it ends at once
                    waiting.remove((run_id, config))
                    store.mark_cancelled(run_id)
                    ended(run_id, "cancelled")
            while waiting and len(busy) < slots:
                run_id, config = waiting.pop(0)
                busy[run_id] = start(run_id, max(1, config.threads))
                if on_start is not None:
                    on_start(run_id, config)
            if not busy and not waiting:
                _close(idle)
                return outcome
            _wait(busy.values(), POLL_S)
            if time.monotonic() - beat >= HEARTBEAT_S:
                for run_id, _ in waiting:
                    store.heartbeat(run_id)
                beat = time.monotonic()
            for slot in list(busy.values()):
                gone = slot.proc.poll() is not None  # then its word, then its epochs: none is missed
                said = slot.ended()
                _pass_on(store, slot, on_epoch)
                if said:
                    del busy[slot.run_id]
                    ended(slot.run_id, store.get(slot.run_id).status)
                    if gone:
                        _close([slot])
                    else:
                        idle.append(slot)
                elif gone:
                    del busy[slot.run_id]
                    ended(slot.run_id, _outcome(store, slot))
                    _close([slot])
            for slot in [slot for slot in idle if slot.proc.poll() is not None]:  # died between runs
                idle.remove(slot)
                _close([slot])
    except BaseException as exc:  # this driver stops early (Ctrl-C, SIGTERM, an error)
        _stop(store, [*busy.values(), *idle], exc)
        for run_id, _ in waiting:
            if isinstance(exc, KeyboardInterrupt):
                store.mark_cancelled(run_id, reason=str(exc) or "stopped before it started")
            else:
                from recviz.experiments import reasons

                store.fail(run_id, reasons.describe(exc))
        raise


def _wait(slots, timeout: float) -> None:
    """Until a worker process says its run ended (or ends), or `timeout`: a slot freed is given its
    next run at once, not at the next poll (a 12-run sweep otherwise idles ~0.1 s a run)."""
    fds = [slot.replies for slot in slots if slot.replies is not None]
    if fds:
        select.select(fds, [], [], timeout)
    else:
        time.sleep(timeout)


def _start(run_id: int, holder: int, threads: int = 0) -> _Slot:
    """A new worker process for the slot, training `run_id` first, its output in the run's log: one
    torch thread, or the run's own count where it asked for one (`--threads N`: never silently
    changed)."""
    from recviz.experiments import launch

    replies, reply_end = os.pipe()
    try:
        proc = launch.launch(run_id, threads=max(1, threads), holder=holder, serve=reply_end)
    except BaseException:
        os.close(replies)
        raise
    finally:
        os.close(reply_end)  # the worker holds it now: the pipe ends when the worker does
    os.set_blocking(replies, False)
    return _Slot(run_id, proc, max(1, threads), replies)


def _close(slots) -> None:
    """Let these processes end (no more runs for them), and collect them."""
    from recviz.experiments import launch

    _end(slots, _Slot.close)
    launch.reap_children()


def _end(slots, ask) -> None:
    """`ask(slot)` each process to end, then wait for them all, killing those still alive after
    `STOP_GRACE_S`."""
    slots = list(slots)
    for slot in slots:
        ask(slot)
    deadline = time.monotonic() + STOP_GRACE_S
    for slot in slots:
        try:
            slot.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal(slot.proc, signal.SIGKILL)
            slot.proc.wait()


def _pass_on(store: RunStore, slot: _Slot, on_epoch: OnEpoch | None) -> None:
    """Give `on_epoch` the epochs the run's worker stored since the last look."""
    if on_epoch is None:
        return
    frame = store.epochs(slot.run_id)
    for row in frame.iloc[slot.seen:].to_dict("records"):
        report = {k: v for k, v in row.items() if not k.startswith("valid_") and not _missing(v)}
        on_epoch(slot.run_id, EpochReport.from_dict({**report, "epoch": int(report["epoch"])}))
    slot.seen = len(frame)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _outcome(store: RunStore, slot: _Slot) -> str:
    """How a run ended, once its worker process has: what the worker recorded, or — when it died
    before it could (killed, out of memory) — failed, saying how the process ended."""
    from recviz.experiments import launch, liveness

    launch.reap_children()
    run = store.get(slot.run_id)
    if run.status != "running":
        return run.status
    stored = len(store.epochs(run.id))
    how = liveness.how_it_ended(run, slot.proc.returncode)
    if store.fail(run.id, f"worker process {slot.proc.pid} {how} during epoch {stored + 1} ({stored} epoch(s) stored)"):
        return "failed"
    return store.get(run.id).status


def _stop(store: RunStore, slots, exc: BaseException) -> None:
    """Ask every worker process still training to stop (each records its run cancelled, saying so),
    and kill those that have not within `STOP_GRACE_S`. A run its worker could not record — the
    signal came before the worker had its handler (still importing), or it had to be killed — ends
    as what stopped the driver made of it: cancelled for a signal or Ctrl-C (`KeyboardInterrupt`,
    what the worker would have recorded), failed with the reason for an error."""
    from recviz.experiments import launch, reasons

    slots = list(slots)
    _end(slots, lambda slot: _signal(slot.proc, signal.SIGTERM))
    for slot in slots:
        if slot.replies is not None:
            slot.close()
        if slot.run_id is None or store.get(slot.run_id).status != "running":  # none, or recorded by its worker
            continue
        if isinstance(exc, KeyboardInterrupt):
            store.mark_cancelled(slot.run_id, reason=str(exc) or "stopped before it finished")
        else:
            store.fail(slot.run_id, reasons.describe(exc))
    launch.reap_children()


def _signal(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # its session: the worker and anything it started
    except ProcessLookupError:
        pass
