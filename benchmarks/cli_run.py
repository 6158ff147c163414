"""One `recviz train` through the CLI, exactly as a user types it, in a fresh data directory: its
JSON summary plus the median seconds of its main phase's training epochs as stored (the epoch's
samples / the run's median training speed — the training pass only, no validation). Shared by the
benchmarks that time whole runs (`contention.py`, `peer.py`)."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's recviz

from recviz.experiments.store import RunStore  # noqa: E402

ML100K = os.environ.get("RECVIZ_ML100K", str(ROOT.parent / "shared" / "data" / "ml-100k"))


@contextlib.contextmanager
def _home(home: str):
    """RECVIZ_HOME pointed at `home` for a moment (the store reads it)."""
    kept = os.environ.get("RECVIZ_HOME")
    os.environ["RECVIZ_HOME"] = home
    try:
        yield
    finally:
        if kept is None:
            del os.environ["RECVIZ_HOME"]
        else:
            os.environ["RECVIZ_HOME"] = kept


def train(*options: str, env: dict | None = None) -> dict:
    """`recviz train OPTIONS --json` in a fresh data directory: the summary, with `epoch_seconds`."""
    with tempfile.TemporaryDirectory() as home:
        run_env = {**os.environ, **(env or {}), "RECVIZ_HOME": home, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "recviz", "train", *options, "--json"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=run_env, check=False, timeout=3600)
        if proc.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        with _home(home):
            epochs = RunStore().epochs(summary["run_id"])
        main = epochs[epochs["phase"] == epochs["phase"].iloc[-1]]
        return {**summary, "epoch_seconds": statistics.median(main["samples"]) / summary["samples_per_second"]}
