"""The two objectives of implicit-feedback learning, both on raw scores (logits).

Models output logits and never apply the sigmoid themselves: σ is folded into the loss, where
log-sum-exp tricks keep it stable (log σ(x) for x = −40 is −40, not log 0 = −inf). Ranking only
needs the order of scores, and σ is monotone, so logits rank exactly like probabilities — without
the float32 saturation that turns large logits into ties at 1.0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def log_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """NCF's pointwise log loss (He et al. 2017, eq. 7), averaged over the batch:
    −[y·log σ(x) + (1−y)·log(1−σ(x))]. Labels may be fractional (DMF's normalised ratings)."""
    return F.binary_cross_entropy_with_logits(logits, labels)


def bpr_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """BPR's pairwise loss (Rendle et al. 2009), averaged over pairs: −log σ(x_ui − x_uj).
    softplus(z) = log(1 + e^z), and −log σ(d) = softplus(−d), so this is softplus(neg − pos)."""
    return F.softplus(neg - pos).mean()
