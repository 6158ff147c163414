"""Matrix-factorisation baselines trained by the shared loop: biased MF with log loss (`mf`) and
BPR-MF (`bpr`). The networks are in `recviz.models.mf`. Their `paper` preset is the NCF paper's
setting for its baselines (§4.1: 64 factors, Adam lr 0.001, batch 256)."""

from recviz.models.ncf_spec import NCF_PAPER
from recviz.models.spec import EMB_DIM, ModelSpec, adjust, training

MF = ModelSpec(
    "mf", "MF (biased, log loss)", "Rendle et al. 2020, Neural Collaborative Filtering vs. Matrix Factorization Revisited",
    "recviz.models.mf:MF", iterative=True, uses_device=True,
    summary="biased dot product with log loss — the tuned-MF yardstick",
    options=(*adjust((EMB_DIM,), paper={"emb_dim": 64}),
             *training(lr=0.001, batch_size=256, l2=1e-6, paper=NCF_PAPER)))

BPR = ModelSpec(
    "bpr", "BPR-MF", "Rendle et al. 2009, BPR; baseline of He et al. 2017", "recviz.models.mf:BPRMF",
    iterative=True, uses_device=True,
    summary="dot product, pairwise BPR loss with one sampled negative per positive",
    options=(*adjust((EMB_DIM,), paper={"emb_dim": 64}),
             *training(pairwise=True, lr=0.001, batch_size=256, epochs=50, l2=1e-6,
                       paper={k: v for k, v in NCF_PAPER.items() if k != "neg_ratio"})))
