"""Is a run's worker still alive, and if not, what happened to it.

The heartbeat is judged with clocks a jump cannot fool. A worker's beat records three values:
`heartbeat_at` (wall clock, for people: "last seen at"), `heartbeat_mono` (`time.monotonic()`,
Linux's CLOCK_MONOTONIC: one system-wide clock that counts from boot and is never set, so an NTP
step, a manual `date -s` or a time-zone change leaves it alone) and `boot_id` (the kernel's id of
this boot, which says whether two monotonic readings are comparable at all). The reaper judges a
run only with what cannot lie to it:

- the worker's pid is gone (or a zombie): dead;
- the run was claimed on another boot: dead (the machine restarted; the pid may belong to someone
  else now);
- same boot: silent for `now_mono - heartbeat_mono` seconds, both readings of the same monotonic
  clock. Wall-clock time is never compared, so a clock jump cannot fail a healthy run. (CLOCK_MONOTONIC
  also stops while the machine is suspended, so a laptop lid closed for an hour is not silence.)
- a run stored by an earlier version has no monotonic beat: only its pid is judged.

What happened, when it can be known: the process that started a worker knows its exit status
(`exits(pid)`: negative = killed by that signal); a SIGKILL while the memory cgroup's
`oom_kill` count rose since the run was claimed was the out-of-memory killer.
"""

from __future__ import annotations

import os
import signal
import time
from functools import lru_cache
from pathlib import Path

_OOM_FILES = (Path("/sys/fs/cgroup/memory.events"),  # cgroup v2
              Path("/sys/fs/cgroup/memory/memory.oom_control"))  # cgroup v1


@lru_cache(maxsize=1)
def boot_id() -> str:
    """This boot's id ('' where the kernel does not say: then only pids are judged)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def beat() -> dict:
    """The values a heartbeat writes (column → value)."""
    return {"heartbeat_at": time.time(), "heartbeat_mono": time.monotonic(), "boot_id": boot_id()}


def oom_kills() -> int | None:
    """How many processes the out-of-memory killer has killed in this memory cgroup (None: unknown)."""
    for path in _OOM_FILES:
        try:
            for line in path.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            continue
    return None


def pid_alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (a killed child nobody reaped yet still
    answers os.kill(pid, 0), so /proc decides)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux): trust os.kill
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def verdict(run, timeout: float, exits=None) -> str | None:
    """Why `run` (status running) has no live worker, or None while it has one. `exits(pid)`: the
    exit status of a dead worker, where known."""
    this_boot = boot_id()
    if run.boot_id and this_boot and run.boot_id != this_boot:
        return f"the machine restarted while worker process {run.pid} trained it"
    if run.pid is not None and not pid_alive(run.pid):
        return f"worker process {run.pid} {how_it_ended(run, exits(run.pid) if exits else None)}"
    if run.heartbeat_mono is not None and run.boot_id == this_boot:
        silent = time.monotonic() - run.heartbeat_mono
        if silent > timeout:
            return f"worker process {run.pid} stopped answering (hung?): no heartbeat for {silent:.0f} s"
    return None


def how_it_ended(run, returncode: int | None) -> str:
    """'was killed by signal 9 (SIGKILL)…' / 'exited with status 3…' / 'exited without finishing
    (killed or crashed)' — as much as can be known."""
    oom = _oom_since(run)
    if returncode is not None and returncode < 0:
        text = f"was killed by signal {-returncode} ({signal_name(-returncode)})"
        if -returncode == signal.SIGKILL and oom:
            text = "ran out of memory: " + text + " from the out-of-memory killer"
        return text
    if returncode is not None:
        return f"exited with status {returncode} without finishing"
    if oom:
        return ("exited without finishing; the out-of-memory killer struck meanwhile, so it most likely "
                "ran out of memory")
    return "exited without finishing (killed or crashed)"


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _oom_since(run) -> bool:
    now = oom_kills()
    return run.oom_kills is not None and now is not None and now > run.oom_kills
