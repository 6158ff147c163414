"""The run store: one SQLite file (`home()/runs.db`) that the app, the CLI and worker processes
share, with each run's artifacts in `home()/runs/<id>/`.

Why it looks like this:
- WAL mode + a busy timeout: a worker writes epochs while the app's threads read, without
  "database is locked" errors and without readers ever seeing half a transaction.
- A fresh connection per call (no shared connection object): the Streamlit server is
  multi-threaded and workers are separate processes; sqlite3 connections are cheap to open.
- Every write is one short `BEGIN IMMEDIATE` transaction: a crash mid-write rolls back that write
  only, and `next_queued` can claim a run atomically (two workers never take the same run).
- A terminal status (done / failed / cancelled) is final: a late write from a worker that was
  already reaped cannot turn a failed run back into a running or done one.
- A worker that dies cannot mark its own run failed, so `reap()` does it for it (dead pid or stale
  heartbeat); the app calls it at start and on every poll.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd

from recviz import paths
from recviz.config import RunConfig
from recviz.errors import RecvizError

SCHEMA_VERSION = 1
STATUSES = ("queued", "running", "done", "failed", "cancelled")
ACTIVE = ("queued", "running")
BUSY_TIMEOUT_S = 10.0
HEARTBEAT_TIMEOUT_S = 120.0
EPOCH_COLUMNS = ["epoch", "phase", "train_loss", "seconds", "samples_per_second", "valid"]
_EPOCH_KEYS = set(EPOCH_COLUMNS)

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: run dirs are named by id
    created_at REAL NOT NULL, started_at REAL, finished_at REAL,  -- unix seconds
    status TEXT NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    config TEXT NOT NULL,  -- RunConfig JSON (the next four columns copy it for filtering)
    dataset TEXT NOT NULL, model TEXT NOT NULL, protocol TEXT NOT NULL, seed INTEGER NOT NULL,
    sweep_id,  -- no type: stored as given (int or str), NULL outside sweeps
    pid INTEGER, heartbeat_at REAL, cancel_requested INTEGER NOT NULL DEFAULT 0,
    error TEXT,  -- readable text of a failed run
    summary TEXT,  -- JSON: final test metrics, timing, device, best epoch
    device TEXT, log_path TEXT
);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status);
CREATE INDEX IF NOT EXISTS runs_sweep ON runs(sweep_id);
CREATE TABLE IF NOT EXISTS epochs (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL, phase TEXT NOT NULL DEFAULT 'train',
    train_loss REAL, valid TEXT,  -- valid: JSON validation metrics of this epoch
    seconds REAL, samples_per_second REAL,
    extra TEXT,  -- JSON: the report's other keys (eval_seconds, samples, ...)
    PRIMARY KEY (run_id, phase, epoch)
);
"""
# Migrations: MIGRATIONS[v] takes a database at version v-1 to version v.
MIGRATIONS = {1: _SCHEMA_V1}


@dataclass
class Run:
    id: int
    status: str
    config: RunConfig
    dataset: str
    model: str
    protocol: str
    seed: int
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    sweep_id: int | str | None = None
    pid: int | None = None
    heartbeat_at: float | None = None
    cancel_requested: bool = False
    error: str | None = None
    summary: dict | None = None
    device: str | None = None
    log_path: str | None = None

    @property
    def finished(self) -> bool:
        return self.status not in ACTIVE

    def to_row(self) -> dict:
        """Plain dict for tables and export: ids, status, config and the final test metrics."""
        summary = self.summary or {}
        return {"id": self.id, "model": self.model, "dataset": self.dataset, "protocol": self.protocol,
                "protocol_detail": summary.get("protocol_detail"), "status": self.status,
                "seed": self.seed, "created_at": self.created_at, "sweep_id": self.sweep_id,
                "device": self.device, "error": self.error, "metrics": summary.get("metrics", {}),
                "best_epoch": summary.get("best_epoch"), "epochs_run": summary.get("epochs_run"),
                "train_seconds": summary.get("train_seconds"), "config": self.config.to_dict()}


class RunStore:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else paths.home() / "runs.db"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._init()

    # ---- plumbing -----------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; writes say BEGIN IMMEDIATE themselves.
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL: a process crash loses no commit
        return conn

    @contextlib.contextmanager
    def transaction(self):
        """One write transaction: committed on success, rolled back on any exception (including
        a crash of the process, which SQLite's journal undoes on the next open)."""
        with contextlib.closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlocks
            with conn:  # commit / rollback
                yield conn

    @contextlib.contextmanager
    def _read(self):
        with contextlib.closing(self._connect()) as conn:
            yield conn

    def _init(self) -> None:
        """WAL on (a setting stored in the file) and the schema migrated to SCHEMA_VERSION. Reads
        first, so opening an up-to-date store never takes the write lock."""
        with contextlib.closing(self._connect()) as conn:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
                return
        with self.transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RecvizError(f"{self.path} was written by a newer RecViz (schema {version}, "
                                  f"this one knows {SCHEMA_VERSION})", fix="upgrade recviz")
            for v in range(version + 1, SCHEMA_VERSION + 1):
                # statement by statement: executescript() would COMMIT our transaction
                for stmt in filter(str.strip, MIGRATIONS[v].split(";\n")):
                    conn.execute(stmt)
                conn.execute(f"PRAGMA user_version = {v}")

    def _highest_run_dir(self) -> int:
        """The largest id among the run directories on disk (0 when there are none)."""
        root = self.path.parent / "runs"
        try:
            return max((int(p.name) for p in root.iterdir() if p.name.isdigit()), default=0)
        except FileNotFoundError:
            return 0

    def run_dir(self, run_id: int) -> Path:
        """Where a run's artifacts and log live (created on demand by the worker)."""
        return self.path.parent / "runs" / str(int(run_id))

    def _set(self, run_id: int, where: str, **values) -> bool:
        """UPDATE one run under a status condition; True when the row changed."""
        cols = ", ".join(f"{k} = ?" for k in values)
        with self.transaction() as conn:
            cur = conn.execute(f"UPDATE runs SET {cols} WHERE id = ? AND {where}",
                               (*values.values(), run_id))
            return cur.rowcount == 1

    # ---- create and read ----------------------------------------------------------------------
    def create(self, config: RunConfig, sweep_id: int | str | None = None, claim: int | None = None) -> int:
        """A new run, queued — or, with `claim` (a pid), already running under that process, in the
        same transaction, so no queue worker can take a run its creator trains itself (`recviz
        train`). Its id is never one a run directory already has: a store created anew beside the
        artifacts of a lost one (runs.db deleted) must not hand out their ids, or a new run would
        inherit a dead run's weights and embedding map."""
        config = config.pinned()  # the saved dataset's version this run will read, for good
        taken = self._highest_run_dir()
        with self.transaction() as conn:
            seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'runs'").fetchone()
            if seq is None:
                conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('runs', ?)", (taken,))
            elif seq[0] < taken:
                conn.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'runs'", (taken,))
            cur = conn.execute(
                "INSERT INTO runs (created_at, status, config, dataset, model, protocol, seed, sweep_id)"
                " VALUES (?, 'queued', ?, ?, ?, ?, ?, ?)",
                (time.time(), config.to_json(), config.dataset, config.model, config.protocol,
                 config.seed, sweep_id))
            run_id = cur.lastrowid
            conn.execute("UPDATE runs SET log_path = ? WHERE id = ?",
                         (str(self.run_dir(run_id) / "worker.log"), run_id))
            if claim is not None:
                now = time.time()
                conn.execute("UPDATE runs SET status = 'running', pid = ?, started_at = ?, heartbeat_at = ?"
                             " WHERE id = ?", (claim, now, now, run_id))
        return run_id

    def get(self, run_id: int) -> Run:
        with self._read() as conn:
            row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RecvizError(f"there is no run {run_id} in {self.path}", fix="pick a run from the list")
        return _to_run(row)

    def list(self, status: str | tuple | list | None = None, dataset: str | None = None,
             model: str | None = None, sweep_id: int | str | None = None, limit: int = 200) -> list[Run]:
        """Runs newest first, optionally filtered (`status` may be one status or several)."""
        where, args = [], []
        if status is not None:
            statuses = (status,) if isinstance(status, str) else tuple(status)
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            args += statuses
        for col, value in (("dataset", dataset), ("model", model), ("sweep_id", sweep_id)):
            if value is not None:
                where.append(f"{col} = ?")
                args.append(value)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, int(limit))).fetchall()
        return [_to_run(r) for r in rows]

    def epochs(self, run_id: int) -> pd.DataFrame:
        """The run's stored epoch reports as `epochs_frame` lays them out, in the order they arrived."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {', '.join(EPOCH_COLUMNS)}, extra FROM epochs WHERE run_id = ? ORDER BY rowid",
                (run_id,)).fetchall()
        return epochs_frame([{**{k: r[k] for k in EPOCH_COLUMNS}, "valid": _loads(r["valid"]),
                              **(_loads(r["extra"]) or {})} for r in rows])

    # ---- the worker's transitions -------------------------------------------------------------
    def mark_running(self, run_id: int, pid: int, device: str | None = None) -> bool:
        """Take a queued run (or update the device of one this pid already holds). False when
        the run is not ours to run: cancelled while queued, finished, or held by another pid."""
        now = time.time()
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE runs SET status = 'running', pid = ?, device = COALESCE(?, device),"
                " started_at = COALESCE(started_at, ?), heartbeat_at = ?"
                " WHERE id = ? AND (status = 'queued' OR (status = 'running' AND pid = ?))",
                (pid, device, now, now, run_id, pid))
            return cur.rowcount == 1

    def next_queued(self, pid: int | None = None) -> Run | None:
        """Claim the oldest queued run for `pid` (default: this process) in one transaction."""
        pid = os.getpid() if pid is None else pid
        now = time.time()
        with self.transaction() as conn:
            row = conn.execute("SELECT id FROM runs WHERE status = 'queued' ORDER BY id LIMIT 1").fetchone()
            if row is None:
                return None
            conn.execute("UPDATE runs SET status = 'running', pid = ?, started_at = ?, heartbeat_at = ?"
                         " WHERE id = ? AND status = 'queued'", (pid, now, now, row["id"]))
        return self.get(row["id"])

    def has_queued(self) -> bool:
        return bool(self.list(status="queued", limit=1))

    def heartbeat(self, run_id: int) -> bool:
        """Record that the worker is alive. False when the run is no longer running (reaped,
        deleted): the worker should then stop."""
        return self._set(run_id, "status = 'running'", heartbeat_at=time.time())

    def add_epoch(self, run_id: int, report: dict) -> None:
        """Store one epoch report of the training loop (re-sending an epoch replaces it)."""
        valid = report.get("valid")
        extra = {k: v for k, v in report.items() if k not in _EPOCH_KEYS}
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO epochs (run_id, epoch, phase, train_loss, valid, seconds,"
                " samples_per_second, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, int(report["epoch"]), str(report.get("phase") or "train"),
                 _num(report.get("train_loss")), None if valid is None else _dumps(valid),
                 _num(report.get("seconds")), _num(report.get("samples_per_second")),
                 _dumps(extra) if extra else None))
            conn.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ? AND status = 'running'",
                         (time.time(), run_id))

    def finish(self, run_id: int, summary: dict) -> bool:
        return self._end(run_id, "done", summary=_dumps(summary))

    def fail(self, run_id: int, error: str) -> bool:
        return self._end(run_id, "failed", error=str(error))

    def mark_cancelled(self, run_id: int) -> bool:
        return self._end(run_id, "cancelled")

    def _end(self, run_id: int, status: str, **values) -> bool:
        """Move an active run to a terminal status; False when it had already ended."""
        return self._set(run_id, "status IN ('queued', 'running')", status=status,
                         finished_at=time.time(), **values)

    # ---- the app's controls -------------------------------------------------------------------
    def request_cancel(self, run_id: int) -> str:
        """Ask a run to stop. A queued run is cancelled at once (no worker will ever look at it);
        a running one gets the flag its worker polls. Returns the run's status afterwards."""
        with self.transaction() as conn:
            conn.execute("UPDATE runs SET status = 'cancelled', cancel_requested = 1, finished_at = ?"
                         " WHERE id = ? AND status = 'queued'", (time.time(), run_id))
            conn.execute("UPDATE runs SET cancel_requested = 1 WHERE id = ? AND status = 'running'",
                         (run_id,))
        return self.get(run_id).status

    def cancel_requested(self, run_id: int) -> bool:
        with self._read() as conn:
            row = conn.execute("SELECT cancel_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        return bool(row and row[0])

    def delete(self, run_id: int) -> None:
        """Remove a finished or queued run with its epochs and artifacts (a running one must be
        cancelled first, or its worker would write into nothing)."""
        with self.transaction() as conn:
            row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is not None and row["status"] == "running":
                raise RecvizError(f"run {run_id} is running", fix="cancel it first, then delete it")
            conn.execute("DELETE FROM epochs WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)

    def reap(self, heartbeat_timeout: float = HEARTBEAT_TIMEOUT_S) -> list[int]:
        """Mark runs whose worker is gone as failed, with the reason; returns their ids.

        Gone = its pid no longer exists (or is a zombie), or no heartbeat for `heartbeat_timeout`
        seconds (a hung worker, or a pid reused after a reboot). Idempotent: a reaped run is
        failed, and failed runs are never looked at again."""
        now, reaped = time.time(), []
        for r in self.list(status="running", limit=1_000_000):
            last = r.heartbeat_at or r.started_at or now
            dead = r.pid is not None and not pid_alive(r.pid)
            if not dead and now - last <= heartbeat_timeout:
                continue
            reason = (f"worker process {r.pid} exited without finishing (killed or crashed) "
                      f"during {self._current_epoch(r.id)}")
            if not dead:
                reason += f"; no heartbeat for {now - last:.0f} s"
            with self.transaction() as conn:  # only if nobody finished it meanwhile
                cur = conn.execute("UPDATE runs SET status = 'failed', error = ?, finished_at = ?"
                                   " WHERE id = ? AND status = 'running' AND pid IS ?",
                                   (reason, now, r.id, r.pid))
            if cur.rowcount == 1:
                reaped.append(r.id)
        return reaped

    def _current_epoch(self, run_id: int) -> str:
        with self._read() as conn:
            last = conn.execute("SELECT phase, epoch, (SELECT COUNT(*) FROM epochs WHERE run_id = ?)"
                                " FROM epochs WHERE run_id = ? ORDER BY rowid DESC LIMIT 1",
                                (run_id, run_id)).fetchone()
        if last is None:
            return "epoch 1 (no epoch had finished)"
        phase = "" if last[0] == "train" else f"{last[0]} "
        return f"{phase}epoch {last[1] + 1} ({last[2]} epoch(s) stored)"


def epochs_frame(reports: list[dict]) -> pd.DataFrame:
    """Epoch reports (the training loop's, or a stored run's) as one row per epoch: the
    EPOCH_COLUMNS, validation metrics both as a dict (`valid`) and spread into `valid_<metric>`
    columns for plotting, then the reports' other keys. Empty, with the EPOCH_COLUMNS, when there
    are none yet. A run trained in a notebook and the same run read back from the store give the
    same frame."""
    frame = pd.DataFrame([{k: r.get(k) for k in EPOCH_COLUMNS} for r in reports], columns=EPOCH_COLUMNS)
    frame["valid"] = [r.get("valid") or {} for r in reports]
    metrics = pd.DataFrame(list(frame["valid"]), index=frame.index)
    extra = pd.DataFrame([{k: v for k, v in r.items() if k not in _EPOCH_KEYS} for r in reports],
                         index=frame.index)
    for col in metrics.columns:
        frame[f"valid_{col}"] = metrics[col]
    for col in extra.columns.difference(frame.columns, sort=False):
        frame[col] = extra[col]
    return frame


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


# ---- rows and JSON --------------------------------------------------------------------------------
_RUN_FIELDS = {f.name for f in fields(Run)}


def _to_run(row: sqlite3.Row) -> Run:
    # Tolerant: runs stored by another RecViz version (other config keys, columns) stay readable.
    d = {k: v for k, v in dict(row).items() if k in _RUN_FIELDS}
    raw = _loads(d.pop("config")) or {}
    d["config"] = RunConfig.from_stored(raw)
    d["summary"] = _loads(d["summary"])
    d["cancel_requested"] = bool(d["cancel_requested"])
    return Run(**d)


def _dumps(obj) -> str:
    """JSON that also takes numpy scalars and arrays (metrics often are)."""
    return json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))


def _loads(text: str | None):
    return None if text is None else json.loads(text)


def _num(v) -> float | None:
    return None if v is None else float(v)
