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

Test hook: `RECVIZ_TEST_SLEEP_BEFORE_FIT=<seconds>` makes the worker wait (cancellable) after it
has marked the run running and before training, so tests can kill or cancel a run mid-way.
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
import traceback
from pathlib import Path

from recviz import paths
from recviz.config import RunConfig
from recviz.errors import RecvizError
from recviz.experiments import record
from recviz.experiments.store import Run, RunStore, pid_alive

TEST_SLEEP_ENV = "RECVIZ_TEST_SLEEP_BEFORE_FIT"
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


def launch(run_id: int, threads: int | None = None) -> subprocess.Popen:
    """Start a worker for this one run now (outside the queue), logging to the run's log file."""
    args = [str(run_id)] + (["--threads", str(threads)] if threads else [])
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
    drain_log = paths.home() / "runs" / "drain.log"
    while not _terminated.is_set():
        run = store.next_queued()
        if run is not None and _ray_chosen():
            done += _drain_on_ray(store, run, threads)
            continue
        if run is not None:
            print(f"drain {os.getpid()}: run {run.id}", flush=True)
            execute(run.id, threads, store, redirect=redirect)
            if redirect:
                _redirect_output(drain_log)
            done += 1
            continue
        _unlock(fd)  # then look once more: a submit may have seen our lock just before this
        if not store.has_queued() or (fd := _try_lock(patience=0.5)) is None:
            return done
        os.write(fd, f"{os.getpid()}\n".encode())
    _unlock(fd)
    return done


def _ray_chosen() -> bool:
    from recviz.experiments import executors

    return executors.chosen()["executor"] == "ray"


def _drain_on_ray(store: RunStore, first: Run, threads: int | None) -> int:
    """The app chose the ray executor: claim every queued run and train them as Ray tasks, in
    parallel (this process is their driver: it stores what they report). Runs queued while these
    train join them, as long as the choice stays this cluster (after a change, the next batch
    joins the newly chosen one). A cluster that cannot be reached fails the
    claimed runs with that message, so the page says it instead of waiting."""
    from recviz.experiments import executors, ray_exec

    claimed, chosen = [], executors.chosen()

    def claim(*runs: Run) -> list[tuple[int, RunConfig]]:
        while executors.chosen() == chosen and (run := store.next_queued()) is not None:
            runs += (run,)
        if runs:
            print(f"drain {os.getpid()}: runs {', '.join(str(r.id) for r in runs)} on Ray", flush=True)
        claimed.extend(r.id for r in runs)
        return [(r.id, r.config.replace(threads=threads) if threads and not r.config.threads else r.config)
                for r in runs]

    try:
        ray_exec.execute(store, claim(first), chosen["address"], more=claim)
    except Exception as exc:  # noqa: BLE001 — every claimed run must end with its reason
        for run_id in claimed:
            if store.get(run_id).status == "running":
                store.fail(run_id, record.describe(exc))
    return len(claimed)


def execute(run_id: int, threads: int | None = None, store: RunStore | None = None,
            redirect: bool = False) -> str:
    """Train one run and record its outcome in the store; returns the final status."""
    store = store or RunStore()
    if not store.mark_running(run_id, os.getpid()):
        status = store.get(run_id).status  # a RecvizError when there is no such run
        print(f"run {run_id} is {status}, not queued: nothing to do", flush=True)
        return status
    run_dir = store.run_dir(run_id)
    watch = record.Watch(store, run_id, _terminated)
    # From here on the run is "running" in the store: everything, even the log redirection, sits
    # inside the try, so that a SIGTERM landing at any point still ends as a recorded outcome.
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        if redirect:
            _redirect_output(run_dir / "worker.log")
        print(f"worker {os.getpid()}: run {run_id} started", flush=True)
        watch.start()
        _train(store, run_id, run_dir, threads, watch)
        status = "done"
    except BaseException as exc:  # noqa: BLE001 — every outcome must reach the store
        status = _record(store, run_id, exc, watch, run_dir)
    finally:
        watch.stop()
    print(f"worker {os.getpid()}: run {run_id} {status}", flush=True)
    return status


def _train(store: RunStore, run_id: int, run_dir: Path, threads: int | None, watch: record.Watch) -> None:
    config = store.get(run_id).config
    if threads:
        config.threads = threads
    record.train_and_record(store, run_id, config, run_dir, watch,
                            before_fit=lambda: _test_pause(watch.should_stop))


def _record(store: RunStore, run_id: int, exc: BaseException, watch: record.Watch, run_dir: Path) -> str:
    """Turn how training ended into a status; a failure's full traceback goes to worker.log."""
    if not watch.lost.is_set() and not record.is_cancel(exc):
        traceback.print_exception(exc)
        sys.stderr.flush()
    return record.record_outcome(store, run_id, exc, watch, run_dir / "worker.log")


describe = record.describe  # the stored error text (kept importable from here)


def _test_pause(should_stop) -> None:
    end = time.monotonic() + float(os.environ.get(TEST_SLEEP_ENV) or 0)
    while time.monotonic() < end and not should_stop():
        time.sleep(0.05)


def _redirect_output(path: Path) -> None:
    """Point fds 1 and 2 at `path` (append), so prints, tracebacks and C-level output land there."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


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
            execute(args.run_id, args.threads)
    except KeyboardInterrupt:
        return 130
    except RecvizError as err:
        print(err, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
