"""Which models exist, what each needs from a dataset, and how to build one.

The registry imports no model code (and so no torch) until a model is built: the app's pages read
it to grey out models a dataset cannot feed, and must stay fast.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from recviz.data.interactions import Interactions
from recviz.errors import ModelError


@dataclass(frozen=True)
class ModelSpec:
    name: str
    title: str
    paper: str
    target: str  # "module:Class"
    options: tuple[str, ...] = ()  # RunConfig fields this model reads
    needs: tuple[str, ...] = ()  # data columns it cannot do without: "rating", "behavior"
    iterative: bool = False  # trained in epochs (learning curves) or fitted in one pass

    def unavailable_reason(self, data: Interactions) -> str | None:
        """Why this dataset cannot feed the model, or None when it can."""
        missing = [col for col in self.needs if getattr(data, col) is None]
        if missing:
            return f"{self.title} needs a {' and a '.join(missing)} column; {data.name or 'this dataset'} has none"
        return None


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec("itempop", "ItemPop", "He et al. 2017 (NCF), baseline", "recviz.models.itempop:ItemPop"),
        ModelSpec("itemknn", "ItemKNN", "Sarwar et al. 2001; NCF baseline", "recviz.models.itemknn:ItemKNN",
                  options=("neighbors", "shrink")),
        # neural models: the RunConfig fields their constructors take (recviz.train.loop reads them)
        ModelSpec("gmf", "GMF", "He et al. 2017 (NCF), §3.2", "recviz.models.ncf:GMF", iterative=True,
                  options=("emb_dim", "neg_ratio", "lr", "batch_size", "epochs", "patience",
                           "weight_decay", "device", "threads", "seed")),
        ModelSpec("mlp", "MLP", "He et al. 2017 (NCF), §3.3", "recviz.models.ncf:MLP", iterative=True,
                  options=("layers", "dropout", "neg_ratio", "lr", "batch_size", "epochs", "patience",
                           "weight_decay", "device", "threads", "seed")),
        ModelSpec("neumf", "NeuMF", "He et al. 2017 (NCF), §3.4", "recviz.models.ncf:NeuMF", iterative=True,
                  options=("emb_dim", "layers", "pretrain", "dropout", "neg_ratio", "lr", "batch_size", "epochs",
                           "patience", "weight_decay", "device", "threads", "seed")),
        ModelSpec("mf", "MF (biased, log loss)", "Rendle et al. 2020 (NCF vs. MF revisited)",
                  "recviz.models.mf:MF", iterative=True,
                  options=("emb_dim", "neg_ratio", "lr", "batch_size", "epochs", "patience",
                           "weight_decay", "device", "threads", "seed")),
        ModelSpec("bpr", "BPR-MF", "Rendle et al. 2009 (BPR); NCF baseline", "recviz.models.mf:BPRMF",
                  iterative=True,  # one sampled negative per positive: no neg_ratio
                  options=("emb_dim", "lr", "batch_size", "epochs", "patience", "weight_decay", "device",
                           "threads", "seed")),
        # ratings are DMF's input (rows/columns of Y), EINMF's explicit input and loss target
        ModelSpec("dmf", "DMF", "Xue et al. 2017 (Deep Matrix Factorization), §3", "recviz.models.dmf:DMF",
                  iterative=True, needs=("rating",),
                  options=("layers", "dmf_loss", "neg_ratio", "lr", "batch_size", "epochs", "patience",
                           "weight_decay", "device", "threads", "seed")),
        ModelSpec("einmf", "EINMF", "EINMF (Comput. Intell. Neurosci.), §3.2–3.3", "recviz.models.einmf:EINMF",
                  iterative=True, needs=("rating",),
                  options=("emb_dim", "layers", "eta", "dropout", "neg_ratio", "lr", "batch_size", "epochs",
                           "patience", "weight_decay", "device", "threads", "seed")),
        # one target behaviour (--target, default buy) learned with the help of the supportive ones
        ModelSpec("mbnmf", "Multi-behaviour NeuMF", "Multiple implicit feedback NMF, §3.1–3.4",
                  "recviz.models.multibehavior:MultiBehaviorNeuMF", iterative=True, needs=("behavior",),
                  options=("emb_dim", "layers", "neg_source", "target", "neg_ratio", "lr", "batch_size",
                           "epochs", "patience", "weight_decay", "device", "threads", "seed")),
        # epochs are ALS sweeps (no learning rate or sampled negatives)
        ModelSpec("eals", "eALS", "He et al. 2016 (fast MF for implicit feedback); NCF baseline",
                  "recviz.models.eals:EALS", iterative=True,
                  options=("emb_dim", "eals_c0", "eals_alpha", "reg", "epochs", "patience", "device",
                           "threads", "seed")),
    ]
}


def get(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}", fix=f"choose one of: {', '.join(MODELS)}") from None


def build(name: str, **options):
    """Instantiate a model with the options its spec lists (others are ignored)."""
    spec = get(name)
    module, cls = spec.target.split(":")
    model_cls = getattr(importlib.import_module(module), cls)
    return model_cls(**{k: v for k, v in options.items() if k in spec.options})


def check_can_feed(name: str, data: Interactions) -> None:
    reason = get(name).unavailable_reason(data)
    if reason:
        raise ModelError(reason, file=data.source, fix="choose another model or dataset")
