"""The SQLite file under the run store: schema, migrations, connections, and what happens when the
file or its directory is not what it should be.

- WAL mode + a busy timeout: a worker writes epochs while the app's threads read, without
  "database is locked" errors and without readers ever seeing half a transaction.
- A fresh connection per call (no shared connection object): the Streamlit server is
  multi-threaded and workers are separate processes; sqlite3 connections are cheap to open.
- Every write is one short `BEGIN IMMEDIATE` transaction: a crash mid-write rolls back that write
  only. A process stopped (SIGSTOP, Ctrl-Z) inside one holds the write lock until it runs again or
  ends: no waiting helps, so a writer that times out says which process it is (`writers.stopped_writer`,
  from the kernel's lock table) and how to free it, and the queue's reaper ends a stale drain worker
  stopped that way (`recviz.experiments.launch.recover`).
- A data directory this process cannot write (a read-only mount, another user's folder) is opened
  read-only: listing runs still works, nothing is created, and a command that must write says the
  directory is not writable and names it. SQLite cannot open a WAL database read-only without its
  `-shm` file, so when that cannot be created either the file is read as immutable (no locks: a
  directory nobody here can write is not being written by us).
- A damaged file (not a database, a malformed page) is a `StoreError` naming the file and how to
  recover: move it aside; a new store starts empty, and every run's settings are kept beside its
  artifacts (`runs/<id>/config.json`) to train it again.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from recviz.errors import RecvizError, StoreError
from recviz.experiments.writers import stopped_writer

SCHEMA_VERSION = 3
BUSY_TIMEOUT_S = 10.0

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
# v2: the heartbeat on the monotonic clock with the boot it counts from (`recviz.experiments.liveness`),
# how many times the run was claimed (once, always: a test proves no run trains twice) and the
# memory cgroup's out-of-memory kill count when it was claimed (to tell an OOM kill from others).
_SCHEMA_V2 = """
ALTER TABLE runs ADD COLUMN heartbeat_mono REAL;
ALTER TABLE runs ADD COLUMN boot_id TEXT;
ALTER TABLE runs ADD COLUMN claims INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN oom_kills INTEGER
"""
# v3: a run can carry a name a person gave it ("" = none; the app and `recviz runs` show it).
_SCHEMA_V3 = "ALTER TABLE runs ADD COLUMN name TEXT NOT NULL DEFAULT ''"
# Migrations: MIGRATIONS[v] takes a database at version v-1 to version v.
MIGRATIONS = {1: _SCHEMA_V1, 2: _SCHEMA_V2, 3: _SCHEMA_V3}


class Database:
    """Connections to one store file, opened read-write, or read-only when this process cannot
    write the directory."""

    def __init__(self, path: Path):
        self.path = path
        self.writable = _can_write(path)
        self._init()

    def connect(self) -> sqlite3.Connection:
        try:
            if self.writable:
                # isolation_level=None: no implicit transactions; writes say BEGIN IMMEDIATE themselves.
                conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
                conn.execute("PRAGMA foreign_keys = ON")
                conn.execute("PRAGMA synchronous = NORMAL")  # WAL: a process crash loses no commit
            else:
                conn = self._connect_read_only()
        except sqlite3.DatabaseError as e:
            raise self.error(e) from e
        conn.row_factory = sqlite3.Row
        return conn

    def _connect_read_only(self) -> sqlite3.Connection:
        if not self.path.exists():  # nothing stored, and nothing may be created: an empty store
            conn = sqlite3.connect(":memory:", isolation_level=None)
            _migrate(conn, self.path)
            return conn
        uri = self.path.resolve().as_uri()
        try:
            conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
            return conn
        except sqlite3.OperationalError:  # WAL without a -shm file it may create
            return sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None)

    @contextlib.contextmanager
    def transaction(self):
        """One write transaction: committed on success, rolled back on any exception (including
        a crash of the process, which SQLite's journal undoes on the next open)."""
        if not self.writable:
            raise self.not_writable()
        with contextlib.closing(self.connect()) as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlocks
                with conn:  # commit / rollback
                    yield conn
            except sqlite3.OperationalError as e:
                stopped = stopped_writer(self.path) if "locked" in str(e).lower() else None
                if stopped is not None:  # waiting longer would not help: say who holds it and how to free it
                    raise StoreError(
                        f"the run store {self.path} is locked by process {stopped}, which is stopped (SIGSTOP, "
                        "Ctrl-Z or a debugger) in the middle of writing it",
                        fix=f"resume it (kill -CONT {stopped}) or end it (kill {stopped}); its unfinished write "
                            "is rolled back") from e
                raise self.error(e) from e
            except sqlite3.DatabaseError as e:
                raise self.error(e) from e

    @contextlib.contextmanager
    def read(self):
        with contextlib.closing(self.connect()) as conn:
            try:
                yield conn
            except sqlite3.DatabaseError as e:
                raise self.error(e) from e

    def _init(self) -> None:
        """WAL on (a setting stored in the file) and the schema migrated to SCHEMA_VERSION. Reads
        first, so opening an up-to-date store never takes the write lock."""
        with self.read() as conn:
            if not self.writable:
                _check_version(conn, self.path)
                return
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
                return
        with self.transaction() as conn:
            _migrate(conn, self.path)

    # ---- errors for people ----------------------------------------------------------------------
    def error(self, e: sqlite3.DatabaseError) -> Exception:
        """A StoreError for a damaged, full or unwritable store; other errors (a lock held too
        long) pass through unchanged."""
        text = str(e).lower()
        if self.path.exists() and not self.path.is_file():
            return StoreError(f"the run store {self.path} is not a file (a folder or a device is in its place)",
                              fix=f"move it aside (mv {self.path} {self.path}.moved) and run the command again")
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return StoreError(
                f"the run store {self.path} is damaged ({e})",
                fix=f"move it aside (mv {self.path} {self.path}.damaged) and run the command again: a new, empty "
                    f"store starts and run ids continue after the old ones; each run's settings are kept in "
                    f"{self.path.parent / 'runs'}/<id>/config.json (finished runs' results in meta.json) to "
                    "train it again")
        if "readonly" in text or "read-only" in text or "unable to open" in text:
            return self.not_writable(e)
        if "disk is full" in text:
            return StoreError(f"the disk holding the run store {self.path} is full ({e})",
                              fix="free some space there and run the command again")
        return e

    def not_writable(self, e: Exception | None = None) -> StoreError:
        detail = f" ({e})" if e else ""
        return StoreError(f"the data directory {self.path.parent} is not writable{detail}; this command "
                          "needs to write the run store",
                          fix="make it writable (check its permissions and mount), or point RECVIZ_HOME at a "
                              "writable directory; reading commands (recviz runs) work as they are")


def _can_write(path: Path) -> bool:
    if path.exists():
        return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    return os.access(path.parent, os.W_OK)


def _check_version(conn: sqlite3.Connection, path: Path) -> int:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise RecvizError(f"{path} was written by a newer RecViz (schema {version}, "
                          f"this one knows {SCHEMA_VERSION})", fix="upgrade recviz")
    return version


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    for v in range(_check_version(conn, path) + 1, SCHEMA_VERSION + 1):
        # statement by statement: executescript() would COMMIT our transaction
        for stmt in filter(str.strip, MIGRATIONS[v].split(";\n")):
            conn.execute(stmt)
        conn.execute(f"PRAGMA user_version = {v}")
