"""GMF, MLP and NeuMF — Neural Collaborative Filtering (He et al. 2017, WWW).

All three are one network shape: one or two *bodies* that turn (user, item) into a feature vector,
concatenated and projected to a logit by the output layer h (σ lives in the log loss, eq. 7):
- GMF body (eq. 8–9):   p_u ⊙ q_i, width emb_dim — MF with a learned weight per latent dimension.
- MLP body (eq. 10):    ReLU tower over [p_u; q_i]. `mlp_layers` = "64,32,16" lists the tower's widths
                        starting with the *concatenated input*: each embedding has mlp_layers[0]/2 = 32
                        dims, then Linear 64→32, ReLU, Linear 32→16, ReLU, and 16 predictive factors —
                        the convention of the authors' code
                        (github.com/hexiangnan/neural_collaborative_filtering).
- NeuMF (eq. 12):       a GMF body and an MLP body with separate embeddings, h over [φ_GMF; φ_MLP].

Initialisation as in the authors' Keras code: embeddings N(0, 0.01²) (paper §4.1), hidden layers
Glorot/Xavier-uniform (Keras' default), the output layer LeCun-uniform, biases zero.

Pre-training (§3.4.1, `pretrain=True`): GMF and MLP are first trained alone with the same options
(same seed, same split, early stopping on validation), their bodies are copied into NeuMF and the
output layer becomes h = [α·h_GMF; (1−α)·h_MLP] with α = 0.5 (eq. 13; biases likewise), i.e. NeuMF
starts as the average of the two models' logits. NeuMF then continues with plain SGD at `lr`, since
Adam's moments were not carried over. The history holds all three phases ("phase": gmf/mlp/neumf,
one running epoch number); `best_epoch` refers to the NeuMF phase.

Settings: the defaults and the `paper` preset are declared in `recviz.models.ncf_spec`; how they
were chosen, and everything else tried, is in docs/experiments.md.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from recviz.models import ncf_spec
from recviz.models.base import GradientPhase
from recviz.models.spec import Phase
from recviz.models.torch_base import TorchRecommender
from recviz.options import widths

ALPHA = 0.5  # eq. 13: how much of NeuMF's initial output layer comes from GMF


def gaussian_embedding(n: int, dim: int) -> nn.Embedding:
    emb = nn.Embedding(n, dim)
    nn.init.normal_(emb.weight, 0.0, 0.01)
    return emb


def output_layer(width: int) -> nn.Linear:
    """h: features → one logit, LeCun-uniform as in the authors' code (U(±√(3/fan_in)))."""
    out = nn.Linear(width, 1)
    bound = math.sqrt(3.0 / width)
    nn.init.uniform_(out.weight, -bound, bound)
    nn.init.zeros_(out.bias)
    return out


def relu_tower(widths: tuple[int, ...], dropout: float = 0.0) -> nn.Sequential:
    """Linear → ReLU (→ Dropout) from widths[0] through widths[-1]: NCF's MLP tower, also used by
    EINMF and the multi-behaviour branches. Glorot-uniform weights, zero biases (Keras' defaults,
    as in the authors' code)."""
    mods: list[nn.Module] = []
    for w_in, w_out in zip(widths[:-1], widths[1:]):
        linear = nn.Linear(w_in, w_out)
        nn.init.xavier_uniform_(linear.weight)
        nn.init.zeros_(linear.bias)
        mods += [linear, nn.ReLU()] + ([nn.Dropout(dropout)] if dropout > 0 else [])
    return nn.Sequential(*mods)


class GMFBody(nn.Module):
    def __init__(self, n_users: int, n_items: int, dim: int):
        super().__init__()
        self.user, self.item = gaussian_embedding(n_users, dim), gaussian_embedding(n_items, dim)
        self.width = dim

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.user(users) * self.item(items)


class MLPBody(nn.Module):
    def __init__(self, n_users: int, n_items: int, layers: tuple[int, ...], dropout: float = 0.0):
        super().__init__()
        half = layers[0] // 2
        self.user, self.item = gaussian_embedding(n_users, half), gaussian_embedding(n_items, half)
        self.tower = relu_tower(layers, dropout)
        self.width = layers[-1]

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.tower(torch.cat([self.user(users), self.item(items)], dim=-1))


class NCFNet(nn.Module):
    """Bodies side by side, one output layer: GMF = {gmf}, MLP = {mlp}, NeuMF = {gmf, mlp}."""

    def __init__(self, **bodies: nn.Module):
        super().__init__()
        self.bodies = nn.ModuleDict(bodies)
        self.out = output_layer(sum(b.width for b in bodies.values()))

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        feats = [body(users, items) for body in self.bodies.values()]
        return self.out(feats[0] if len(feats) == 1 else torch.cat(feats, dim=-1)).squeeze(-1)


def init_from_pretrained(neumf: NCFNet, gmf: NCFNet, mlp: NCFNet, alpha: float = ALPHA) -> None:
    """Copy the trained bodies into NeuMF and set h = [α·h_GMF; (1−α)·h_MLP] (eq. 13); the bias
    becomes α·b_GMF + (1−α)·b_MLP, so NeuMF's first logit is the weighted mean of the two logits."""
    with torch.no_grad():
        neumf.bodies["gmf"].load_state_dict(gmf.bodies["gmf"].state_dict())
        neumf.bodies["mlp"].load_state_dict(mlp.bodies["mlp"].state_dict())
        neumf.out.weight.copy_(torch.cat([alpha * gmf.out.weight, (1 - alpha) * mlp.out.weight], dim=1))
        neumf.out.bias.copy_(alpha * gmf.out.bias + (1 - alpha) * mlp.out.bias)


class GMF(TorchRecommender):
    """Generalized Matrix Factorization (eq. 9): σ(hᵀ(p_u ⊙ q_i)), log loss with `neg_ratio`
    sampled negatives per positive."""

    spec = ncf_spec.GMF

    def build_module(self, n_users: int, n_items: int) -> NCFNet:
        return NCFNet(gmf=GMFBody(n_users, n_items, self.opts.emb_dim))


class MLP(TorchRecommender):
    """Multi-Layer Perceptron (eq. 10): a ReLU tower over [p_u; q_i]; `mlp_layers` starts with the
    concatenated embedding width (each embedding is mlp_layers[0]/2)."""

    spec = ncf_spec.MLP

    def build_module(self, n_users: int, n_items: int) -> NCFNet:
        return NCFNet(mlp=MLPBody(n_users, n_items, widths(self.opts.mlp_layers), self.opts.dropout))


class NeuMF(TorchRecommender):
    """Neural Matrix Factorization (eq. 12): GMF (emb_dim) and MLP (`mlp_layers`) with separate
    embeddings, fused in the output layer; optionally pre-trained from GMF and MLP (§3.4.1)."""

    spec = ncf_spec.NEUMF

    def __init__(self, **options):
        super().__init__(**options)
        self.parts: dict[str, TorchRecommender] = {}  # the pre-trained GMF and MLP, after fit

    def build_module(self, n_users: int, n_items: int) -> NCFNet:
        return NCFNet(gmf=GMFBody(n_users, n_items, self.opts.emb_dim),
                      mlp=MLPBody(n_users, n_items, widths(self.opts.mlp_layers), self.opts.dropout))

    def part(self, cls: type[TorchRecommender]) -> TorchRecommender:
        """GMF or MLP with this NeuMF's options (those it declares), seed, device and threads."""
        mine = vars(self.opts)
        return cls(**{k: mine[k] for k in cls.spec.option_names if k in mine},
                   seed=self.seed, device=self.device_name, threads=self.threads)

    def plan(self, phase: Phase, split, optimizer: str = "adam") -> GradientPhase:
        """Phases gmf and mlp train a GMF and an MLP with this model's options (same seed and split
        as a GMF or MLP run); phase neumf starts from them (eq. 13) and continues with SGD. Without
        pre-training there is only the neumf phase, from scratch with Adam."""
        parts = {"gmf": GMF, "mlp": MLP}
        if phase.name in parts:
            self.parts[phase.name] = part = self.part(parts[phase.name])
            return part.plan(phase, split)
        if not self.opts.pretrain:
            return super().plan(phase, split)
        self.prepare(split.data.n_users, split.data.n_items)
        init_from_pretrained(self.module, self.parts["gmf"].module, self.parts["mlp"].module)
        return self.gradient_phase(split, optimizer="sgd")
