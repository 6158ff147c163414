"""One serialisable config describes one run. The CLI, the app, the worker and sweeps all build
this same object, so a run can be repeated from its stored JSON alone."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

from recviz.errors import RecvizError


@dataclass
class RunConfig:
    # data
    dataset: str = "synthetic"
    min_user: int = 0  # k-core: drop users with fewer interactions (0 = off)
    min_item: int = 0
    min_rating: float | None = None  # ratings below this are not positives
    # protocol
    protocol: str = "loo"  # "loo" | "ratio"
    candidates: int = 100  # sampled candidates per held-out item (loo)
    target: str | None = None  # behaviour that counts as the held-out interaction
    valid: str = "latest"  # loo validation pair: "latest" before test | "random" (NCF/DMF papers)
    seed: int = 0
    # model
    model: str = "itempop"
    neighbors: int = 100  # ItemKNN neighbourhood size
    shrink: float = 0.0  # ItemKNN similarity shrinkage
    emb_dim: int = 32  # embedding size (predictive factors of GMF/MF/BPR)
    layers: str = "64,32,16"  # MLP tower widths, comma-separated
    pretrain: bool = False  # NeuMF: initialise from trained GMF and MLP (paper §3.4.1)
    eta: float = 0.6  # EINMF: L = η·L_implicit + (1−η)·L_explicit (paper's best: 0.6)
    dropout: float = 0.0  # dropout after each hidden ReLU of MLP, NeuMF and EINMF (EINMF paper: 0.2)
    dmf_loss: str = "nce"  # DMF: "nce" (rating / max rating targets) | "ce" (binary)
    neg_source: str = "uniform"  # mbnmf negatives: "uniform" | "supportive" (items touched only supportively)
    eals_c0: float = 512.0  # eALS: total weight of missing entries (He et al. 2016)
    eals_alpha: float = 0.4  # eALS: popularity exponent of the missing-entry weights
    reg: float = 10.0  # eALS: L2 regularisation (chosen on ml-100k validation; 0.01 overfits in 4 sweeps)
    # training
    neg_ratio: int = 4  # sampled negatives per positive, re-drawn every epoch
    lr: float = 0.001
    batch_size: int = 256
    epochs: int = 20
    patience: int = 3  # early stopping on validation NDCG@10; 0 = never stop early
    weight_decay: float = 0.0
    device: str = "auto"  # "auto" (CUDA when present) | "cpu" | "cuda" | "cuda:1"
    threads: int = 0  # torch CPU threads; 0 = torch's default

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise RecvizError(f"unknown config keys {unknown}", fix=f"valid keys: {sorted(known)}")
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return cls.from_dict(json.loads(text))
