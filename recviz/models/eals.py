"""eALS — matrix factorisation with popularity-weighted missing data (He, Zhang, Kan & Chua 2016,
"Fast Matrix Factorization for Online Recommendation with Implicit Feedback", SIGIR), the
state-of-the-art MF baseline of the NCF paper (He et al. 2017, §4.1).

Model ŷ_ui = p_u·q_i; loss (eq. 5 of the NCF paper, eq. 2 of eALS):

    L = Σ_{(u,i)∈R} w_ui (1 − ŷ_ui)²  +  Σ_u Σ_{i∉R_u} c_i ŷ_ui²  +  λ (Σ‖p_u‖² + Σ‖q_i‖²)

with w_ui = 1 on observed pairs and every *missing* entry weighted by its item's popularity,
c_i = c0 · f_i^α / Σ_j f_j^α (f_i = distinct train users of item i; c0 = 512, α = 0.4 as in the
paper). R is the train part — the target behaviour's rows when `--target` is set (`target_train`).

Optimiser: the paper's element-wise ALS (coordinate descent, eq. 12–13), one latent dimension f at
a time, **vectorised over all users (then all items) at once** — the only Python loop is over the
K dimensions. The Σ over *all* missing entries costs nothing thanks to the cached Gram matrices
S^q = Σ_i c_i q_i q_iᵀ and S^p = Σ_u p_u p_uᵀ (K×K); the Σ over observed pairs is a scatter-add
(`index_add_`) over the nnz pairs, with the prediction cache ŷ_ui updated after each dimension:

  p_uf ← [Σ_{i∈R_u} (w − (w − c_i) r̂ᶠ_ui) q_if − Σ_{k≠f} p_uk S^q_kf]
         / [Σ_{i∈R_u} (w − c_i) q_if² + S^q_ff + λ]
  q_if ← [Σ_{u∈R_i} (w − (w − c_i) r̂ᶠ_ui) p_uf − c_i Σ_{k≠f} q_ik S^p_kf]
         / [Σ_{u∈R_i} (w − c_i) p_uf² + c_i S^p_ff + λ]

where r̂ᶠ_ui = ŷ_ui − p_uf q_if. One "epoch" is one sweep (all users, then all items), costing
O(K·nnz + K²·(M+N)).
Tensors live on the run's device (CUDA when there is one) in float64, the precision of the
authors' Java code (a choice, not measured against float32; a sweep on ml-100k takes ~0.3 s on
one CPU core either way). Each sweep is reported like a neural epoch and judged on validation;
early stopping on NDCG@10 with `patience`, and the best sweep's factors are kept (the same
contract as the training loop, through the same `recviz.training.early_stop`). train_loss is L
without the λ terms, per observed pair.

The defaults and the `paper` preset are declared in `recviz.models.eals_spec`; how λ was chosen
is in docs/experiments.md.
"""

from __future__ import annotations

import numpy as np
import torch

from recviz.data.split import Split
from recviz.data.training_samples import train_positives
from recviz.errors import ModelError
from recviz.models import eals_spec
from recviz.models.base import Recommender, WeightShape
from recviz.models.device import pick_device, seed_everything, set_threads
from recviz.models.spec import Phase

INIT_STD = 0.01  # N(0, 0.01²) as in the authors' Java code (MF_fastALS)


def missing_weights(popularity: np.ndarray, c0: float, alpha: float) -> np.ndarray:
    """c_i = c0 · f_i^α / Σ_j f_j^α (eALS eq. 8): popular items' absence says more. Items nobody
    has in train get 0."""
    f = np.asarray(popularity, dtype=np.float64) ** alpha
    f[np.asarray(popularity) <= 0] = 0.0
    total = f.sum()
    return c0 * f / total if total > 0 else f


class EALS(Recommender):
    spec = eals_spec.EALS

    def __init__(self, **options):
        super().__init__(**options)
        o = self.opts
        self.emb_dim, self.c0, self.alpha, self.l2 = o.emb_dim, o.c0, o.alpha, o.l2
        self.device: torch.device | None = None
        self.P: torch.Tensor | None = None  # [n_users, K]
        self.Q: torch.Tensor | None = None  # [n_items, K]

    def weight_shapes(self, n_users: int, n_items: int, behaviors: tuple[str, ...] = ()) -> list[WeightShape]:
        """P and Q in float64, solved in closed form (no gradients, no optimiser state)."""
        return [WeightShape("P", (n_users, self.emb_dim), 8, by_gradient=False),
                WeightShape("Q", (n_items, self.emb_dim), 8, by_gradient=False)]

    # ---- training: the shared epoch loop (recviz.training) drives `_Sweeps` ---------------------
    def plan(self, phase: Phase, split: Split) -> "_Sweeps":
        self.device = pick_device(self.device_name)
        set_threads(self.threads)
        seed_everything(self.seed)
        n_users, n_items = split.data.n_users, split.data.n_items
        users, items, _ = train_positives(split)  # distinct target pairs
        if len(users) == 0:
            raise ModelError("there are no training pairs (is the train part empty?)")
        dev, dt = self.device, torch.float64
        gen = torch.Generator().manual_seed(self.seed)  # CPU draws: same start on every device
        self.P = (torch.randn(n_users, self.emb_dim, generator=gen, dtype=dt) * INIT_STD).to(dev)
        self.Q = (torch.randn(n_items, self.emb_dim, generator=gen, dtype=dt) * INIT_STD).to(dev)
        c = torch.as_tensor(missing_weights(np.bincount(items, minlength=n_items), self.c0, self.alpha),
                            dtype=dt, device=dev)
        return _Sweeps(self, torch.as_tensor(users, device=dev), torch.as_tensor(items, device=dev), c)

    def _sweep_users(self, u, i, c, pred):
        """Element-wise ALS over every user at once (eALS eq. 12); returns the updated ŷ cache."""
        P, Q, n = self.P, self.Q, self.P.shape[0]
        S = (Q * c[:, None]).T @ Q  # S^q = Σ_i c_i q_i q_iᵀ
        ci = c[i]
        for f in range(self.emb_dim):
            qf = Q[i, f]
            r_hat = pred - P[u, f] * qf  # prediction without dimension f
            num = torch.zeros(n, dtype=P.dtype, device=P.device).index_add_(0, u, (1.0 - (1.0 - ci) * r_hat) * qf)
            num -= P @ S[:, f] - P[:, f] * S[f, f]
            den = torch.zeros(n, dtype=P.dtype, device=P.device).index_add_(0, u, (1.0 - ci) * qf * qf)
            den += S[f, f] + self.l2
            new = num / den
            pred = r_hat + new[u] * qf
            P[:, f] = new
        return pred

    def _sweep_items(self, u, i, c, pred):
        """Element-wise ALS over every item at once (eALS eq. 13); returns the updated ŷ cache."""
        P, Q, m = self.P, self.Q, self.Q.shape[0]
        S = P.T @ P  # S^p = Σ_u p_u p_uᵀ
        ci = c[i]
        for f in range(self.emb_dim):
            pf = P[u, f]
            r_hat = pred - Q[i, f] * pf
            num = torch.zeros(m, dtype=Q.dtype, device=Q.device).index_add_(0, i, (1.0 - (1.0 - ci) * r_hat) * pf)
            num -= c * (Q @ S[:, f] - Q[:, f] * S[f, f])
            den = torch.zeros(m, dtype=Q.dtype, device=Q.device).index_add_(0, i, (1.0 - ci) * pf * pf)
            den += c * S[f, f] + self.l2
            new = num / den
            pred = r_hat + new[i] * pf
            Q[:, f] = new
        return pred

    def _loss(self, i, c, pred) -> float:
        """Σ_R (1 − ŷ)² + Σ_u Σ_{i∉R_u} c_i ŷ²; the second sum is Σ over *all* entries
        (⟨S^p, S^q⟩, K×K) minus the observed ones."""
        all_missing = ((self.P.T @ self.P) * ((self.Q * c[:, None]).T @ self.Q)).sum()
        return float(((1.0 - pred) ** 2).sum() + all_missing - (c[i] * pred ** 2).sum())

    # ---- scoring ------------------------------------------------------------------------------
    def _factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.P is None or self.Q is None:
            raise ModelError("eals has no factors yet", fix="train it (fit) or load a saved state")
        return self.P, self.Q

    def score_all(self, users: np.ndarray) -> np.ndarray:
        P, Q = self._factors()
        u = torch.as_tensor(np.asarray(users, dtype=np.int64), device=P.device)
        return (P[u] @ Q.T).float().cpu().numpy()

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        P, Q = self._factors()
        u = torch.as_tensor(np.asarray(users, dtype=np.int64), device=P.device)
        it = torch.as_tensor(np.asarray(items, dtype=np.int64), device=P.device)
        return torch.einsum("bk,bmk->bm", P[u], Q[it]).float().cpu().numpy()

    def item_embeddings(self) -> np.ndarray:
        return self._factors()[1].float().cpu().numpy()

    # ---- state --------------------------------------------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        P, Q = self._factors()
        return {"user": P.cpu().numpy().copy(), "item": Q.cpu().numpy().copy()}

    def set_state(self, state: dict[str, np.ndarray], n_users: int, n_items: int) -> None:
        if set(state) != {"user", "item"}:
            raise ModelError(f"saved state does not fit eals (keys {sorted(state)})",
                             fix="load a state saved by an eals run")
        P, Q = np.asarray(state["user"]), np.asarray(state["item"])
        if P.shape != (n_users, self.emb_dim) or Q.shape != (n_items, self.emb_dim):
            raise ModelError(f"saved factors {P.shape}/{Q.shape} do not fit eals with emb_dim "
                             f"{self.emb_dim} on {n_users} users × {n_items} items",
                             fix="load the state with the options and data it was trained with")
        self.device = pick_device(self.device_name)
        self.P = torch.as_tensor(P, dtype=torch.float64, device=self.device)
        self.Q = torch.as_tensor(Q, dtype=torch.float64, device=self.device)


class _Sweeps:
    """eALS's epochs as the training loop drives them (`recviz.models.base.EpochSteps`): one
    epoch is a sweep over every user, then every item, keeping the ŷ cache of the observed pairs."""

    def __init__(self, model: EALS, u: torch.Tensor, i: torch.Tensor, c: torch.Tensor):
        self.scorer, self.u, self.i, self.c = model, u, i, c
        self.pred = (model.P[u] * model.Q[i]).sum(1)  # ŷ cache over the observed pairs

    def epoch(self, stop) -> tuple[float, int]:
        m = self.scorer
        self.pred = m._sweep_users(self.u, self.i, self.c, self.pred)
        self.pred = m._sweep_items(self.u, self.i, self.c, self.pred)
        loss = m._loss(self.i, self.c, self.pred) / len(self.u)  # reads back: the epoch's work is done
        return loss, len(self.u)

    def snapshot(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.scorer.P.clone(), self.scorer.Q.clone()

    def restore(self, snapshot: tuple[torch.Tensor, torch.Tensor]) -> None:
        self.scorer.P, self.scorer.Q = snapshot
