"""One run, start to end: data → preparation → split → model → fit → evaluation.

The CLI, the app's worker and the benchmark all call `run`, so a number means the same thing
wherever it is shown. This orchestrator sits above the models (it builds them from the registry) and
below the run store; the training loop it calls lives in `recviz.training`, above the models.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from recviz.config import RunConfig
from recviz.data.interactions import Interactions
from recviz.data.split import Split, make_split
from recviz.eval.protocols import Evaluation, evaluate
from recviz.experiments.prepared import prepare_data
from recviz.models import registry
from recviz.models.base import StopCheck
from recviz.training.loop import EpochCallback, fit
from recviz.training.report import EpochReport


@dataclass
class RunResult:
    config: RunConfig
    data: Interactions
    split: Split
    model: object
    valid: Evaluation
    test: Evaluation
    train_seconds: float
    epochs_run: int
    best_epoch: int
    history: list[EpochReport] = field(default_factory=list)

    def summary(self) -> dict:
        """The `--json` contract of `recviz train` (test metrics at the best validation epoch)."""
        return {
            "model": self.config.model,
            "dataset": self.config.dataset,
            "protocol": self.config.protocol,
            "protocol_detail": self.split.describe(run_seed=self.config.seed),
            "seed": self.config.seed,
            "train_seconds": round(self.train_seconds, 3),
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "metrics": self.test.metrics,
            "valid_metrics": self.valid.metrics,
            "users_evaluated": len(self.test.users),
            # what `sparse_rows` chose: the embedding tables trained with row-sparse (lazy) updates
            "sparse_tables": list(getattr(self.model, "sparse_tables", ())),
            # the arithmetic training used (the `precision` option applies on CUDA only); None: no torch
            "precision": getattr(self.model, "precision", None),
            "config": self.config.to_dict(),
        }


def prepare_split(config: RunConfig, data: Interactions | None = None) -> Split:
    """The run's split, drawn once and then reloaded from the store of splits: the pages use this
    to show a run's held-out items and a user's train history exactly as the run saw them."""
    data = data if data is not None else prepare_data(config)
    return make_split(data, config.protocol, seed=config.drawn_with, n_candidates=config.candidates,
                      target=config.target, valid=config.valid, eval_users=config.eval_users)


def build_model(config: RunConfig):
    """The untrained model a config describes: its options, seed, device and threads."""
    return registry.build(config.model, config.options, seed=config.seed, device=config.device,
                          threads=config.threads)


def run(config: RunConfig, data: Interactions | None = None, progress=None,
        on_epoch: EpochCallback | None = None, should_stop: StopCheck | None = None, *,
        observe_test: bool = False, split: Split | None = None) -> RunResult:
    """Train `config.model` and evaluate it; `on_epoch(report)` is called after every epoch
    (the worker stores it, the CLI prints it) and `should_stop()` is polled to cancel.
    `split`: the run's split already drawn (a Ray task gets it with the data, from a machine
    whose split store it cannot read). `observe_test` is for `recviz bench --peak-test` only
    (see `_observing_test`)."""
    registry.get(config.model)  # fail on a bad name before loading anything
    data = data if data is not None else prepare_data(config, progress=progress)
    registry.check_can_feed(config.model, data)
    split = split if split is not None else prepare_split(config, data)
    model = build_model(config)
    observed: dict[int, dict] = {}
    if observe_test:
        on_epoch = _observing_test(model, split, on_epoch, observed)
    start = time.perf_counter()
    history = fit(model, split, on_epoch=on_epoch, should_stop=should_stop)
    history = [r.with_test(observed[r.epoch]) if r.epoch in observed else r for r in history]
    train_seconds = time.perf_counter() - start
    # Iterative models restore their best-validation weights before returning; one-pass
    # baselines count as a single epoch that is also the best one.
    best_epoch = model.best_epoch or (len(history) or 1)
    return RunResult(config, data, split, model, evaluate(model, split, "valid"),
                     evaluate(model, split, "test"), train_seconds, epochs_run=len(history) or 1,
                     best_epoch=best_epoch, history=history)


def _observing_test(model, split: Split, on_epoch: EpochCallback | None, observed: dict) -> EpochCallback:
    """After each epoch of the model's own phase, put the test metrics into the epoch's report as
    "test_observed". A diagnostic: the NCF and DMF authors' code evaluates test after every epoch
    and reports the best one, and this measures how much that adds. Nothing reads these numbers
    to choose anything — early stopping and the kept weights follow "valid" — so training and the
    run's result are exactly those of a run without it (a test checks this). `observed` collects
    them by epoch for the run's history."""
    def observe(report: EpochReport) -> None:
        if report.phase == model.name:  # not NeuMF's GMF/MLP pre-training epochs
            observed[report.epoch] = evaluate(model, split, "test").metrics
            report = report.with_test(observed[report.epoch])
        if on_epoch is not None:
            on_epoch(report)
    return observe
