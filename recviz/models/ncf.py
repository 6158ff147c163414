"""GMF, MLP and NeuMF — Neural Collaborative Filtering (He et al. 2017, WWW).

All three are one network shape: one or two *bodies* that turn (user, item) into a feature vector,
concatenated and projected to a logit by the output layer h (σ lives in the log loss, eq. 7):
- GMF body (eq. 8–9):   p_u ⊙ q_i, width emb_dim — MF with a learned weight per latent dimension.
- MLP body (eq. 10):    ReLU tower over [p_u; q_i]. `mlp_layers` = "64,32,16" lists the tower's widths
                        starting with the *concatenated input*: each embedding has mlp_layers[0]/2 = 32
                        dims, then Linear 64→32, ReLU, Linear 32→16, ReLU, and 16 predictive factors —
                        the convention of the authors' code
                        (github.com/hexiangnan/neural_collaborative_filtering).
- NeuMF (eq. 12):       GMF's and MLP's separate embeddings, h over [φ_GMF; φ_MLP]. Stored as one table
                        per side: row u of `user` is [p_u^GMF; p_u^MLP] side by side, so a step does one
                        lookup (and one embedding backward) per side instead of two; the columns split
                        into views and never mix, so this is the same network (`NeuMFNet`).

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

import numpy as np
import torch
from torch import nn

from recviz.models import ncf_spec
from recviz.models.base import GradientPhase
from recviz.models.dropout import Dropout
from recviz.models.ncf_step import NCFStep
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


def relu_tower(widths: tuple[int, ...], dropout: float = 0.0, drop: type[nn.Dropout] = nn.Dropout) -> nn.Sequential:
    """Linear → ReLU (→ Dropout) from widths[0] through widths[-1]: NCF's MLP tower, also used by
    EINMF and the multi-behaviour branches. Glorot-uniform weights, zero biases (Keras' defaults,
    as in the authors' code). `drop`: the dropout module — GMF, MLP and NeuMF take
    `recviz.models.dropout.Dropout`, whose masks their compiled step draws too."""
    mods: list[nn.Module] = []
    for w_in, w_out in zip(widths[:-1], widths[1:]):
        linear = nn.Linear(w_in, w_out)
        nn.init.xavier_uniform_(linear.weight)
        nn.init.zeros_(linear.bias)
        mods += [linear, nn.ReLU()] + ([drop(dropout)] if dropout > 0 else [])
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
        self.tower = relu_tower(layers, dropout, Dropout)
        self.width = layers[-1]

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.tower(torch.cat([self.user(users), self.item(items)], dim=-1))


class NCFNet(nn.Module):
    """One body and the output layer: GMF = {gmf}, MLP = {mlp} (the state keys stay
    `bodies.gmf.user.weight` …, as every stored GMF and MLP has them)."""

    def __init__(self, **bodies: nn.Module):
        super().__init__()
        if len(bodies) != 1:
            raise ValueError("NCFNet holds one body; NeuMF is NeuMFNet")
        self.bodies = nn.ModuleDict(bodies)
        self.out = output_layer(sum(b.width for b in bodies.values()))

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        (body,) = self.bodies.values()
        return self.out(body(users, items)).squeeze(-1)

    def hand_step(self) -> NCFStep:
        """This network's hand-written training step (`recviz.models.ncf_step`)."""
        (body,) = self.bodies.values()
        if isinstance(body, GMFBody):
            return NCFStep(self, body.user, body.item, body.width, 0, None, self.out)
        return NCFStep(self, body.user, body.item, 0, body.user.embedding_dim, body.tower, self.out)


def side_by_side(*tables: nn.Embedding) -> nn.Embedding:
    """One table whose rows are the tables' rows side by side (taking the first one's flags)."""
    first = tables[0]
    weight = torch.cat([t.weight.detach() for t in tables], dim=1)
    return nn.Embedding(weight.shape[0], weight.shape[1], _weight=weight, sparse=first.sparse)


class NeuMFNet(nn.Module):
    """NeuMF (eq. 12): h over [p_u^G ⊙ q_i^G; tower([p_u^M; q_i^M])], one embedding table per side.

    `user` holds [p^G | p^M] (emb_dim + mlp_layers[0]/2 columns), `item` [q^G | q^M]; a step looks
    each side up once and splits the rows into views. The weights are drawn table by table in the
    order of separate GMF and MLP bodies (GMF user, GMF item, MLP user, MLP item, tower, h), so a
    seed gives exactly the weights it gave when the tables were separate. `from_bodies_state` reads
    a state stored in that earlier layout."""

    def __init__(self, n_users: int, n_items: int, dim: int, layers: tuple[int, ...], dropout: float = 0.0):
        super().__init__()
        half = layers[0] // 2
        gmf_user, gmf_item = gaussian_embedding(n_users, dim), gaussian_embedding(n_items, dim)
        mlp_user, mlp_item = gaussian_embedding(n_users, half), gaussian_embedding(n_items, half)
        self.user, self.item = side_by_side(gmf_user, mlp_user), side_by_side(gmf_item, mlp_item)
        self.tower = relu_tower(layers, dropout, Dropout)
        self.out = output_layer(dim + layers[-1])
        self.widths = (dim, half)  # GMF's and MLP's columns of each table

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        gu, mu = self.user(users).split(self.widths, dim=-1)
        gi, mi = self.item(items).split(self.widths, dim=-1)
        return self.out(torch.cat([gu * gi, self.tower(torch.cat([mu, mi], dim=-1))], dim=-1)).squeeze(-1)

    def hand_step(self) -> NCFStep:
        """This network's hand-written training step (`recviz.models.ncf_step`)."""
        return NCFStep(self, self.user, self.item, *self.widths, self.tower, self.out)

    @staticmethod
    def from_bodies_state(state: dict) -> dict:
        """A state saved with separate GMF and MLP bodies (`bodies.gmf.user.weight`,
        `bodies.mlp.tower.0.weight`, …: RecViz before one table per side) in this layout; any other
        state is returned as it is."""
        if "bodies.gmf.user.weight" not in state:
            return state
        old, new = dict(state), {}
        for side in ("user", "item"):
            gmf, mlp = old.pop(f"bodies.gmf.{side}.weight", None), old.pop(f"bodies.mlp.{side}.weight", None)
            if gmf is None or mlp is None or len(gmf) != len(mlp):  # not that layout: the caller says why
                return state
            new[f"{side}.weight"] = np.concatenate([np.asarray(gmf), np.asarray(mlp)], axis=1)
        return new | {k.removeprefix("bodies.mlp."): v for k, v in old.items()}  # tower.*; out.* as it was


def init_from_pretrained(neumf: NeuMFNet, gmf: NCFNet, mlp: NCFNet, alpha: float = ALPHA) -> None:
    """Copy the trained bodies into NeuMF and set h = [α·h_GMF; (1−α)·h_MLP] (eq. 13); the bias
    becomes α·b_GMF + (1−α)·b_MLP, so NeuMF's first logit is the weighted mean of the two logits."""
    g, m = gmf.bodies["gmf"], mlp.bodies["mlp"]
    with torch.no_grad():
        neumf.user.weight.copy_(torch.cat([g.user.weight, m.user.weight], dim=1))
        neumf.item.weight.copy_(torch.cat([g.item.weight, m.item.weight], dim=1))
        neumf.tower.load_state_dict(m.tower.state_dict())
        neumf.out.weight.copy_(torch.cat([alpha * gmf.out.weight, (1 - alpha) * mlp.out.weight], dim=1))
        neumf.out.bias.copy_(alpha * gmf.out.bias + (1 - alpha) * mlp.out.bias)


class NCFRecommender(TorchRecommender):
    """What GMF, MLP and NeuMF share: the hand-written training step of their networks (for the
    log loss over every weight; a subclass with another loss or a frozen weight trains by autograd)."""

    def batch_grads(self):
        own_loss = type(self).batch_loss is not TorchRecommender.batch_loss or self.loss_kind != "pointwise"
        if own_loss or not all(p.requires_grad for p in self.module.parameters()):
            return None
        return self.module.hand_step()


class GMF(NCFRecommender):
    """Generalized Matrix Factorization (eq. 9): σ(hᵀ(p_u ⊙ q_i)), log loss with `neg_ratio`
    sampled negatives per positive."""

    spec = ncf_spec.GMF

    def build_module(self, n_users: int, n_items: int) -> NCFNet:
        return NCFNet(gmf=GMFBody(n_users, n_items, self.opts.emb_dim))


class MLP(NCFRecommender):
    """Multi-Layer Perceptron (eq. 10): a ReLU tower over [p_u; q_i]; `mlp_layers` starts with the
    concatenated embedding width (each embedding is mlp_layers[0]/2)."""

    spec = ncf_spec.MLP

    def build_module(self, n_users: int, n_items: int) -> NCFNet:
        return NCFNet(mlp=MLPBody(n_users, n_items, widths(self.opts.mlp_layers), self.opts.dropout))


class NeuMF(NCFRecommender):
    """Neural Matrix Factorization (eq. 12): GMF (emb_dim) and MLP (`mlp_layers`) with separate
    embeddings (one table per side, `NeuMFNet`), fused in the output layer; optionally pre-trained
    from GMF and MLP (§3.4.1)."""

    spec = ncf_spec.NEUMF

    def __init__(self, **options):
        super().__init__(**options)
        self.parts: dict[str, TorchRecommender] = {}  # the pre-trained GMF and MLP, after fit

    def build_module(self, n_users: int, n_items: int) -> NeuMFNet:
        return NeuMFNet(n_users, n_items, self.opts.emb_dim, widths(self.opts.mlp_layers), self.opts.dropout)

    def set_state(self, state: dict[str, np.ndarray], n_users: int, n_items: int) -> None:
        """Also a state stored before one table per side (separate GMF and MLP bodies)."""
        super().set_state(NeuMFNet.from_bodies_state(dict(state)), n_users, n_items)

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
