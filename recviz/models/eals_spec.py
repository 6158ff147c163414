"""eALS (He, Zhang, Kan & Chua 2016, *Fast Matrix Factorization for Online Recommendation with
Implicit Feedback*): what it is and which options it takes. The solver is in `recviz.models.eals`.

An epoch is one ALS sweep (all users, then all items): no learning rate, batches or sampled
negatives. The `paper` preset is the eALS paper's c0 512, α 0.4, λ 0.01 (64 factors, as the NCF
paper compares it); the defaults, 32 factors and λ 10, are what validation chose on ml-100k
(λ 0.01 overfits after 4 sweeps; docs/experiments.md)."""

from recviz.models.spec import EMB_DIM, EPOCHS, PATIENCE, ModelSpec, adjust
from recviz.options import Option

C0 = Option("c0", "float", 512.0, "total weight of the missing entries", label="c0 (missing-data weight)",
            low=0.0, high=1e6, sweep=True, paper=512.0, formerly=("eals_c0",))
ALPHA = Option("alpha", "float", 0.4, "popularity exponent of the missing-entry weights (0 = uniform)",
               label="α (popularity exponent)", low=0.0, high=2.0, sweep=True, paper=0.4, formerly=("eals_alpha",))
L2 = Option("l2", "float", 10.0, "λ in the loss λ(‖P‖² + ‖Q‖²)", label="L2 (λ)", low=0.0, high=1e6,
            log=True, sweep=True, paper=0.01, formerly=("reg",))

EALS = ModelSpec(
    "eals", "eALS", "He et al. 2016, fast MF for implicit feedback; baseline of He et al. 2017",
    "recviz.models.eals:EALS", iterative=True, uses_device=True,
    summary="MF with squared loss over all missing entries weighted by item popularity, element-wise ALS",
    options=(*adjust((EMB_DIM,), emb_dim=32, paper={"emb_dim": 64}), C0, ALPHA, L2, *adjust((EPOCHS, PATIENCE))))
