"""Ray's helper processes end with the driver that started them, even when it is SIGKILLed.

A cluster started in the driver (`--address local`) is a tree of processes: Ray binds the ones it
starts itself (GCS, raylet, monitors) to the driver with the kernel's parent-death signal, but the
raylet's own children — the dashboard and runtime-env agents, ~100 MB each — only notice that the
raylet is gone after tens of seconds, reparented to pid 1 meanwhile (measured: 20–35 s here; longer
under load). So the driver starts this watcher beside the cluster: a small process, in a session
of its own, that holds the read end of a pipe whose write end only the driver has. Every second it
notes the processes below Ray's (pid and start time, so a reused pid is never touched); when the
pipe ends — the driver exited, however it died — it SIGKILLs those still alive and exits.

Linux only (it reads /proc); elsewhere Ray's own fate-sharing is all there is.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

SNAPSHOT_S = 1.0  # how often the watcher notes the processes below Ray's
_pipes: list[int] = []  # write ends held by this driver for as long as it lives (never written)


def supported() -> bool:
    return sys.platform.startswith("linux") and Path("/proc/self/stat").exists()


def children() -> set[int]:
    """This process's children now (to tell which ones `ray.init` started)."""
    me = os.getpid()
    return {pid for pid, (ppid, _) in _table().items() if ppid == me}


def watch(roots: set[int]) -> int | None:
    """Start the watcher for the processes `roots` (those Ray started in this driver) and all that
    descend from them; returns its pid (None where it cannot run)."""
    if not roots or not supported():
        return None
    read_end, write_end = os.pipe()  # both non-inheritable: Ray's processes never hold the write end
    proc = subprocess.Popen([sys.executable, "-m", "recviz.experiments.executors.ray_reaper", *map(str, sorted(roots))],
                            stdin=read_end, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, close_fds=True)
    os.close(read_end)
    _pipes.append(write_end)
    return proc.pid


def _table() -> dict[int, tuple[int, str]]:
    """pid → (parent pid, start time) of every live process, from /proc."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z":
            table[int(name)] = (int(fields[1]), fields[19])
    return table


def below(roots: set[int], table: dict[int, tuple[int, str]]) -> dict[int, str]:
    """`roots` and every process descending from them: pid → start time."""
    found = {pid for pid in roots if pid in table}
    grew = True
    while grew:
        more = {pid for pid, (ppid, _) in table.items() if ppid in found and pid not in found}
        found |= more
        grew = bool(more)
    return {pid: table[pid][1] for pid in found}


def main(argv: list[str]) -> int:
    roots = {int(a) for a in argv}
    seen: dict[int, str] = {}
    while True:
        seen.update(below(roots | set(seen), _table()))
        ready, _, _ = select.select([0], [], [], SNAPSHOT_S)
        if ready and not os.read(0, 1):  # the driver is gone: end what it started
            table = _table()
            for pid, started in seen.items():
                if table.get(pid, (None, None))[1] == started:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
