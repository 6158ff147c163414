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

The batch loop draws the epoch's samples (vectorised, seeded) a chunk at a time
(`recviz.training.chunks`: an epoch of at most EPOCH_CHUNK samples is one chunk, drawn whole), moves
each chunk to the device once, shuffles it there with one seeded permutation and cuts it into
batches with one `split` per array — every batch a view, made before the chunk's first step — so a step is the model's loss, backward
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
from typing import Callable, Iterator

import numpy as np
import torch

from recviz.data.split import Split
from recviz.data.training_samples import EpochDraw
from recviz.errors import Cancelled, ModelError
from recviz.models.base import EpochSteps, GradientPhase, Recommender, StopCheck
from recviz.models.spec import Phase
from recviz.training.chunks import EPOCH_CHUNK, as_units, block_order, chunk_slices, chunk_units, unit_order
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
        self.chunk_samples = EPOCH_CHUNK  # an epoch of more samples is built and trained chunk by chunk
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
        """One pass over the epoch's samples, chunk by chunk (`recviz.training.chunks`); returns
        (mean loss per sample, number of samples)."""
        self.module.train()
        losses, n = [], 0
        for data, size in self.chunks():
            losses.append(self.run(self.batches(data), stop, first=sum(len(x) for x in losses)))
            n += size
            del data  # before the next chunk is drawn
        losses = torch.cat(losses)
        # batch means → sample mean; summed on the device, read back once (no per-batch sync on a GPU).
        # Every chunk but the last holds whole batches, so only the epoch's last batch can be short.
        size = self.plan.batch_size
        sizes = torch.full((len(losses),), float(size), device=self.plan.device)
        sizes[-1] = n - size * (len(losses) - 1)
        return float((losses * sizes).sum()) / n, n

    def chunks(self) -> Iterator[tuple[dict[str, torch.Tensor], int]]:
        """The epoch's samples as shuffled chunks on the device, with their sizes: the whole epoch
        as one chunk when it has at most EPOCH_CHUNK samples (or the draw cannot be drawn in parts),
        else `chunks.chunk_units` units at a time, in a seeded order of the units."""
        draw, block = self.plan.draw, self.plan.shuffle_block
        if not isinstance(draw, EpochDraw) or draw.samples <= self.chunk_samples:
            yield self.samples()
            return
        if draw.rows_per_unit % block:
            raise ModelError(f"units of {draw.rows_per_unit} samples do not split into blocks of {block}")
        order = unit_order(draw.units, self.shuffle)
        for part in chunk_slices(draw.units, chunk_units(draw.rows_per_unit, self.plan.batch_size,
                                                         self.chunk_samples)):
            yield self._shuffled(draw(self.rng, as_units(order[part])))

    def samples(self) -> tuple[dict[str, torch.Tensor], int]:
        """The whole epoch's samples drawn, on the device (one host→device copy per array) and
        shuffled: the one chunk of an epoch of at most EPOCH_CHUNK samples."""
        return self._shuffled(self.plan.draw(self.rng))

    def _shuffled(self, arrays: dict[str, np.ndarray]) -> tuple[dict[str, torch.Tensor], int]:
        """Drawn arrays on the device, in one seeded order (blocks of `shuffle_block` kept together).
        Each array is dropped on the host once its shuffled copy exists, so at most one array is
        held twice."""
        device = self.plan.device
        n = len(next(iter(arrays.values())))
        if n == 0:
            raise ModelError("there are no training samples (is the train part empty?)")
        block = self.plan.shuffle_block
        if n % block:
            raise ModelError(f"{n} samples do not split into blocks of {block}")
        order = block_order(n, block, self.shuffle).to(device)
        arrays, out = dict(arrays), {}
        for key in list(arrays):
            out[key] = torch.from_numpy(np.ascontiguousarray(arrays.pop(key))).to(device)[order]
        return out, n

    def batches(self, data: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """The epoch's batches, in order, as views of the shuffled tensors: one `split` per array."""
        keys = tuple(data)
        return [dict(zip(keys, views)) for views in zip(*(t.split(self.plan.batch_size) for t in data.values()))]

    def run(self, batches: list[dict[str, torch.Tensor]], stop: StopCheck, first: int = 0) -> torch.Tensor:
        """One optimiser step per batch; returns the batches' mean losses (on the device). `first`:
        the epoch's batches before these (earlier chunks), so that `stop` is polled every POLL_EVERY
        batches of the epoch whatever the chunks."""
        step, losses = self._step, []
        for b, batch in enumerate(batches, start=first):
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
