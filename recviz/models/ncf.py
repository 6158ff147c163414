"""GMF, MLP and NeuMF — Neural Collaborative Filtering (He et al. 2017, WWW).

All three are one network shape: one or two *bodies* that turn (user, item) into a feature vector,
concatenated and projected to a logit by the output layer h (σ lives in the log loss, eq. 7):
- GMF body (eq. 8–9):   p_u ⊙ q_i, width emb_dim — MF with a learned weight per latent dimension.
- MLP body (eq. 10):    ReLU tower over [p_u; q_i]. `layers` = "64,32,16" lists the tower's widths
                        starting with the *concatenated input*: each embedding has layers[0]/2 = 32
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

Settings (ml-100k, leave-one-out with 100 candidates, neg_ratio 4, batch 256, emb_dim 64 and
layers "256,128,64": 64 predictive factors on both sides, the paper's largest setting; chosen on
validation NDCG@10, seed 0; one seed moves test HR@10 by ±0.01):
- GMF:   Adam lr 0.001, weight_decay 1e-6 (valid 0.421; without decay 0.414).
- MLP:   Adam lr 0.001, no weight decay (valid 0.418; 1e-6 and 1e-5 were no better).
- NeuMF: Adam lr 0.0005, weight_decay 1e-6 (valid 0.425, over 3 seeds 0.415 against 0.412 for the
         paper's lr 0.001 without decay) — NeuMF from scratch overfits after ~6 epochs at lr 0.001.
- NeuMF with pretrain: the gain (+0.01 valid NDCG@10 over the better part) comes from starting
  as the two parts' average; plain SGD at lr ≤ 0.001 then moves it by ~0.001 at most.
Early stopping (patience 3–5) matters more than any of these: all models peak within 6–30 epochs.
Re-checked with a random validation item (`--valid random`, the bench's protocol), NeuMF, mean of
3 seeds, valid NDCG@10 / test HR@10: lr 0.001 without decay 0.549 / 0.644; lr 0.001 + 1e-6
0.553 / 0.658; lr 0.0003 + 1e-6 0.556 / 0.654; batch 1024 at lr 0.002 0.555 / 0.660; the setting
above (lr 0.0005 + 1e-6) 0.658 on test — none is clearly better, so it stays. `dropout` 0.2 after
each hidden ReLU of the MLP tower raises valid NDCG@10 to 0.564, the best of all of these, yet test
stays at 0.657 / 0.384: the random validation item is easier to fit than the latest one. The pre-trained NeuMF's SGD phase barely moves it even at lr 0.05 (valid
0.5760 → 0.5768): it stays the α = 0.5 average of GMF and MLP.
Why nothing moves it: at batch 1024 (seed 0, 20 epochs, no early stopping) test HR@10 peaks at
0.677 in epoch 5 and falls to 0.582 by epoch 20 while the train loss goes 0.21 → 0.06 — NeuMF
memorises — and what slows that also lowers the peak. Adam's L2 1e-5 / 1e-4: peaks 0.652 / 0.651;
L2 on the batch's embedding rows 1e-3 / 1e-2: 0.674 / 0.651; evaluating an exponential moving
average of the weights (decay 0.999; 3 seeds): valid NDCG@10 0.567 against 0.555 but test
0.656 / 0.389 against 0.660 / 0.382; patience 6 instead of 3 at batch 256 (3 seeds): the same
epochs chosen, 0.664 / 0.388. None of these is kept.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from recviz.errors import ModelError
from recviz.models.torch_base import TorchRecommender
from recviz.train.loop import Cancelled

ALPHA = 0.5  # eq. 13: how much of NeuMF's initial output layer comes from GMF


def parse_widths(layers: str | tuple | list, example: str = "256,64") -> tuple[int, ...]:
    """"256,64" → (256, 64): a tower's widths, each a positive integer."""
    try:
        parts = layers.split(",") if isinstance(layers, str) else layers
        widths = tuple(int(w) for w in parts if str(w).strip())
    except ValueError:
        raise ModelError(f"layers must be comma-separated integers like {example}, not {layers!r}") from None
    if not widths or min(widths) < 1:
        raise ModelError(f"layers must be positive widths like {example}, not {layers!r}")
    return widths


def parse_layers(layers: str | tuple | list) -> tuple[int, ...]:
    """"64,32,16" → (64, 32, 16): the concatenated input width, then each hidden layer's width."""
    widths = parse_widths(layers, example="64,32,16")
    if widths[0] % 2:
        raise ModelError(f"the first width of layers ({widths[0]}) is the user and item embeddings "
                         "side by side, so it must be even", fix=f"use {widths[0] + 1}")
    return widths


def check_dropout(dropout: float) -> float:
    if not 0.0 <= dropout < 1.0:
        raise ModelError(f"dropout must be in [0, 1), not {dropout}")
    return float(dropout)


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

    name = "gmf"

    def __init__(self, emb_dim: int = 64, **train_options):
        super().__init__(**train_options)
        if emb_dim < 1:
            raise ModelError(f"emb_dim must be ≥ 1, not {emb_dim}")
        self.emb_dim = emb_dim

    def build_module(self, n_users: int, n_items: int) -> NCFNet:
        return NCFNet(gmf=GMFBody(n_users, n_items, self.emb_dim))


class MLP(TorchRecommender):
    """Multi-Layer Perceptron (eq. 10): a ReLU tower over [p_u; q_i]; `layers` starts with the
    concatenated embedding width (each embedding is layers[0]/2)."""

    name = "mlp"

    def __init__(self, layers: str = "64,32,16", dropout: float = 0.0, **train_options):
        super().__init__(**train_options)
        self.layers, self.dropout = parse_layers(layers), check_dropout(dropout)

    def build_module(self, n_users: int, n_items: int) -> NCFNet:
        return NCFNet(mlp=MLPBody(n_users, n_items, self.layers, self.dropout))


class NeuMF(TorchRecommender):
    """Neural Matrix Factorization (eq. 12): GMF (emb_dim) and MLP (`layers`) with separate
    embeddings, fused in the output layer; optionally pre-trained from GMF and MLP (§3.4.1)."""

    name = "neumf"

    def __init__(self, emb_dim: int = 64, layers: str = "64,32,16", pretrain: bool = False,
                 dropout: float = 0.0, **train_options):
        super().__init__(**train_options)
        if emb_dim < 1:
            raise ModelError(f"emb_dim must be ≥ 1, not {emb_dim}")
        self.emb_dim, self.layers, self.pretrain = emb_dim, parse_layers(layers), bool(pretrain)
        self.dropout = check_dropout(dropout)
        self.train_options = train_options
        self.parts: dict[str, TorchRecommender] = {}  # the pre-trained GMF and MLP, after fit

    def build_module(self, n_users: int, n_items: int) -> NCFNet:
        return NCFNet(gmf=GMFBody(n_users, n_items, self.emb_dim),
                      mlp=MLPBody(n_users, n_items, self.layers, self.dropout))

    def fit(self, split, on_epoch=None, should_stop=None) -> list[dict]:
        if not self.pretrain:
            return super().fit(split, on_epoch, should_stop)
        n_users, n_items = split.data.n_users, split.data.n_items
        self.parts = {"gmf": GMF(emb_dim=self.emb_dim, **self.train_options),
                      "mlp": MLP(layers=self.layers, dropout=self.dropout, **self.train_options)}
        history: list[dict] = []
        try:
            for name, part in self.parts.items():  # same seed, split and options as a GMF/MLP run
                part.prepare(n_users, n_items)
                history += part.train_phase(split, on_epoch, should_stop, first_epoch=len(history) + 1,
                                            phase=name)
            self.prepare(n_users, n_items)
            init_from_pretrained(self.module, self.parts["gmf"].module, self.parts["mlp"].module)
            history += self.train_phase(split, on_epoch, should_stop, first_epoch=len(history) + 1,
                                        phase="neumf", optimizer="sgd")
        except Cancelled as stopped:  # report every finished epoch, whichever phase was running
            raise Cancelled(history + stopped.history) from None
        return history
