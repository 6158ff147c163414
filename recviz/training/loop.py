"""The training loop every neural model shares (GMF, MLP, NeuMF, MF, BPR, DMF, EINMF, mbnmf).

A model plugs in through four things (see `recviz.models.torch_base.TorchRecommender`):
- `module`: an `nn.Module` whose `forward(users, items)` returns logits, already on `model.device`;
- `epoch_sampler(split)`: prepared once, returns `draw(rng) -> {name: array}`, the epoch's training
  samples as equally long numpy arrays (default: positives + sampled negatives,
  `recviz.data.training_samples.epoch_samples`);
- `shuffle_block`: how many consecutive samples move together when the epoch is shuffled (1);
- `batch_loss(batch)`: the mean loss of one batch, a dict of the same names holding tensor slices.

Per epoch: draw the samples (vectorised, seeded), move them to the device once, shuffle them there
with one seeded permutation, and walk through contiguous slices — no DataLoader and no Python work
per sample, because with ~1000 batches an epoch the per-batch overhead is what costs time on a CPU.
After each epoch the model is judged on validation (`recviz.training.early_stop`, shared with eALS);
training stops early when validation NDCG@10 has not improved for `patience` epochs, and the best
epoch's weights are put back at the end (also when cancelled).

This module sits below the models: it knows a model only through the four things above.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from recviz.data.split import Split
from recviz.errors import Cancelled, ModelError
from recviz.training.early_stop import EarlyStopping
from recviz.training.optim import OPTIMIZERS, make_optimizer

POLL_EVERY = 50  # batches between two should_stop() polls: a few ms of work on a CPU


class _Stop(Exception):
    """Internal: unwinds from the batch loop to `train`, which restores weights and raises Cancelled."""


@dataclass(frozen=True)
class TrainOptions:
    """What the loop needs, taken from a model's checked options (its declaration holds the
    defaults and ranges; nothing here repeats them)."""

    lr: float
    batch_size: int
    epochs: int
    patience: int  # epochs without a better validation NDCG@10 before stopping; 0 = run all
    weight_decay: float  # the model's `l2`
    neg_ratio: int  # sampled negatives per positive (pointwise losses)
    seed: int
    optimizer: str = "adam"  # "adam" (from scratch) | "sgd" (NeuMF after pre-training, paper §3.4.1)

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ModelError(f"optimizer must be one of {OPTIMIZERS}, not {self.optimizer!r}")


# ---- the loop --------------------------------------------------------------------------------------
def train(model, split: Split, opts: TrainOptions, on_epoch=None, should_stop=None, *,
          phase: str | None = None, first_epoch: int = 1) -> list[dict]:
    """Train `model.module` in place; return the per-epoch reports and set `model.best_epoch`.

    Epochs are numbered from `first_epoch` so that phases run one after another (NeuMF's GMF and
    MLP pre-training, then NeuMF) share one numbering in one history. Raises `Cancelled` when
    `should_stop()` turns True (polled before each epoch and every POLL_EVERY batches).
    """
    module = model.module
    optimizer = make_optimizer(module.parameters(), opts.optimizer, opts.lr, opts.weight_decay, model.device)
    draw = model.epoch_sampler(split)
    rng = np.random.default_rng(opts.seed)  # negatives
    shuffle = torch.Generator().manual_seed(opts.seed)  # on the CPU: same order on every device
    stop = should_stop or (lambda: False)
    judge = EarlyStopping(model, split, opts.patience, lambda: _snapshot(module), phase or model.name)
    history: list[dict] = []
    try:
        for k in range(opts.epochs):
            if stop():
                raise _Stop
            start = time.perf_counter()
            loss, samples = _run_epoch(model, optimizer, draw(rng), shuffle, opts.batch_size, stop)
            report = judge.judge(first_epoch + k, loss, samples, time.perf_counter() - start)
            history.append(report)
            if on_epoch is not None:
                on_epoch(report)
            if judge.stop:
                break
    except _Stop:
        _finish(model, judge)
        raise Cancelled(history) from None
    _finish(model, judge)
    return history


def _run_epoch(model, optimizer, arrays: dict[str, np.ndarray], shuffle: torch.Generator,
               batch_size: int, stop) -> tuple[float, int]:
    """One pass over the epoch's samples; returns (mean loss per sample, number of samples)."""
    device = model.device
    n = len(next(iter(arrays.values())))
    if n == 0:
        raise ModelError("there are no training samples (is the train part empty?)")
    # A model may ask for its samples to move in blocks (`shuffle_block`: DMF keeps a positive and
    # its negatives together, so a batch holds few distinct users); the default is one sample.
    block = model.shuffle_block
    if n % block:
        raise ModelError(f"{n} samples do not split into blocks of {block}")
    order = (torch.randperm(n // block, generator=shuffle)[:, None] * block + torch.arange(block)).reshape(-1)
    order = order.to(device)
    # one host→device copy per array per epoch; the shuffled copies make every batch a plain view
    data = {k: torch.from_numpy(np.ascontiguousarray(v)).to(device)[order] for k, v in arrays.items()}
    model.module.train()
    losses = []
    for b, lo in enumerate(range(0, n, batch_size)):
        if b and b % POLL_EVERY == 0 and stop():
            raise _Stop
        loss = model.batch_loss({k: t[lo:lo + batch_size] for k, t in data.items()})
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    # batch means → sample mean; summed on the device, read back once (no per-batch sync on a GPU)
    sizes = torch.full((len(losses),), float(batch_size), device=device)
    sizes[-1] = n - batch_size * (len(losses) - 1)
    return float((torch.stack(losses) * sizes).sum()) / n, n


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the weights, kept on the model's device (copying back to host every time the
    model improves would cost more than the memory)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _finish(model, judge: EarlyStopping) -> None:
    if judge.best is not None:
        model.module.load_state_dict(judge.best)
    model.module.eval()
    model.best_epoch = judge.best_epoch
