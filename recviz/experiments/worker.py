"""Training in a background OS process, owned by the run store rather than by whoever started it.

    python -m recviz.experiments.worker RUN_ID [--threads N]   train one run
    python -m recviz.experiments.worker --drain [--threads N]  train queued runs one after another
    python -m recviz.experiments.worker RUN_ID --holder PID --serve FD  a pool's worker: then more runs

Why a separate process started with `subprocess.Popen(start_new_session=True)`: the Streamlit
server must stay responsive and must be able to restart without killing training, so nothing ties
the worker to its parent. The worker therefore owns its lifecycle through the store: it claims the
run, beats a heartbeat every ~2 s, polls the cancel flag, and writes done / failed / cancelled
itself. If it dies anyway (SIGKILL, out of memory), `RunStore.reap()` marks the run failed.

The queue (`recviz.experiments.launch.submit`, which also starts workers): runs are created `queued` and one *drain* worker per data directory trains
them in order, as many at once as its executor has room for. The drain holds an exclusive
`flock` on `home()/drain.lock` (its pid written inside) for as long as it lives; the kernel drops
the lock when the process dies, even on SIGKILL, so a stale lock file can never block the queue;
and a holder that is alive but stopped (SIGSTOP) stops beating in the lock file and is taken
over after 120 s (`launch.try_lock`).
`submit` starts a drain only when that lock is free. A drain that finds the queue empty releases
the lock and looks once more before exiting, so a run submitted at that very moment is never
stranded. `launch.launch(run_id)` bypasses the queue (a run that must start now); the atomic claim in the
store still guarantees one worker per run.

What trains the runs it takes is the executor the app chose (`recviz.experiments.executors`:
this machine by default, as many one-thread runs at once as `RECVIZ_LOCAL_SLOTS` says; or Ray
tasks it drives). Test hook:
`RECVIZ_TEST_SLEEP_BEFORE_FIT=<seconds>` makes a run wait (cancellable) after it has been marked
running and before training, so tests can kill or cancel a run mid-way.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time

from recviz.errors import RecvizError
from recviz.experiments import launch, reasons
from recviz.experiments.store import Run, RunStore

_terminated = threading.Event()  # SIGTERM / Ctrl-C received: finish the current run as cancelled, then exit


# ---- inside the worker process ---------------------------------------------------------------------
def drain(threads: int | None = None, redirect: bool = False) -> int:
    """Train queued runs until none is left; returns how many ran (0 when another drain is
    active). With `redirect`, each run's output goes to its own log file."""
    fd = launch.try_lock(patience=0.5)
    if fd is None:
        print("another drain worker is active; exiting", flush=True)
        return 0
    beat = launch.Beat()
    beat.set(fd)
    beat.start()
    store = RunStore()
    store.reap()
    try:
        return _drain_loop(store, fd, threads, redirect, beat)
    except KeyboardInterrupt as exc:  # SIGTERM between claiming a run and execute's own handler
        for run in store.list(status="running"):
            if run.pid == os.getpid():  # the handler's message names the signal and this process
                store.mark_cancelled(run.id, reason=str(exc) or "stopped by a signal before training began")
        raise


def _drain_loop(store: RunStore, fd: int, threads: int | None, redirect: bool, beat=None) -> int:
    beat = beat or launch.Beat()
    done = 0
    while not _terminated.is_set():
        if not launch.still_held(fd):  # stopped for longer than the lock's patience: taken over
            beat.set(None)
            os.close(fd)
            print(f"drain {os.getpid()}: another drain worker took the queue over while this one was stopped; "
                  "exiting", flush=True)
            return done
        run = store.next_queued()
        if run is not None:
            done += _execute_queue(store, run, threads, redirect, holds=lambda: launch.still_held(fd))
            continue
        beat.set(None)
        launch.unlock(fd)  # then look once more: a submit may have seen our lock just before this
        if not store.has_queued() or (fd := launch.try_lock(patience=0.5)) is None:
            return done
        beat.set(fd)
    beat.set(None)
    launch.unlock(fd)
    return done


def _execute_queue(store: RunStore, first: Run, threads: int | None, redirect: bool, holds=lambda: True) -> int:
    """Train `first` (claimed by this process) and the runs queued after it with the executor the
    app chose (the Train page's "Where runs train"), for as long as that choice stands: each time
    the executor can take more, it gets the runs queued meanwhile (after a change, the next batch
    goes to the newly chosen one). Returns how many runs it took. Whatever stops the executor
    itself (a cluster that cannot be reached) fails the runs it took that are still running with
    that message, so the page says it instead of waiting. `holds()` false: the queue was taken
    over by another drain (this one was stopped): take no more runs."""
    from recviz.experiments import executors

    chosen = executors.chosen()
    executor = executors.get(chosen["executor"])(address=chosen["address"], threads=threads, run_logs=redirect,
                                                 interrupted=_terminated)
    taken = [first.id]

    def more(limit: int | None) -> list[int]:
        ids = []
        while (limit is None or len(ids) < limit) and not _terminated.is_set() and executors.chosen() == chosen \
                and holds() and (run := store.next_queued()) is not None:  # holds: not taken over
            ids.append(run.id)
        if ids:
            print(f"drain {os.getpid()}: {_runs(ids)} ({chosen['executor']})", flush=True)
        taken.extend(ids)
        return ids

    print(f"drain {os.getpid()}: {_runs([first.id])} ({chosen['executor']})", flush=True)
    try:
        executor.execute(store, [first.id], more=more)
    except Exception as exc:  # noqa: BLE001 — every run taken must end with its reason
        for run_id in taken:
            if store.get(run_id).status == "running":
                store.fail(run_id, reasons.describe(exc))
    return len(taken)


def _runs(ids: list[int]) -> str:
    return f"run {ids[0]}" if len(ids) == 1 else f"runs {', '.join(map(str, ids))}"


def execute(run_id: int, threads: int | None = None, store: RunStore | None = None,
            redirect: bool = False, holder: int | None = None, data=None) -> str:
    """Train one run on this machine now (queued, or claimed by this process — or by `holder`, the
    process that started this one for it) and record its outcome in the store; returns the final
    status. `data`: prepared data to share with the runs before and after it (`LastData`)."""
    from recviz.experiments import executors

    executor = executors.get("local")(threads=threads, run_logs=redirect, interrupted=_terminated)
    return executor.train_one(store or RunStore(), run_id, None, data=data, holder=holder)


def serve(first: int, threads: int | None, holder: int, reply_fd: int) -> None:
    """A pool's worker process: train `first`, then each run whose id `holder` writes to stdin (a
    line each), until stdin ends; after each run, write "RUN_ID STATUS" on `reply_fd`. One process
    per slot instead of one per run spares each run after the first this process's start-up —
    importing torch, pandas and RecViz, ~1.8 s of CPU — and reading its data again when it is the
    data the run before trained on (`LastData`). A run's numbers are the same either way: each run
    seeds its own generators, and the one-by-one path shares prepared data between runs too."""
    from recviz.experiments.executors.base import LastData

    store, data, run_id = RunStore(), LastData(), first
    with open(reply_fd, "w", buffering=1) as reply:
        while True:
            status = execute(run_id, threads, store, redirect=True, holder=holder, data=data)
            reply.write(f"{run_id} {status}\n")
            line = sys.stdin.readline()
            if not line.strip():  # the driver has no more runs for this slot
                return
            run_id = int(line)


def _stop_without(holder: int, poll: float = 0.5) -> None:
    """End this process, as a kill would, once `holder` (its parent) is gone: its runs are then
    reaped as that process's, and nothing trains on for a driver that no longer exists."""
    def watch() -> None:
        while os.getppid() == holder:
            time.sleep(poll)
        os._exit(70)

    threading.Thread(target=watch, daemon=True, name="recviz-holder").start()




def _on_terminate(signum, frame) -> None:
    from recviz.experiments.liveness import signal_name

    _terminated.set()
    raise KeyboardInterrupt(f"stopped by signal {signum} ({signal_name(signum)}) sent to worker process {os.getpid()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recviz.experiments.worker",
                                     description="Train a stored run (or drain the queue) in this process.")
    parser.add_argument("run_id", nargs="?", type=int, help="the run to train")
    parser.add_argument("--drain", action="store_true", help="train queued runs one after another")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: config)")
    parser.add_argument("--holder", type=int, default=None, metavar="PID",
                        help="with RUN_ID: the parent process that holds the run (a pool's driver); stop when it is gone")
    parser.add_argument("--serve", type=int, default=None, metavar="FD",
                        help="with RUN_ID and --holder: then train each run id the holder writes to stdin, "
                             "writing 'RUN_ID STATUS' to file descriptor FD after each (a pool's worker process)")
    args = parser.parse_args(argv)
    if (args.run_id is None) != args.drain:
        parser.error("give either a RUN_ID or --drain")
    if args.serve is not None and not args.holder:
        parser.error("--serve needs --holder")
    sys.stdout.reconfigure(line_buffering=True)
    signal.signal(signal.SIGTERM, _on_terminate)
    signal.signal(signal.SIGINT, _on_terminate)
    try:
        if args.drain:
            drain(args.threads, redirect=True)
        else:
            if args.holder:
                _stop_without(args.holder)
            if args.serve is not None:
                serve(args.run_id, args.threads, args.holder, args.serve)
            else:
                execute(args.run_id, args.threads, redirect=True, holder=args.holder)  # `launch`: already its log
    except KeyboardInterrupt:
        return 130
    except RecvizError as err:
        print(err, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
