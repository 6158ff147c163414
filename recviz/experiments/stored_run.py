"""A run as the store holds it (`Run`), and a stored row read back as one: tolerant of rows other
RecViz versions wrote, and of rows that cannot be read at all (status "unreadable", with why).
`recviz.experiments.store.RunStore` reads and writes them."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, fields

from recviz.config import RunConfig

ACTIVE = ("queued", "running")
# the device of a run its driver holds but that does not train yet: a Ray task waiting for CPUs or
# a GPU on the cluster (a sweep of 33 runs on 2 CPUs has 31 of them)
WAITING_FOR_SLOT = "waiting for a free slot on the cluster"


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
    heartbeat_mono: float | None = None
    boot_id: str | None = None
    claims: int = 0
    oom_kills: int | None = None
    name: str = ""

    @property
    def finished(self) -> bool:
        return self.status not in ACTIVE

    @property
    def waiting(self) -> bool:
        """Held by its driver but not training yet (`WAITING_FOR_SLOT`): "running" only in the store."""
        return self.status == "running" and self.device == WAITING_FOR_SLOT

    def to_row(self) -> dict:
        """Plain dict for tables and export: ids, status, config and the final test metrics."""
        summary = self.summary or {}
        return {"id": self.id, "name": self.name, "model": self.model, "dataset": self.dataset, "protocol": self.protocol,
                "protocol_detail": summary.get("protocol_detail"), "status": self.status,
                "seed": self.seed, "created_at": self.created_at, "sweep_id": self.sweep_id,
                "device": self.device, "error": self.error, "metrics": summary.get("metrics", {}),
                "best_epoch": summary.get("best_epoch"), "epochs_run": summary.get("epochs_run"),
                "train_seconds": summary.get("train_seconds"), "config": self.config.to_dict()}


# ---- rows and JSON --------------------------------------------------------------------------------
_RUN_FIELDS = {f.name for f in fields(Run)}


class UnreadableConfig:
    """The config of a stored run that cannot be read back (a damaged JSON column, a model this
    RecViz does not know): what the row's own columns say, and nothing to train or score with."""

    options: dict = {}
    preset = None

    def __init__(self, row: dict):
        self.dataset, self.model = row.get("dataset"), row.get("model")
        self.protocol, self.seed = row.get("protocol"), row.get("seed")
        self.protocol_detail = str(self.protocol)

    def option(self, name: str, default=None):
        return default

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "model": self.model, "protocol": self.protocol, "seed": self.seed}


def run_from_row(row: sqlite3.Row) -> Run:
    """A stored row as a Run. Tolerant: runs stored by another RecViz version (other config keys,
    columns) stay readable, and a row that cannot be read at all (damaged JSON, a model that is not
    registered here: the README's toy model saved from a notebook) becomes a run with status
    "unreadable" and the reason as its error, so that one bad row never hides the others."""
    d = {k: v for k, v in dict(row).items() if k in _RUN_FIELDS}
    try:
        raw = loads_json(d["config"]) or {}
        config = RunConfig.from_stored(raw)
        summary = loads_json(d["summary"])
        if summary is not None and not isinstance(summary, dict):
            raise ValueError(f"its summary is a {type(summary).__name__}, not an object")
    except Exception as exc:  # noqa: BLE001 — any damage: this run is shown as unreadable
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        d.update(config=UnreadableConfig(d), summary=None, status="unreadable",
                 error=f"unreadable: {why}")
    else:
        d.update(config=config, summary=summary)
    d["cancel_requested"] = bool(d["cancel_requested"])
    return Run(**d)


def loads_json(text: str | None):
    return None if text is None else json.loads(text)


def as_float(v) -> float | None:
    return None if v is None else float(v)
