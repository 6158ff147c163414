"""The training loop every neural model shares (GMF, MLP, NeuMF, MF, BPR; later DMF, EINMF and the
multi-behaviour models).

A model plugs in through three things (see `recviz.models.torch_base.TorchRecommender`):
- `module`: an `nn.Module` whose `forward(users, items)` returns logits, already on `model.device`;
- `epoch_sampler(split)`: prepared once, returns `draw(rng) -> {name: array}`, the epoch's training
  samples as equally long numpy arrays (default: positives + sampled negatives, `epoch_samples`);
- `batch_loss(batch)`: the mean loss of one batch, a dict of the same names holding tensor slices.

Per epoch: draw the samples (vectorised, seeded), move them to the device once, shuffle them there
with one seeded permutation, and walk through contiguous slices — no DataLoader and no Python work
per sample, because with ~1000 batches an epoch the per-batch overhead is what costs time on a CPU.
After each epoch the model is judged on validation with the split's own protocol; training stops
early when validation NDCG@10 has not improved for `patience` epochs, and the best epoch's weights
are put back at the end (also when cancelled).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from recviz.data.sampling import SeenItems, sample_negatives
from recviz.data.split import Split, target_train  # noqa: F401  (target_train: re-exported)
from recviz.errors import ModelError
from recviz.eval.protocols import evaluate
from recviz.train.optim import OPTIMIZERS, make_optimizer

EARLY_STOP_METRIC = "NDCG@10"
POLL_EVERY = 50  # batches between two should_stop() polls: a few ms of work on a CPU


class Cancelled(Exception):
    """`should_stop()` said stop. The best weights seen so far are back in the model; `history`
    holds the epochs that finished, so the worker can store them and mark the run cancelled."""

    def __init__(self, history: list[dict]):
        super().__init__(f"training cancelled after {len(history)} finished epoch(s)")
        self.history = history


class _Stop(Exception):
    """Internal: unwinds from the batch loop to `train`, which restores weights and raises Cancelled."""


@dataclass
class TrainOptions:
    lr: float = 0.001
    batch_size: int = 256
    epochs: int = 20
    # epochs without a better validation NDCG@10 before stopping; 0 = run all `epochs`. Either way
    # the best-validation epoch's weights are the ones kept (the run's "final = best" contract).
    patience: int = 3
    weight_decay: float = 0.0
    neg_ratio: int = 4  # sampled negatives per positive (pointwise losses)
    seed: int = 0
    optimizer: str = "adam"  # "adam" (from scratch) | "sgd" (NeuMF after pre-training, paper §3.4.1)

    def check(self) -> TrainOptions:
        problems = [f"{name} must be {rule}, not {value!r}" for name, value, ok, rule in (
            ("lr", self.lr, self.lr > 0, "> 0"),
            ("batch_size", self.batch_size, self.batch_size >= 1, "≥ 1"),
            ("epochs", self.epochs, self.epochs >= 1, "≥ 1"),
            ("patience", self.patience, self.patience >= 0, "≥ 0 (0 = no early stopping)"),
            ("weight_decay", self.weight_decay, self.weight_decay >= 0, "≥ 0"),
            ("neg_ratio", self.neg_ratio, self.neg_ratio >= 1, "≥ 1"),
            ("optimizer", self.optimizer, self.optimizer in OPTIMIZERS, f"one of {OPTIMIZERS}"),
        ) if not ok]
        if problems:
            raise ModelError("; ".join(problems))
        return self


# ---- samples ---------------------------------------------------------------------------------------
def train_positives(split: Split) -> tuple[np.ndarray, np.ndarray, SeenItems]:
    """The distinct (user, item) pairs of train — a pair seen under several behaviours or ratings is
    one positive — and the index used to reject negatives. Negatives are "not in train": validation
    and test items may be drawn as negatives, exactly as for a real user whose future is unknown.
    With a target behaviour, only its pairs (`target_train`)."""
    train = target_train(split)
    seen = SeenItems(train.user, train.item, train.n_users, train.n_items)
    full = np.flatnonzero(seen.count(np.arange(train.n_users)) >= train.n_items)
    if len(full):
        raise ModelError(f"user {train.user_ids[full[0]]} interacted with every item in train, so no "
                         "negative item can be sampled for them",
                         fix="filter such users out of the data, or add items")
    return seen.keys // train.n_items, seen.items, seen


def epoch_samples(users: np.ndarray, items: np.ndarray, seen: SeenItems, rng: np.random.Generator,
                  neg_ratio: int = 4, pairwise: bool = False) -> dict[str, np.ndarray]:
    """One epoch's training samples, re-drawn every epoch (He et al. 2017 §3.1.1).

    pointwise: every positive (label 1) plus `neg_ratio` uniformly sampled unobserved items per
      positive (label 0) → {"user", "item", "label"} of length P·(1 + neg_ratio);
    pairwise (BPR): each positive paired with one unobserved item → {"user", "item", "neg"}, length P.
    Negatives come from `sample_negatives` (rejection rounds over whole arrays, no per-sample loop).
    """
    if pairwise:
        return {"user": users, "item": items, "neg": sample_negatives(users, seen, rng)}
    neg_users = np.repeat(users, neg_ratio)
    neg_items = sample_negatives(neg_users, seen, rng)
    labels = np.zeros(len(users) + len(neg_users), np.float32)
    labels[:len(users)] = 1.0
    return {"user": np.concatenate([users, neg_users]), "item": np.concatenate([items, neg_items]),
            "label": labels}


# ---- the loop --------------------------------------------------------------------------------------
def train(model, split: Split, opts: TrainOptions, on_epoch=None, should_stop=None, *,
          phase: str | None = None, first_epoch: int = 1) -> list[dict]:
    """Train `model.module` in place; return the per-epoch reports and set `model.best_epoch`.

    Epochs are numbered from `first_epoch` so that phases run one after another (NeuMF's GMF and
    MLP pre-training, then NeuMF) share one numbering in one history. Raises `Cancelled` when
    `should_stop()` turns True (polled before each epoch and every POLL_EVERY batches).
    """
    opts.check()
    module = model.module
    optimizer = make_optimizer(module.parameters(), opts.optimizer, opts.lr, opts.weight_decay, model.device)
    draw = model.epoch_sampler(split)
    rng = np.random.default_rng(opts.seed)  # negatives
    shuffle = torch.Generator().manual_seed(opts.seed)  # on the CPU: same order on every device
    has_valid = len(split.valid_rows) > 0
    stop = should_stop or (lambda: False)
    history: list[dict] = []
    best_state, best_value, best_epoch, stale = None, -math.inf, None, 0
    try:
        for k in range(opts.epochs):
            if stop():
                raise _Stop
            epoch = first_epoch + k
            start = time.perf_counter()
            loss, samples = _run_epoch(model, optimizer, draw(rng), shuffle, opts.batch_size, stop)
            seconds = time.perf_counter() - start
            valid = evaluate(model, split, "valid").metrics if has_valid else {}
            eval_seconds = time.perf_counter() - start - seconds
            # without validation users (rare NCF-format data) the last epoch counts as the best
            value = valid.get(EARLY_STOP_METRIC, math.nan) if has_valid else math.inf
            if value > best_value or not has_valid:
                best_state, best_value, best_epoch, stale = _snapshot(module), value, epoch, 0
            else:
                stale += 1
            report = {"epoch": epoch, "phase": phase or getattr(model, "name", "model"),
                      "train_loss": loss, "valid": valid, "seconds": round(seconds, 4),
                      "eval_seconds": round(eval_seconds, 4), "samples": samples,
                      "samples_per_second": round(samples / max(seconds, 1e-9), 1),
                      "best_epoch_so_far": best_epoch}
            history.append(report)
            if on_epoch is not None:
                on_epoch(report)
            if opts.patience and stale >= opts.patience:
                break
    except _Stop:
        _finish(model, best_state, best_epoch)
        raise Cancelled(history) from None
    _finish(model, best_state, best_epoch)
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
    block = getattr(model, "shuffle_block", 1)
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


def _finish(model, best_state, best_epoch) -> None:
    if best_state is not None:
        model.module.load_state_dict(best_state)
    model.module.eval()
    model.best_epoch = best_epoch
