"""What one epoch of training reports: the same record for every iterative model, produced by the
training loop (`recviz.training.loop`), stored by the run store, printed by the CLI and drawn by
the pages. Stored and sent between processes as a plain dict (`to_dict` / `from_dict`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping


@dataclass(frozen=True)
class EpochReport:
    epoch: int  # one running number across a run's phases (NeuMF: gmf 1–20, mlp 21–40, neumf 41–60)
    phase: str  # the phase it belongs to (the model's declaration names them)
    train_loss: float | None  # mean loss per training sample of this epoch
    valid: dict[str, float]  # validation metrics after the epoch ({} without validation users)
    seconds: float  # the training pass
    eval_seconds: float  # judging it on validation
    samples: int  # training samples seen
    samples_per_second: float  # of the training pass alone
    best_epoch_so_far: int | None  # the epoch whose weights are kept so far, in this phase
    test_observed: dict[str, float] | None = None  # `recviz bench --peak-test` only: never used to choose

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if out["test_observed"] is None:
            del out["test_observed"]
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "EpochReport":
        """A stored report; fields an earlier version did not store take their neutral value."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        defaults = {"phase": "train", "train_loss": None, "valid": {}, "seconds": 0.0, "eval_seconds": 0.0,
                    "samples": 0, "samples_per_second": 0.0, "best_epoch_so_far": None}
        return cls(**(defaults | values))

    def with_test(self, metrics: dict[str, float]) -> "EpochReport":
        return replace(self, test_observed=metrics)
