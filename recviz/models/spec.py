"""What a model declares about itself, once: its name and paper, what it needs from a dataset, its
options (type, default, range, help, the paper's value, whether it can be swept) and named presets.

A declaration imports no torch, so the pages, the CLI's `--help` and `import recviz` read it
without loading a model. The registry (`recviz.models.registry`) lists every declaration; the CLI
flags, the Train form, the sweep lists, the bench and the cost estimate are generated from them.

Defaults are the best settings known for the default protocol (leave-one-out, validation = the
interaction before test), chosen on validation; `docs/experiments.md` holds the measurements.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from recviz.errors import ModelError
from recviz.options import Option


@dataclass(frozen=True)
class Tower:
    """Which option holds the MLP a model runs for every (user, item) pair when scoring, and
    whether its first width is the tower's input (NCF) or the first hidden layer (EINMF): the cost
    estimate of full ranking reads it."""

    option: str
    includes_input: bool


@dataclass(frozen=True)
class Phase:
    """One stretch of training with its own epoch count, named in the history and in progress
    ("epoch 3/20 of gmf (phase 1 of 3)"): NeuMF with pre-training runs three (gmf, mlp, neumf), other iterative
    models one, named after themselves."""

    name: str
    epochs: int


@dataclass(frozen=True)
class ModelSpec:
    name: str
    title: str
    paper: str
    target: str  # "module:Class" of the implementation, imported only when a model is built
    options: tuple[Option, ...] = ()
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    needs: tuple[str, ...] = ()  # data columns it cannot do without: "rating", "behavior"
    iterative: bool = False  # trained in epochs (learning curves) or fitted in one pass
    uses_device: bool = False  # runs on torch, so the device and thread count matter
    tower: Tower | None = None
    summary: str = ""  # one line for the models table and the Train page
    # The phase names a run goes through, from its resolved options; None: one phase named after
    # the model. Each phase runs the `epochs` option's number of epochs at most.
    stages: Callable[[Mapping[str, Any]], tuple[str, ...]] | None = None

    def __post_init__(self):
        # the `paper` preset is the paper values declared on the options themselves
        paper = {o.name: o.paper for o in self.options if o.paper is not None}
        if paper and "paper" not in self.presets:
            object.__setattr__(self, "presets", {"paper": paper, **self.presets})
        names = [o.name for o in self.options]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name} declares an option twice: {names}")
        for preset, values in self.presets.items():
            unknown = set(values) - set(names)
            if unknown:
                raise ValueError(f"{self.name} preset {preset!r} sets undeclared options {sorted(unknown)}")

    # ---- reading the declaration ----------------------------------------------------------------
    @property
    def option_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.options)

    def option(self, name: str) -> Option:
        for o in self.options:
            if o.name == name:
                return o
        raise ModelError(f"{self.name} has no option {name!r}", fix=self._which())

    def has(self, name: str) -> bool:
        return name in self.option_names

    def defaults(self) -> dict[str, Any]:
        return {o.name: o.default for o in self.options}

    def phases(self, options: Mapping[str, Any] | None = None) -> tuple[Phase, ...]:
        """The training phases of a run with these options (missing ones take their defaults),
        in order; () for a model fitted in one pass. Progress bars, the CLI's epoch lines and the
        training loop all read this, so they agree on names and totals."""
        if not self.iterative:
            return ()
        values = self.defaults() | dict(options or {})
        names = self.stages(values) if self.stages else (self.name,)
        return tuple(Phase(name, int(values["epochs"])) for name in names)

    def sweepable(self) -> tuple[Option, ...]:
        return tuple(o for o in self.options if o.sweep)

    def unavailable_reason(self, data) -> str | None:
        """Why this dataset cannot feed the model, or None when it can."""
        missing = [col for col in self.needs if getattr(data, col) is None]
        if missing:
            return f"{self.title} needs a {' and a '.join(missing)} column; {data.name or 'this dataset'} has none"
        return None

    # ---- checking values ------------------------------------------------------------------------
    def resolve(self, given: Mapping[str, Any] | None = None, preset: str | None = None) -> dict[str, Any]:
        """Every option of this model, typed and checked: the declared defaults, then the preset's
        values, then `given`. An unknown name, or a value out of range, is a ModelError that names
        the option, what it allows and this model."""
        given = dict(given or {})
        unknown = [k for k in given if not self.has(k)]
        if unknown:
            renamed = {k: o.name for k in unknown for o in self.options if k in o.formerly}
            if renamed:
                k = next(iter(renamed))
                raise ModelError(f"{self.name}: option {k!r} is now called {renamed[k]!r}",
                                 fix=f"use {self.option(renamed[k]).flag}")
            raise ModelError(f"{self.name} has no option {unknown[0]!r}", fix=self._which())
        values = self.defaults() | dict(self.preset(preset)) | given
        return {o.name: o.parse(values[o.name], self.name, ModelError) for o in self.options}

    def preset(self, name: str | None) -> Mapping[str, Any]:
        if name is None:
            return {}
        if name not in self.presets:
            known = ", ".join(self.presets) or "none"
            raise ModelError(f"{self.name} has no preset {name!r}", fix=f"its presets: {known}")
        return self.presets[name]

    def from_stored(self, flat: Mapping[str, Any]) -> dict[str, Any]:
        """The options of a config stored by an earlier version, where every option of every model
        sat flat in one dict under older names (`layers`, `weight_decay`, `reg`, …): each option
        takes its own name's value, else its former name's, else its default. Values that no longer
        pass the checks fall back to the default rather than make an old run unreadable."""
        out = {}
        for o in self.options:
            for key in (o.name, *o.formerly):
                if key in flat:
                    try:
                        out[o.name] = o.parse(flat[key], self.name, ModelError)
                    except ModelError:
                        out[o.name] = o.default
                    break
            else:
                out[o.name] = o.default
        return out

    def _which(self) -> str:
        names = ", ".join(self.option_names) or "none"
        return f"{self.name}'s options: {names} (see `recviz train --model {self.name} --help`)"


# ---- options several models share, declared once -------------------------------------------------
# A model takes these with its own best defaults (`training(lr=…)`); name, help and range stay here.
def _even_first(text: str) -> str | None:
    first = int(text.split(",")[0])
    return None if first % 2 == 0 else (f"the first width is the user and item embeddings side by side, "
                                        f"so it must be even (e.g. {first + 1})")


EMB_DIM = Option("emb_dim", "int", 64, "embedding size: latent factors per user and per item",
                 label="Embedding size", low=1, high=1024, sweep=True)
MLP_LAYERS = Option("mlp_layers", "widths", "256,128,64",
                    "MLP tower widths, starting with the concatenated user and item embeddings (each half "
                    "of the first width); the last width is the MLP's predictive factors",
                    label="MLP layers", sweep=True, rule=_even_first, formerly=("layers",))
DROPOUT = Option("dropout", "float", 0.0, "dropout after each hidden ReLU of the MLP tower",
                 label="Dropout", low=0.0, high=0.9, sweep=True)
NEG_RATIO = Option("neg_ratio", "int", 4, "sampled negatives per positive, re-drawn every epoch",
                   label="Negatives per positive", low=1, high=100, sweep=True)
LR = Option("lr", "float", 0.001, "Adam's learning rate (scale it with the batch size)", label="Learning rate",
            low=1e-6, high=1.0, sweep=True, log=True)
BATCH_SIZE = Option("batch_size", "int", 256, "samples per optimizer step; larger trains faster per epoch",
                    label="Batch size", low=1, high=1 << 20, sweep=True)
EPOCHS = Option("epochs", "int", 20, "most epochs to train (the best validation epoch's weights are kept)",
                label="Epochs", low=1, high=1000)
PATIENCE = Option("patience", "int", 3,
                  "stop after this many epochs without a better validation NDCG@10; 0 = never stop early",
                  label="Patience", low=0, high=1000)
L2 = Option("l2", "float", 0.0, "L2 penalty on every weight (Adam's weight_decay: l2·w is added to each gradient)",
            label="L2 (weight decay)", low=0.0, high=1.0, log=True, sweep=True,
            formerly=("weight_decay",))
# Embedding tables with at least this many rows get row-sparse updates under sparse_rows=auto (the
# one place this size is written). One CPU Adam step over a 64-wide table, batch 1024, gradient
# included (2026-12-07, idle machine, /tmp-style micro-benchmark in docs/experiments.md): dense
# 0.19 / 0.62 / 0.95 / 6.1 ms at 2k / 10k / 20k / 100k rows, lazy with the compiled update
# (`recviz.native`) 0.10 / 0.12 / 0.16 / 0.14 ms. Lazy Adam moves a row only when a batch
# reads it, so per epoch it learns a little slower (about an epoch behind on ml-100k GMF): below
# this size the dense step is cheap enough and kept, and ml-100k (943 users, 1,682 items) and ml-1m
# (6,040 users, 3,706 items) keep their numbers exactly. (It was 100,000 while the lazy update was
# ~20 torch operations: a 1M-row log's 10k × 40k tables then trained at 0.15 of ml-100k's rate.)
SPARSE_ROWS_FROM = 10_000
SPARSE_ROWS = Option("sparse_rows", "str", "auto", choices=("auto", "on", "off"), label="Row-sparse embeddings",
                     help=f"update only the embedding rows in each batch (lazy Adam/SGD, see "
                          f"recviz.training.optim): auto = tables of at least {SPARSE_ROWS_FROM:,} rows; "
                          f"on = every embedding table; off = dense updates of every row, every step")

PRECISIONS = ("fp32", "bf16", "fp16")
PRECISION = Option("precision", "str", "fp32",
                   "arithmetic of training on a CUDA GPU: fp32, or bf16 / fp16 mixed precision (autocast; fp16 "
                   "with loss scaling). Other devices train in fp32, and the run records the precision it used",
                   label="Precision (CUDA)", choices=PRECISIONS)


def training(*, pairwise: bool = False, paper: Mapping[str, Any] | None = None, **defaults) -> tuple[Option, ...]:
    """The options of the shared training loop with a model's own defaults and its paper's values
    (`sparse_rows` too: how the loop updates embedding tables; `precision`: the arithmetic on CUDA).
    BPR's pairwise loss takes exactly one negative per positive, so it has no `neg_ratio`."""
    base = (LR, BATCH_SIZE, EPOCHS, PATIENCE, L2, SPARSE_ROWS, PRECISION)
    return adjust(base if pairwise else (NEG_RATIO, *base), paper=paper, **defaults)


def adjust(options: tuple[Option, ...], *, paper: Mapping[str, Any] | None = None, **defaults) -> tuple[Option, ...]:
    """Shared options with a model's own defaults (`name=value`) and paper values (`paper={…}`)."""
    paper = dict(paper or {})
    names = {o.name for o in options}
    unknown = (set(defaults) | set(paper)) - names
    if unknown:
        raise ValueError(f"no such options here: {sorted(unknown)}")
    return tuple(o.with_default(defaults.get(o.name, o.default), paper=paper.get(o.name, o.paper))
                 for o in options)
