"""Training in a background OS process, owned by the run store rather than by whoever started it.

    python -m recviz.experiments.worker RUN_ID [--threads N]   train one run
    python -m recviz.experiments.worker --drain [--threads N]  train queued runs one after another

Why a separate process started with `subprocess.Popen(start_new_session=True)`: the Streamlit
server must stay responsive and must be able to restart without killing training, so nothing ties
the worker to its parent. The worker therefore owns its lifecycle through the store: it claims the
run, beats a heartbeat every ~2 s, polls the cancel flag, and writes done / failed / cancelled
itself. If it dies anyway (SIGKILL, out of memory), `RunStore.reap()` marks the run failed.

The queue (`submit`): runs are created `queued` and one *drain* worker per data directory trains
them in order, so by default one run uses the machine at a time. The drain holds an exclusive
`flock` on `home()/drain.lock` (its pid written inside) for as long as it lives; the kernel drops
the lock when the process dies, even on SIGKILL, so a stale lock file can never block the queue.
`submit` starts a drain only when that lock is free. A drain that finds the queue empty releases
the lock and looks once more before exiting, so a run submitted at that very moment is never
stranded. `launch(run_id)` bypasses the queue (a run that must start now); the atomic claim in the
store still guarantees one worker per run.

What trains the runs it takes is the executor the app chose (`recviz.experiments.executors`:
this process, one run at a time, by default; or Ray tasks it drives). Test hook:
`RECVIZ_TEST_SLEEP_BEFORE_FIT=<seconds>` makes a run wait (cancellable) after it has been marked
running and before training, so tests can kill or cancel a run mid-way.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from recviz import paths
from recviz.config import RunConfig
from recviz.errors import RecvizError
from recviz.experiments import record
from recviz.experiments.executors.local import TEST_SLEEP_ENV  # noqa: F401 — tests set it through here
from recviz.experiments.store import Run, RunStore, pid_alive

_children: list[subprocess.Popen] = []
_children_lock = threading.Lock()
_exits: dict[int, int] = {}  # pid → exit status of the workers this process started that have ended
_terminated = threading.Event()  # SIGTERM / Ctrl-C received: finish the current run as cancelled, then exit


# ---- starting workers (called by the app and the CLI) --------------------------------------------
def submit(config: RunConfig, threads: int | None = None, sweep_id=None, mlflow: str | None = None) -> int:
    """Queue a run and make sure a drain worker will train it. Returns the run id. `threads` is the
    worker's (a resource of this machine, not part of the run's config: the stored config stays
    exactly what the page or the CLI built). `mlflow`: a tracking URI ("" for MLflow's default
    store, in the directory the worker starts in) to log the run to when it finishes."""
    store = RunStore()
    if mlflow is not None:
        from recviz.experiments import tracking

        tracking.check_installed()
    run_id = store.create(config, sweep_id=sweep_id)
    if mlflow is not None:
        tracking.request(store.run_dir(run_id), mlflow)
    ensure_drain(threads)
    return run_id


def launch(run_id: int, threads: int | None = None, holder: int | None = None) -> subprocess.Popen:
    """Start a worker for this one run now (outside the queue), logging to the run's log file.
    `holder`: the pid of the process that holds the run (claimed it) and started this worker for
    it — a pool's driver, this process: the worker trains it for that process, and stops when it
    is gone."""
    args = [str(run_id)] + (["--threads", str(threads)] if threads else []) + (["--holder", str(holder)] if holder else [])
    return _spawn(args, RunStore().run_dir(run_id) / "worker.log", threads)


def ensure_drain(threads: int | None = None) -> subprocess.Popen | None:
    """Start a drain worker unless one is alive (or one this process started is still starting:
    ten quick submits start one drain, not ten that would race for the lock); the app may call
    this at start to pick up runs queued before a restart. Returns the new process, or None when
    one was already running."""
    reap_children()
    with _children_lock:  # one this process started is still starting (it has not locked yet)
        if any(getattr(proc, "drain", False) and proc.returncode is None for proc in _children):
            return None
    if drain_pid() is not None:
        return None
    args = ["--drain"] + (["--threads", str(threads)] if threads else [])
    proc = _spawn(args, paths.home() / "runs" / "drain.log", threads)
    proc.drain = True
    return proc


def _spawn(args: list[str], log_path: Path, threads: int | None) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, RECVIZ_HOME=str(paths.home()), PYTHONUNBUFFERED="1")
    # The child imports the very recviz this process runs, even from an uninstalled checkout.
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    if threads:  # numpy's BLAS reads these at import
        env.update(OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "recviz.experiments.worker", *args],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True, close_fds=True)
    with _children_lock:
        _children.append(proc)
    return proc


def children() -> list[subprocess.Popen]:
    """Workers this process started and has not reaped yet (tests stop them in teardown)."""
    return list(_children)


def reap_children() -> None:
    """Collect exited workers so they do not linger as zombies (call from the page poller),
    keeping their exit statuses for `exit_status`."""
    with _children_lock:  # the Streamlit server calls this from several threads
        for proc in _children:
            if proc.poll() is not None:
                _exits[proc.pid] = proc.returncode
        _children[:] = [proc for proc in _children if proc.returncode is None]


def exit_status(pid: int) -> int | None:
    """How a worker this process started ended (negative: killed by that signal); None when it
    is not ours or still running. The reaper asks once it has found the pid dead, so the status
    of a child that has just died is waited for here (the kernel may show it dying a moment
    before `waitpid` can collect it), not lost to that race."""
    with _children_lock:
        ours = [proc for proc in _children if proc.pid == pid]
    for proc in ours:
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
    reap_children()
    return _exits.get(pid)


def wait(run_id: int, timeout: float = 60.0, poll: float = 0.1) -> Run:
    """Poll the store until the run is finished; a worker found dead is reaped on the way.
    Raises TimeoutError with the run's state when `timeout` seconds pass."""
    store = RunStore()
    deadline = time.monotonic() + timeout
    while True:
        reap_children()
        run = store.get(run_id)
        if run.finished:
            return run
        if run.status == "running" and run.pid and not pid_alive(run.pid):
            store.reap(exits=exit_status)  # status reads "failed" on the next pass
        elif time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} is still {run.status} after {timeout:g} s")
        time.sleep(poll)


# ---- the drain lock ------------------------------------------------------------------------------
def _try_lock(patience: float = 0.0) -> int | None:
    """The locked file descriptor, or None when another process holds the lock. A drain waits
    `patience` seconds, so that a `drain_pid()` probe holding the lock for an instant cannot make
    it give up with runs still queued."""
    fd = os.open(paths.home() / "drain.lock", os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.02)


def _unlock(fd: int) -> None:
    os.ftruncate(fd, 0)
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def recover(threads: int | None = None) -> list[int]:
    """What every reader of the store does first: mark runs whose worker is gone as failed, and if
    runs are queued while no worker owns the queue (it was killed, the machine restarted, a full
    disk ended it), start one. Returns the ids of the runs found dead."""
    store = RunStore()
    if not store.writable:  # a read-only data directory: nothing can be marked or started here
        return []
    reaped = store.reap(exits=exit_status)
    if store.has_queued() and drain_pid() is None:
        ensure_drain(threads)
    return reaped


def drain_pid() -> int | None:
    """Pid of the live drain worker, or None when none holds the lock."""
    fd = _try_lock()
    if fd is not None:
        _unlock(fd)
        return None
    try:
        return int((paths.home() / "drain.lock").read_text().strip() or 0) or -1
    except (OSError, ValueError):
        return -1  # held, pid not written yet


# ---- inside the worker process ---------------------------------------------------------------------
def drain(threads: int | None = None, redirect: bool = False) -> int:
    """Train queued runs until none is left; returns how many ran (0 when another drain is
    active). With `redirect`, each run's output goes to its own log file."""
    fd = _try_lock(patience=0.5)
    if fd is None:
        print("another drain worker is active; exiting", flush=True)
        return 0
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    store = RunStore()
    store.reap()
    try:
        return _drain_loop(store, fd, threads, redirect)
    except KeyboardInterrupt as exc:  # SIGTERM between claiming a run and execute's own handler
        for run in store.list(status="running"):
            if run.pid == os.getpid():  # the handler's message names the signal and this process
                store.mark_cancelled(run.id, reason=str(exc) or "stopped by a signal before training began")
        raise


def _drain_loop(store: RunStore, fd: int, threads: int | None, redirect: bool) -> int:
    done = 0
    while not _terminated.is_set():
        run = store.next_queued()
        if run is not None:
            done += _execute_queue(store, run, threads, redirect)
            continue
        _unlock(fd)  # then look once more: a submit may have seen our lock just before this
        if not store.has_queued() or (fd := _try_lock(patience=0.5)) is None:
            return done
        os.write(fd, f"{os.getpid()}\n".encode())
    _unlock(fd)
    return done


def _execute_queue(store: RunStore, first: Run, threads: int | None, redirect: bool) -> int:
    """Train `first` (claimed by this process) and the runs queued after it with the executor the
    app chose (the Train page's "Where runs train"), for as long as that choice stands: each time
    the executor can take more, it gets the runs queued meanwhile (after a change, the next batch
    goes to the newly chosen one). Returns how many runs it took. Whatever stops the executor
    itself (a cluster that cannot be reached) fails the runs it took that are still running with
    that message, so the page says it instead of waiting."""
    from recviz.experiments import executors

    chosen = executors.chosen()
    executor = executors.get(chosen["executor"])(address=chosen["address"], threads=threads, run_logs=redirect,
                                                 interrupted=_terminated)
    taken = [first.id]

    def more(limit: int | None) -> list[int]:
        ids = []
        while (limit is None or len(ids) < limit) and not _terminated.is_set() and executors.chosen() == chosen \
                and (run := store.next_queued()) is not None:
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
                store.fail(run_id, record.describe(exc))
    return len(taken)


def _runs(ids: list[int]) -> str:
    return f"run {ids[0]}" if len(ids) == 1 else f"runs {', '.join(map(str, ids))}"


def execute(run_id: int, threads: int | None = None, store: RunStore | None = None,
            redirect: bool = False, holder: int | None = None) -> str:
    """Train one run on this machine now (queued, or claimed by this process — or by `holder`, the
    process that started this one for it) and record its outcome in the store; returns the final
    status."""
    from recviz.experiments import executors

    executor = executors.get("local")(threads=threads, run_logs=redirect, interrupted=_terminated)
    return executor.train_one(store or RunStore(), run_id, None, holder=holder)


def _stop_without(holder: int, poll: float = 0.5) -> None:
    """End this process, as a kill would, once `holder` (its parent) is gone: its runs are then
    reaped as that process's, and nothing trains on for a driver that no longer exists."""
    def watch() -> None:
        while os.getppid() == holder:
            time.sleep(poll)
        os._exit(70)

    threading.Thread(target=watch, daemon=True, name="recviz-holder").start()


describe = record.describe  # the stored error text (kept importable from here)


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
    args = parser.parse_args(argv)
    if (args.run_id is None) != args.drain:
        parser.error("give either a RUN_ID or --drain")
    sys.stdout.reconfigure(line_buffering=True)
    signal.signal(signal.SIGTERM, _on_terminate)
    signal.signal(signal.SIGINT, _on_terminate)
    try:
        if args.drain:
            drain(args.threads, redirect=True)
        else:
            if args.holder:
                _stop_without(args.holder)
            execute(args.run_id, args.threads, redirect=True, holder=args.holder)  # `launch`: already its log
    except KeyboardInterrupt:
        return 130
    except RecvizError as err:
        print(err, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
