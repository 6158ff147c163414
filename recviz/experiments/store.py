"""The run store: one SQLite file (`home()/runs.db`) that the app, the CLI and worker processes
share, with each run's artifacts in `home()/runs/<id>/`.

Why it looks like this:
- The file itself (WAL, one short transaction per write, read-only and damaged stores) is
  `recviz.experiments.db`; `next_queued` claims a run in one transaction, so two workers never take the
  same run.
- A terminal status (done / failed / cancelled) is final: a late write from a worker that was
  already reaped cannot turn a failed run back into a running or done one.
- A worker that dies cannot mark its own run failed, so `reap()` does it for it (dead pid, another
  boot, or a heartbeat silent on the monotonic clock: `recviz.experiments.liveness`); every reader of the
  store calls it first.
"""

from __future__ import annotations

import contextlib
import operator
import os
import shutil
import time
from pathlib import Path

import pandas as pd

from recviz import paths
from recviz.config import RunConfig
from recviz.errors import RecvizError
from recviz.experiments import liveness
from recviz.experiments.db import Database
# Run and WAITING_FOR_SLOT are read from here too (`from recviz.experiments.store import Run, RunStore`)
from recviz.experiments.stored_run import WAITING_FOR_SLOT, Run, as_float, loads_json, run_from_row  # noqa: F401
from recviz.experiments.writers import stop_here_for_test
from recviz.files import json_text, write_atomic

HEARTBEAT_TIMEOUT_S = 120.0
EPOCH_COLUMNS = ["epoch", "phase", "train_loss", "seconds", "samples_per_second", "valid"]
_EPOCH_KEYS = set(EPOCH_COLUMNS)

_BEAT = "heartbeat_at = :heartbeat_at, heartbeat_mono = :heartbeat_mono, boot_id = :boot_id"
MAX_NAME = 100  # characters in a run's name


class RunStore:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else paths.root() / "runs.db"
        with contextlib.suppress(OSError):  # a directory that cannot be created is read as empty
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = Database(self.path)
        self.transaction = self.db.transaction  # one write transaction (a context manager)
        self._read = self.db.read

    @property
    def writable(self) -> bool:
        """False when this process cannot write the data directory: reads work, writes raise."""
        return self.db.writable

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
    def create(self, config: RunConfig, sweep_id: int | str | None = None, claim: int | None = None,
               device: str | None = None) -> int:
        """A new run, queued — or, with `claim` (a pid), already running under that process, in the
        same transaction, so no queue worker can take a run its creator trains itself (`recviz
        train`); `device` is where it trains, if known (`WAITING_FOR_SLOT` for a Ray run). Its id
        is never one a run directory already has: a store created anew beside the artifacts of a
        lost one (runs.db deleted) must not hand out their ids, or a new run would inherit a dead
        run's weights and embedding map."""
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
                conn.execute(f"UPDATE runs SET status = 'running', pid = :pid, started_at = :heartbeat_at,"
                             f" device = :device, claims = claims + 1, oom_kills = :oom, {_BEAT} WHERE id = :id",
                             {**liveness.beat(), "pid": claim, "oom": liveness.oom_kills(), "id": run_id,
                              "device": device})
        self._keep_config(run_id, config)
        return run_id

    def _keep_config(self, run_id: int, config: RunConfig) -> None:
        """`runs/<id>/config.json`: the run's settings beside its artifacts, so that it can be
        trained again even when runs.db is lost or damaged (the recovery a StoreError names)."""
        folder = self.run_dir(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / "config.json", config.to_json())

    def get(self, run_id: int) -> Run:
        try:
            run_id = operator.index(run_id)
        except TypeError:
            raise RecvizError(f"a run id is a whole number, not {run_id!r}", fix="pick a run from the list") from None
        if not 0 <= run_id < 2 ** 63:  # SQLite's integers
            raise RecvizError(f"there is no run {run_id} in {self.path}", fix="pick a run from the list")
        with self._read() as conn:
            row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RecvizError(f"there is no run {run_id} in {self.path}", fix="pick a run from the list")
        return run_from_row(row)

    def list(self, status: str | tuple | list | None = None, dataset: str | None = None,
             model: str | None = None, sweep_id: int | str | None = None, limit: int = 200) -> list[Run]:
        """Runs newest first, optionally filtered (`status` may be one status or several). A row
        that cannot be read back has status "unreadable" whatever its column says, so asking for
        "done" runs never yields one (it has no config to show or score with)."""
        where, args = [], []
        statuses = None
        if status is not None:
            statuses = (status,) if isinstance(status, str) else tuple(status)
            if "unreadable" not in statuses:  # not a stored status: judged once each row is read
                where.append(f"status IN ({', '.join('?' * len(statuses))})")
                args += statuses
        for col, value in (("dataset", dataset), ("model", model), ("sweep_id", sweep_id)):
            if value is not None:
                where.append(f"{col} = ?")
                args.append(value)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, int(limit))).fetchall()
        runs = [run_from_row(r) for r in rows]
        return runs if statuses is None else [r for r in runs if r.status in statuses]

    def epochs(self, run_id: int) -> pd.DataFrame:
        """The run's stored epoch reports as `epochs_frame` lays them out, in the order they arrived."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {', '.join(EPOCH_COLUMNS)}, extra FROM epochs WHERE run_id = ? ORDER BY rowid",
                (run_id,)).fetchall()
        return epochs_frame([{**{k: r[k] for k in EPOCH_COLUMNS}, "valid": loads_json(r["valid"]),
                              **(loads_json(r["extra"]) or {})} for r in rows])

    # ---- the worker's transitions -------------------------------------------------------------
    def mark_running(self, run_id: int, pid: int, device: str | None = None,
                     started_at: float | None = None) -> bool:
        """Take a queued run (or update the device of one this pid already holds). False when
        the run is not ours to run: cancelled while queued, finished, or held by another pid.
        `started_at`: when training began, where that is later than the claim (a Ray task that
        waited for a slot on the cluster)."""
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE runs SET claims = claims + (status = 'queued'), oom_kills = COALESCE(oom_kills, :oom),"
                " status = 'running', pid = :pid, device = COALESCE(:device, device),"
                f" started_at = COALESCE(:started_at, started_at, :heartbeat_at), {_BEAT}"
                " WHERE id = :id AND (status = 'queued' OR (status = 'running' AND pid = :pid))",
                {**liveness.beat(), "pid": pid, "device": device, "oom": liveness.oom_kills(), "id": run_id,
                 "started_at": started_at})
            return cur.rowcount == 1

    def next_queued(self, pid: int | None = None) -> Run | None:
        """Claim the oldest queued run for `pid` (default: this process) in one transaction."""
        pid = os.getpid() if pid is None else pid
        with self.transaction() as conn:
            row = conn.execute("SELECT id FROM runs WHERE status = 'queued' ORDER BY id LIMIT 1").fetchone()
            if row is None:
                return None
            conn.execute("UPDATE runs SET status = 'running', pid = :pid, started_at = :heartbeat_at,"
                         f" claims = claims + 1, oom_kills = :oom, {_BEAT} WHERE id = :id AND status = 'queued'",
                         {**liveness.beat(), "pid": pid, "oom": liveness.oom_kills(), "id": row["id"]})
        run = self.get(row["id"])
        if run.status == "unreadable":  # nothing to train: fail it with the reason, take the next
            self.fail(run.id, run.error)
            return self.next_queued(pid)
        return run

    def has_queued(self) -> bool:
        return bool(self.list(status="queued", limit=1))

    def heartbeat(self, run_id: int) -> bool:
        """Record that the worker is alive. False when the run is no longer running (reaped,
        deleted): the worker should then stop."""
        values = liveness.beat()
        cols = ", ".join(f"{k} = ?" for k in values)
        with self.transaction() as conn:
            stop_here_for_test()
            cur = conn.execute(f"UPDATE runs SET {cols} WHERE id = ? AND status = 'running'", (*values.values(), run_id))
            return cur.rowcount == 1

    def add_epoch(self, run_id: int, report: dict) -> None:
        """Store one epoch report of the training loop (re-sending an epoch replaces it)."""
        self.add_epochs(run_id, [report])

    def add_epochs(self, run_id: int, reports: list[dict]) -> None:
        """Store several epoch reports in one transaction: a Ray driver collects a few hundred a
        second from its tasks, and one commit each would leave it behind them."""
        rows = []
        for report in reports:
            valid = report.get("valid")
            extra = {k: v for k, v in report.items() if k not in _EPOCH_KEYS}
            rows.append((run_id, int(report["epoch"]), str(report.get("phase") or "train"),
                         as_float(report.get("train_loss")), None if valid is None else json_text(valid),
                         as_float(report.get("seconds")), as_float(report.get("samples_per_second")),
                         json_text(extra) if extra else None))
        if not rows:
            return
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO epochs (run_id, epoch, phase, train_loss, valid, seconds,"
                " samples_per_second, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            conn.execute(f"UPDATE runs SET {_BEAT} WHERE id = :id AND status = 'running'",
                         {**liveness.beat(), "id": run_id})

    def finish(self, run_id: int, summary: dict) -> bool:
        return self._end(run_id, "done", summary=json_text(summary))

    def fail(self, run_id: int, error: str) -> bool:
        return self._end(run_id, "failed", error=str(error))

    def mark_cancelled(self, run_id: int, reason: str | None = None) -> bool:
        """Cancelled; `reason` says by what when it was not a person's request (a signal)."""
        return self._end(run_id, "cancelled", error=reason)

    def _end(self, run_id: int, status: str, **values) -> bool:
        """Move an active run to a terminal status; False when it had already ended. A run that
        ends while it waits for a slot on a cluster never trained anywhere: no device."""
        values = {"status": status, "finished_at": time.time(), **values}
        cols = "".join(f"{k} = ?, " for k in values)
        with self.transaction() as conn:
            cur = conn.execute(f"UPDATE runs SET {cols}device = NULLIF(device, ?)"
                               " WHERE id = ? AND status IN ('queued', 'running')",
                               (*values.values(), WAITING_FOR_SLOT, run_id))
            return cur.rowcount == 1

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

    def rename(self, run_id: int, name: str) -> str:
        """Give a run a name (shown beside its id everywhere); "" removes it. Returns the name kept
        (surrounding spaces dropped)."""
        name = " ".join(str(name).split())
        if len(name) > MAX_NAME:
            raise RecvizError(f"a run name has at most {MAX_NAME} characters (this one has {len(name)})",
                              fix="use a shorter name")
        if not self._set(run_id, "1", name=name):
            raise RecvizError(f"there is no run {run_id} in {self.path}", fix="pick a run from the list")
        return name

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

    def reap(self, heartbeat_timeout: float = HEARTBEAT_TIMEOUT_S, exits=None) -> list[int]:
        """Mark runs whose worker is gone as failed, with the reason; returns their ids.

        Gone = its pid no longer exists (or is a zombie), it was claimed on an earlier boot, or no
        heartbeat for `heartbeat_timeout` seconds of the monotonic clock (a hung worker) — judged
        by `recviz.experiments.liveness`, never by the wall clock. `exits(pid)` (the exit status of a dead
        worker, known to whoever started it) lets the reason name the signal. Idempotent: a reaped run is
        failed, and failed runs are never looked at again."""
        reaped = []
        for r in self.list(status="running", limit=1_000_000):
            why = liveness.verdict(r, heartbeat_timeout, exits)
            if why is None:
                continue
            reason = f"{why} during {self._current_epoch(r.id)}"
            with self.transaction() as conn:  # only if nobody finished it meanwhile
                cur = conn.execute("UPDATE runs SET status = 'failed', error = ?, finished_at = ?"
                                   " WHERE id = ? AND status = 'running' AND pid IS ?",
                                   (reason, time.time(), r.id, r.pid))
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
