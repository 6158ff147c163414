"""Which process holds the run store's write lock, and whether it is stopped.

SQLite cannot say who holds its lock; the kernel can (its lock table, /proc/locks, is Linux's),
with no cooperation from the holder — a process stopped (SIGSTOP, ^Z) inside a write transaction
gives none. A writer that times out on the lock names that process (`db`), and a reader ends a stale
drain worker stopped that way (`launch.end_stopped_writer`). Beside `liveness`, which judges a
run's worker by its pid and heartbeat. Also the test hook that stops a worker inside its write.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

WAL_WRITE_LOCK = 120  # the byte of the `-shm` file SQLite locks (fcntl) while a WAL transaction writes


def write_lock_holder(path: Path) -> int | None:
    """The pid of the process holding the write lock of the WAL store at `path`, or None (none,
    or not knowable: the kernel's lock table, /proc/locks, is Linux's). SQLite cannot say who holds
    its lock; the kernel can, which needs no cooperation from the holder (a stopped one gives none)."""
    try:
        inode = os.stat(f"{path}-shm").st_ino
        table = Path("/proc/locks").read_text()
    except OSError:
        return None
    for line in table.splitlines():
        f = line.split()  # "1: POSIX  ADVISORY  WRITE 1234 08:01:5678 120 120"
        if len(f) >= 8 and f[1] == "POSIX" and f[3] == "WRITE" and f[5].rsplit(":", 1)[-1] == str(inode):
            end = int(f[7]) if f[7] != "EOF" else float("inf")
            if int(f[6]) <= WAL_WRITE_LOCK <= end and int(f[4]) > 0:
                return int(f[4])
    return None


def stopped_writer(path: Path) -> int | None:
    """The pid holding the store's write lock when that process is stopped (state T or t in
    /proc), else None."""
    pid = write_lock_holder(path)
    if pid is None or pid == os.getpid():
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return pid if stat[stat.rindex(")") + 2] in "Tt" else None


STOP_IN_WRITE_ENV = "RECVIZ_TEST_STOP_IN_HEARTBEAT"  # test hook: a flag file's path (see below)


def stop_here_for_test() -> None:
    """Test hook: with STOP_IN_WRITE_ENV set, the first worker to create that file stops itself
    (SIGSTOP) here, inside its heartbeat's write transaction, holding the store's write lock."""
    flag = os.environ.get(STOP_IN_WRITE_ENV)
    if flag:
        try:
            os.close(os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        os.kill(os.getpid(), signal.SIGSTOP)
