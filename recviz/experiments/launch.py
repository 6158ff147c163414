"""Worker processes, from the outside: queue a run and make sure a drain worker trains it
(`submit`), start a worker for one run now (`launch`), keep track of the workers this process
started (`children`, `reap_children`, `exit_status`), find runs whose worker is gone (`recover`),
and the drain lock that lets one drain per data directory own the queue. What a worker does once
it runs is `recviz.experiments.worker`; this module imports no executor, so executors (the pool)
can start workers too."""

from __future__ import annotations

import contextlib
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
from recviz.experiments.liveness import pid_alive
from recviz.experiments.store import Run, RunStore
from recviz.files import move_into_place

_children: list[subprocess.Popen] = []
_children_lock = threading.Lock()
_exits: dict[int, int] = {}  # pid → exit status of the workers this process started that have ended


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


def launch(run_id: int, threads: int | None = None, holder: int | None = None,
           serve: int | None = None) -> subprocess.Popen:
    """Start a worker for this one run now (outside the queue), logging to the run's log file.
    `holder`: the pid of the process that holds the run (claimed it) and started this worker for
    it — a pool's driver, this process: the worker trains it for that process, and stops when it
    is gone. `serve`: the write end of a pipe (with `holder`) — the worker then goes on to train
    the further runs whose ids the holder writes to its stdin, and says on that pipe how each
    ended (`recviz.experiments.worker.serve`)."""
    args = [str(run_id)] + (["--threads", str(threads)] if threads else []) + (["--holder", str(holder)] if holder else [])
    if serve is not None:
        args += ["--serve", str(serve)]
    return _spawn(args, RunStore().run_dir(run_id) / "worker.log", threads, serve)


def ensure_drain(threads: int | None = None) -> subprocess.Popen | None:
    """Start a drain worker unless one is alive (or one this process started is still starting:
    ten quick submits start one drain, not ten that would race for the lock); the app may call
    this at start to pick up runs queued before a restart. Returns the new process, or None when
    one was already running."""
    reap_children()
    holder = _holder()
    stale = holder[0] if _stale(holder) and _locked() else None  # stopped: not a drain any more
    with _children_lock:  # one this process started is still starting (it has not locked yet)
        if any(getattr(proc, "drain", False) and proc.returncode is None and proc.pid != stale
               for proc in _children):
            return None
    if drain_pid() is not None:
        return None
    args = ["--drain"] + (["--threads", str(threads)] if threads else [])
    proc = _spawn(args, paths.home() / "runs" / "drain.log", threads)
    proc.drain = True
    return proc


def _spawn(args: list[str], log_path: Path, threads: int | None, reply_fd: int | None = None) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, RECVIZ_HOME=str(paths.home()), PYTHONUNBUFFERED="1")
    # The child imports the very recviz this process runs, even from an uninstalled checkout.
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    if threads:  # numpy's BLAS reads these at import
        env.update(OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "recviz.experiments.worker", *args],
                                stdin=subprocess.DEVNULL if reply_fd is None else subprocess.PIPE,
                                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                close_fds=True, pass_fds=() if reply_fd is None else (reply_fd,))
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
# The flock alone outlives a holder that is alive but stopped (SIGSTOP, a frozen container): the
# kernel drops it only when the process ends, so queued runs would wait forever. The holder
# therefore beats inside the lock file (`hold`: its pid, `liveness.beat()`'s monotonic reading and
# boot id, every LOCK_BEAT_S), and a holder silent for DRAIN_STALE_S — the reaper's limit for a
# run — is taken over: a new lock file replaces the old one, and a holder that wakes up finds that
# its file is no longer the lock (`still_held`) and stops taking runs.
DRAIN_STALE_S = 120.0
STALE_ENV = "RECVIZ_TEST_DRAIN_STALE_S"  # test hook: a shorter limit, for every process of the test
LOCK_BEAT_S = 2.0
_LINE = 160  # the holder line's fixed width: rewritten in place, never truncated to empty


def _lock_path() -> Path:
    return paths.home() / "drain.lock"


def try_lock(patience: float = 0.0) -> int | None:
    """The locked file descriptor, or None when another live process holds the lock. A drain waits
    `patience` seconds, so that a `drain_pid()` probe holding the lock for an instant cannot make
    it give up with runs still queued. A holder whose beat is stale is taken over."""
    fd = os.open(_lock_path(), os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if still_held(fd):  # not a file replaced by a takeover meanwhile
                return fd
            os.close(fd)
            fd = os.open(_lock_path(), os.O_RDWR | os.O_CREAT, 0o644)
            continue
        except BlockingIOError:
            if _stale(_holder()):
                os.close(fd)
                return _take_over()
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.02)


def _take_over() -> int | None:
    """A fresh lock file, locked and stamped by this process, renamed over the stale holder's."""
    path = _lock_path()
    tmp = path.with_name(f".drain.lock.{os.getpid()}")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    hold(fd)
    move_into_place(tmp, path)
    print(f"drain {os.getpid()}: took over the queue from a drain worker silent for over {stale_after():.0f} s",
          file=sys.stderr, flush=True)
    return fd


def still_held(fd: int) -> bool:
    """Whether `fd` is still the drain lock (not replaced by a takeover while this process slept)."""
    try:
        return os.fstat(fd).st_ino == os.stat(_lock_path()).st_ino
    except OSError:
        return False


def hold(fd: int) -> None:
    """Stamp the lock with this process's pid and liveness beat (the holder calls it every LOCK_BEAT_S)."""
    from recviz.experiments import liveness

    beat = liveness.beat()
    line = f"{os.getpid()} {beat['heartbeat_mono']!r} {beat['boot_id'] or '-'}"
    os.pwrite(fd, line.ljust(_LINE).encode()[:_LINE] + b"\n", 0)


def _holder() -> tuple[int, float | None, str] | None:
    try:
        parts = _lock_path().read_text().split()
        return int(parts[0]), float(parts[1]) if len(parts) > 1 else None, parts[2] if len(parts) > 2 else "-"
    except (OSError, ValueError, IndexError):
        return None


def _stale(holder) -> bool:
    """A holder of this boot whose beat is older than DRAIN_STALE_S (stopped, frozen). A holder
    that has not stamped yet, or an older version's (pid only), is never judged stale."""
    from recviz.experiments import liveness

    if holder is None or holder[1] is None:
        return False
    this_boot = liveness.boot_id() or "-"
    return holder[2] == this_boot and time.monotonic() - holder[1] > stale_after()


def stale_after() -> float:
    return float(os.environ.get(STALE_ENV) or DRAIN_STALE_S)


class Beat(threading.Thread):
    """The drain's beat in its lock file, from a daemon thread (a long run does not delay it)."""

    def __init__(self):
        super().__init__(daemon=True, name="recviz-drain-lock")
        self.fd: int | None = None
        self.lock = threading.Lock()
        self.done = threading.Event()

    def set(self, fd: int | None) -> None:
        with self.lock:
            self.fd = fd
            if fd is not None:
                hold(fd)

    def run(self) -> None:
        while not self.done.wait(LOCK_BEAT_S):
            with self.lock:
                if self.fd is not None:
                    try:
                        hold(self.fd)
                    except OSError:
                        pass


def unlock(fd: int) -> None:
    if still_held(fd):
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
    end_stopped_writer(store)
    reaped = store.reap(exits=exit_status)
    if store.has_queued() and drain_pid() is None:
        ensure_drain(threads)
    return reaped


def end_stopped_writer(store: RunStore) -> int | None:
    """A stale queue process stopped inside a write transaction holds the store's write lock, so no
    run can be reaped, taken or written until it runs again. It is ended (SIGKILL: its unfinished
    write rolls back) rather than resumed (SIGCONT would undo a stop someone chose). The queue's
    processes are its drain worker — stale when its beat in drain.lock is older than DRAIN_STALE_S;
    its run is then reaped as any dead worker's — and, runs side by side, the drain's run workers
    (`--holder` the drain): stale when their run's heartbeat is that old; the drain, alive, then
    fails the run as its killed worker's. Only these: a stopped `recviz train` or other writer is
    named in the timeout's error instead. Returns the pid ended."""
    from recviz.experiments.writers import stopped_writer

    holder, writer = _holder(), stopped_writer(store.path)
    if holder is None or writer is None:
        return None
    if writer == holder[0]:
        if not (_stale(holder) and _locked()):
            return None
        what = "drain worker"
    elif (run_id := _queue_run_of(writer, holder[0])) is not None and _silent(store, run_id):
        what = f"run {run_id}'s worker process (of drain {holder[0]})"
    else:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(writer, signal.SIGKILL)
    print(f"recviz: ended {what} {writer}: stopped for over {stale_after():.0f} s inside a write to "
          f"{store.path}, it held every writer off", file=sys.stderr, flush=True)
    deadline = time.monotonic() + 10  # the kernel frees its locks once it is gone
    while stopped_writer(store.path) == writer and time.monotonic() < deadline:
        time.sleep(0.05)
    return writer


def _queue_run_of(pid: int, drain: int) -> int | None:
    """The run that process `pid` trains for the drain `drain` (its command line: `...worker RUN_ID
    ... --holder DRAIN`), else None."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    if "recviz.experiments.worker" not in argv or "--holder" not in argv:
        return None
    at = argv.index("recviz.experiments.worker")
    holder_at = argv.index("--holder")
    if holder_at + 1 >= len(argv) or argv[holder_at + 1] != str(drain) or at + 1 >= len(argv) \
            or not argv[at + 1].isdigit():
        return None
    return int(argv[at + 1])


def _silent(store: RunStore, run_id: int) -> bool:
    """Whether the run's heartbeat (this boot's) is older than the drain's stale limit."""
    from recviz.experiments import liveness

    run = store.get(run_id)
    return run.status == "running" and run.heartbeat_mono is not None and run.boot_id == liveness.boot_id() \
        and time.monotonic() - run.heartbeat_mono > stale_after()


def drain_pid() -> int | None:
    """Pid of the live drain worker, or None when none holds the lock (or its holder is stale: a
    drain started now takes the queue over)."""
    holder = _holder()
    if _stale(holder) and _locked():
        return None
    fd = try_lock()
    if fd is not None:
        unlock(fd)
        return None
    holder = _holder()
    return holder[0] if holder is not None and holder[0] > 0 else -1  # -1: held, pid not written yet


def _locked() -> bool:
    try:
        fd = os.open(_lock_path(), os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
