"""What every model and baseline is to the rest of RecViz: something built from its declared
options, that learns from a split's train part, scores (user, item) pairs, and can be saved and
restored as plain arrays."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Protocol

import numpy as np

from recviz.data.split import Split
from recviz.errors import ModelError
from recviz.eval.protocols import SCORE_CELLS
from recviz.models.spec import ModelSpec, Phase
from recviz.options import DEVICE, SEED, THREADS

# Polled between batches/epochs; True means "stop now" (a cancelled run).
StopCheck = Callable[[], bool]


class Recommender:
    """Subclasses set `spec` (their declaration) and implement scoring (`score_all` and/or
    `score`), `get_state` and `set_state`, and how they learn:

    - a model fitted in one pass (its declaration is not `iterative`) implements `fit(split)`;
    - a model trained in epochs implements `plan(phase, split)` for each phase its declaration
      names, and may implement `begin(split)`; `recviz.training.fit` runs the epochs, judges them
      on validation, stops early, keeps the best weights and reports — the model never loops.
    """

    spec: ModelSpec  # the model's declaration: its name, options and phases
    best_epoch: int | None = None  # set by training: the epoch whose weights were kept

    def __init__(self, *, seed: int = SEED.default, device: str = DEVICE.default,
                 threads: int = THREADS.default, **options):
        """`options` are this model's declared options (`recviz.models.spec`): missing ones take
        their declared defaults; an unknown name or a value out of range is a ModelError naming it."""
        self.opts = SimpleNamespace(**self.spec.resolve(options))
        self.seed = SEED.parse(seed, self.name, ModelError)
        self.device_name = DEVICE.parse(device, self.name, ModelError)
        self.threads = THREADS.parse(threads, self.name, ModelError)

    @property
    def name(self) -> str:
        return self.spec.name

    def phases(self) -> tuple[Phase, ...]:
        """The phases this model trains through with its options; () when fitted in one pass."""
        return self.spec.phases(vars(self.opts))

    # ---- one-pass models ------------------------------------------------------------------------
    def fit(self, split: Split) -> None:
        """Learn from `split.train` only (nothing held out may reach a model)."""
        raise NotImplementedError(f"{self.name} trains in epochs: use recviz.training.fit")

    # ---- models trained in epochs ------------------------------------------------------------------
    def begin(self, split: Split) -> None:
        """Before the first phase: what the model reads from the split once (a rating matrix, the
        behaviours). Train only, as everything it learns from."""

    def plan(self, phase: Phase, split: Split) -> "GradientPhase | EpochSteps":
        """How to train `phase`: fresh weights are built here, and the answer says what the
        training loop drives — a `GradientPhase` (torch modules: samples, loss, optimiser) or any
        object with the `EpochSteps` methods (eALS's closed-form sweeps)."""
        raise NotImplementedError

    def score_all(self, users: np.ndarray) -> np.ndarray:
        """Scores of every item for each user: float32 [len(users), n_items]."""
        raise NotImplementedError

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores of items [B, M] for users [B]. This default goes through `score_all` in blocks
        of users of at most SCORE_CELLS scores (the first block, one user, gives the catalogue's
        size), so no B makes a B × n_items array; models that can score pairs directly override it."""
        users, items = np.asarray(users), np.asarray(items)
        parts, start, step = [], 0, 1
        while start < len(users):
            block = self.score_all(users[start:start + step])
            parts.append(np.take_along_axis(block, items[start:start + step], axis=1))
            start += step
            step = max(1, SCORE_CELLS // max(1, block.shape[1]))
        return np.concatenate(parts) if parts else np.zeros(items.shape, np.float32)

    def weight_shapes(self, n_users: int, n_items: int, behaviors: tuple[str, ...] = ()) -> list["WeightShape"]:
        """The weights this model learns on data of this size, without allocating them: what the
        memory estimate (`recviz.analysis.estimate`) counts before a run starts. Empty for models
        whose state is small next to the data (ItemPop) or not a fixed shape (ItemKNN)."""
        return []

    def item_embeddings(self) -> np.ndarray | None:
        """One vector per item ([n_items, d]) for the embedding map, or None for models that
        learn none (ItemPop, ItemKNN)."""
        return None

    def get_state(self) -> dict[str, np.ndarray]:
        """Everything needed to score again, as named arrays (saved without pickle)."""
        raise NotImplementedError

    def set_state(self, state: dict[str, np.ndarray], n_users: int, n_items: int) -> None:
        """Restore from `get_state()`'s arrays; the model was built with the same options."""
        raise NotImplementedError


@dataclass(frozen=True)
class WeightShape:
    """One weight a model learns, as the memory estimate counts it: its shape and value size,
    whether gradients train it (then it has a gradient and optimiser state) and whether only the
    rows of a batch are updated (`row_sparse`: the `sparse_rows` option chose a lazy optimiser)."""

    name: str
    shape: tuple[int, ...]
    bytes_per_value: int = 4
    by_gradient: bool = True
    row_sparse: bool = False

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.bytes_per_value


class EpochSteps(Protocol):
    """One phase of a model that is not trained by gradient steps (eALS), as the training loop
    drives it: `epoch()` trains one pass and returns (loss per sample, samples); `snapshot()` and
    `restore()` keep and put back the best epoch's weights; `scorer` is what validation judges."""

    scorer: Recommender

    def epoch(self, stop: StopCheck) -> tuple[float, int]: ...

    def snapshot(self) -> Any: ...

    def restore(self, snapshot: Any) -> None: ...


@dataclass
class GradientPhase:
    """One phase of a torch model, declared by the model and run by `recviz.training`: which
    module learns, on which device, its epoch samples (`draw(rng)` → equally long arrays by name),
    its loss (`batch_loss(batch)`: the mean over one batch of those arrays as tensors) and its
    optimiser settings. `scorer` is judged on validation after each epoch (NeuMF's pre-training
    phases judge the GMF or MLP being trained) and gets `best_epoch` at the end. `shuffle_block`:
    consecutive samples that move together when an epoch is shuffled (DMF keeps a positive with
    its negatives). `precision`: the arithmetic of the loss (autocast for bf16/fp16). `batch_grads`:
    a hand-written loss-and-gradient step the loop may use instead of autograd (fp32 only)."""

    scorer: Recommender
    module: Any  # torch.nn.Module (torch is not imported here)
    device: Any  # torch.device
    draw: Callable[[np.random.Generator], dict[str, np.ndarray]]
    batch_loss: Callable[[dict], Any]
    lr: float
    batch_size: int
    weight_decay: float
    seed: int
    optimizer: str = "adam"  # "adam" (from scratch) | "sgd" (NeuMF after pre-training, §3.4.1)
    shuffle_block: int = 1
    precision: str = "fp32"  # "fp32" | "bf16" | "fp16": the loss under autocast (see recviz.training.loop)
    # `batch_grads(batch)` → the loss, each weight's `.grad` written without autograd (the same
    # gradients as `batch_loss` + backward; e.g. `recviz.models.ncf_step`), or None: autograd
    batch_grads: Callable[[dict], Any] | None = None
