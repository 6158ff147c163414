"""Judging each epoch on validation, for every phase of every iterative model: evaluate,
keep the best epoch's weights, count epochs without improvement, and write the epoch's report.

The contract every iterative model keeps: early stopping on validation NDCG@10 with `patience`
(0 = run every epoch), and the best validation epoch's weights are the ones kept — also when a run
is cancelled. Without validation users (rare NCF-format data) the last epoch counts as the best.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

from recviz.data.split import Split
from recviz.eval.protocols import evaluate
from recviz.training.report import EpochReport

EARLY_STOP_METRIC = "NDCG@10"


class EarlyStopping:
    """`snapshot()` copies the model's current weights; `judge(...)` is called after each epoch's
    training pass and returns the epoch's report; `stop` says whether patience ran out; `best`
    holds the best epoch's snapshot and `best_epoch` its number."""

    def __init__(self, model, split: Split, patience: int, snapshot: Callable[[], Any], phase: str):
        self.model, self.split, self.patience, self.snapshot, self.phase = model, split, patience, snapshot, phase
        self.has_valid = len(split.valid_rows) > 0
        self.best: Any = None
        self.best_epoch: int | None = None
        self.best_value, self.stale = -math.inf, 0

    def judge(self, epoch: int, train_loss: float, samples: int, seconds: float) -> EpochReport:
        start = time.perf_counter()
        valid = evaluate(self.model, self.split, "valid").metrics if self.has_valid else {}
        eval_seconds = time.perf_counter() - start
        value = valid.get(EARLY_STOP_METRIC, math.nan) if self.has_valid else math.inf
        if value > self.best_value or not self.has_valid:
            self.best, self.best_value, self.best_epoch, self.stale = self.snapshot(), value, epoch, 0
        else:
            self.stale += 1
        return EpochReport(epoch, self.phase, train_loss, valid, seconds=round(seconds, 4),
                           eval_seconds=round(eval_seconds, 4), samples=int(samples),
                           samples_per_second=round(samples / max(seconds, 1e-9), 1),
                           best_epoch_so_far=self.best_epoch)

    @property
    def stop(self) -> bool:
        return bool(self.patience) and self.stale >= self.patience
