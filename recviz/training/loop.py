"""The one training loop every iterative model runs through (GMF, MLP, NeuMF, MF, BPR, DMF, EINMF,
mbnmf, eALS). A model never loops itself: it declares its phases (`recviz.models.spec.Phase`;
NeuMF with pre-training: gmf, mlp, neumf) and, for each, says in `plan` what to train —

- a `GradientPhase` (torch models): a module, its epoch samples, its loss and its optimiser
  settings; the batch loop below (`GradientEpochs`) trains it;
- or any object with the `EpochSteps` methods (eALS's closed-form sweeps).

Per epoch: one training pass, then the model is judged on validation (`EarlyStopping`); training
stops early when validation NDCG@10 has not improved for `patience` epochs, and the best epoch's
weights are put back at the end of each phase (also when cancelled). Epochs are numbered across
phases, so one history holds them all.

The batch loop draws the epoch's samples (vectorised, seeded), moves them to the device once,
shuffles them there with one seeded permutation and cuts them into batches with one `split` per
array — every batch a view, made before the first step — so a step is the model's loss, backward
and the optimiser, nothing else: no DataLoader, no Python work per sample or per batch beyond the
calls themselves, because with ~1000 batches an epoch the per-operation overhead is what costs time
on a CPU. Nothing in a step reads a value back to the host (the losses stay on the device until the
epoch ends), so a GPU is never made to wait inside an epoch.

A step is either the model's loss through autograd (`batch_loss`, backward, optimiser) or, where
the model hands one over (`GradientPhase.batch_grads`: GMF, MLP and NeuMF, `recviz.models.ncf_step`),
its hand-written loss-and-gradient step and the optimiser: the same gradients in ~1.6× fewer
aten operations (docs/experiments.md, 2026-12-06). The hand-written step is fp32 only (mixed precision runs through autograd), and
`GradientEpochs(plan, autograd=True)` asks for autograd anyway (to check one against the other).

Mixed precision (`GradientPhase.precision`, from the models' `precision` option): "bf16" and
"fp16" run the loss under `torch.autocast` (weights, optimiser state and the loss itself stay
float32); "fp16" also scales the loss (`torch.amp.GradScaler`, whose overflow check and update
stay on the device). The models ask for it on CUDA only (`TorchRecommender.prepare`).
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from recviz.data.split import Split
from recviz.errors import Cancelled, ModelError
from recviz.models.base import EpochSteps, GradientPhase, Recommender, StopCheck
from recviz.models.spec import Phase
from recviz.training.early_stop import EarlyStopping
from recviz.training.optim import OPTIMIZERS, make_optimizer, sparse_tables
from recviz.training.report import EpochReport

POLL_EVERY = 50  # batches between two should_stop() polls: a few ms of work on a CPU
AMP_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}  # GradientPhase.precision

EpochCallback = Callable[[EpochReport], None]


class _Stop(Exception):
    """Internal: unwinds from the batch loop to `fit`, which restores weights and raises Cancelled."""


def fit(model: Recommender, split: Split, on_epoch: EpochCallback | None = None,
        should_stop: StopCheck | None = None) -> list[EpochReport]:
    """Train `model` on `split.train` and return its per-epoch reports (empty for a model fitted in
    one pass). `on_epoch(report)` is called after every epoch; `should_stop()` is polled before each
    epoch and every POLL_EVERY batches, and True raises `Cancelled` carrying the finished epochs,
    with the running phase's best weights in place."""
    phases = model.phases()
    if not phases:
        model.fit(split)
        return []
    stop = should_stop or (lambda: False)
    model.begin(split)
    history: list[EpochReport] = []
    for phase in phases:
        _train_phase(model.plan(phase, split), split, phase, history, on_epoch, stop)
    return history


def _train_phase(plan: GradientPhase | EpochSteps, split: Split, phase: Phase, history: list[EpochReport],
                 on_epoch: EpochCallback | None, stop: StopCheck) -> None:
    steps = GradientEpochs(plan) if isinstance(plan, GradientPhase) else plan
    scorer = steps.scorer
    judge = EarlyStopping(scorer, split, scorer.opts.patience, steps.snapshot, phase.name)
    first = len(history) + 1
    try:
        for k in range(phase.epochs):
            if stop():
                raise _Stop
            start = time.perf_counter()
            loss, samples = steps.epoch(stop)
            report = judge.judge(first + k, loss, samples, time.perf_counter() - start)
            history.append(report)
            if on_epoch is not None:
                on_epoch(report)
            if judge.stop:
                break
    except _Stop:
        _finish(steps, judge)
        raise Cancelled(list(history)) from None
    _finish(steps, judge)


def _finish(steps, judge: EarlyStopping) -> None:
    if judge.best is not None:
        steps.restore(judge.best)
    steps.scorer.best_epoch = judge.best_epoch


class GradientEpochs:
    """A `GradientPhase` as `EpochSteps`: the optimiser, the seeded negatives and shuffles, and one
    pass over the epoch's samples per `epoch()`."""

    def __init__(self, plan: GradientPhase, autograd: bool = False):
        if plan.optimizer not in OPTIMIZERS:
            raise ModelError(f"optimizer must be one of {OPTIMIZERS}, not {plan.optimizer!r}")
        self.plan, self.scorer, self.module = plan, plan.scorer, plan.module
        # embedding tables the model marked sparse (`sparse_rows`) get lazy row-wise updates
        self.optimizer = make_optimizer(self.module.parameters(), plan.optimizer, plan.lr, plan.weight_decay,
                                        plan.device, sparse=sparse_tables(self.module))
        self.rng = np.random.default_rng(plan.seed)  # negatives
        self.shuffle = torch.Generator().manual_seed(plan.seed)  # on the CPU: same order on every device
        self.batch_loss = plan.batch_loss
        precision = plan.precision
        if precision not in AMP_DTYPES:
            raise ModelError(f"precision must be one of {tuple(AMP_DTYPES)}, not {precision!r}")
        self.precision, self.scaler = precision, None
        # the model's hand-written step when it has one (fp32 only), else — or asked — autograd
        self.batch_grads = plan.batch_grads if precision == "fp32" and not autograd else None
        if self.batch_grads is not None:
            self._step = self._hand_step
        elif precision == "fp32":
            self._step = self._plain_step
        else:
            dtype, kind = AMP_DTYPES[precision], plan.device.type
            self.autocast = lambda: torch.autocast(kind, dtype=dtype)
            if precision == "fp16":
                self.scaler = torch.amp.GradScaler(kind)
            self._step = self._amp_step

    def epoch(self, stop: StopCheck) -> tuple[float, int]:
        """One pass over the epoch's samples; returns (mean loss per sample, number of samples)."""
        data, n = self.samples()
        batches = self.batches(data)
        self.module.train()
        losses = self.run(batches, stop)
        # batch means → sample mean; summed on the device, read back once (no per-batch sync on a GPU)
        size = self.plan.batch_size
        sizes = torch.full((len(batches),), float(size), device=self.plan.device)
        sizes[-1] = n - size * (len(batches) - 1)
        return float((losses * sizes).sum()) / n, n

    def samples(self) -> tuple[dict[str, torch.Tensor], int]:
        """This epoch's samples drawn, on the device (one host→device copy per array) and shuffled."""
        plan, device = self.plan, self.plan.device
        arrays = plan.draw(self.rng)
        n = len(next(iter(arrays.values())))
        if n == 0:
            raise ModelError("there are no training samples (is the train part empty?)")
        block = plan.shuffle_block
        if n % block:
            raise ModelError(f"{n} samples do not split into blocks of {block}")
        order = (torch.randperm(n // block, generator=self.shuffle)[:, None] * block + torch.arange(block)).reshape(-1)
        order = order.to(device)
        return {k: torch.from_numpy(np.ascontiguousarray(v)).to(device)[order] for k, v in arrays.items()}, n

    def batches(self, data: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """The epoch's batches, in order, as views of the shuffled tensors: one `split` per array."""
        keys = tuple(data)
        return [dict(zip(keys, views)) for views in zip(*(t.split(self.plan.batch_size) for t in data.values()))]

    def run(self, batches: list[dict[str, torch.Tensor]], stop: StopCheck) -> torch.Tensor:
        """One optimiser step per batch; returns the batches' mean losses (on the device)."""
        step, losses = self._step, []
        for b, batch in enumerate(batches):
            if b and b % POLL_EVERY == 0 and stop():
                raise _Stop
            losses.append(step(batch))
        return torch.stack(losses)

    def _plain_step(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        loss = self.batch_loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def _hand_step(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        loss = self.batch_grads(batch)  # writes every weight's .grad (no zero_grad needed)
        self.optimizer.step()
        return loss

    def _amp_step(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with self.autocast():
            loss = self.batch_loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)  # skipped on the device when a gradient overflowed
            self.scaler.update()
        return loss.detach().float()

    def snapshot(self) -> dict[str, torch.Tensor]:
        """A copy of the weights, kept on the model's device (copying back to host every time the
        model improves would cost more than the memory)."""
        return {k: v.detach().clone() for k, v in self.module.state_dict().items()}

    def restore(self, snapshot: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(snapshot)
        self.module.eval()
