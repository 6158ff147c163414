"""GMF, MLP and NeuMF (He et al. 2017, *Neural Collaborative Filtering*): what they are and which
options they take. The networks are in `recviz.models.ncf`.

The `paper` preset is §4.1: 64 predictive factors (GMF: emb 64; MLP: 256→128→64), 4 negatives,
Adam lr 0.001, batch 256; NeuMF pre-trained from GMF and MLP. The defaults are what validation
chose on ml-100k (leave-one-out, the interaction before test as validation), and where two settings
were within seed noise, the faster one: see docs/experiments.md. NeuMF pre-trains by default:
validation NDCG@10 +0.015 over NeuMF from scratch on every seed, worth its ~3× training time.
"""

from recviz.models.spec import DROPOUT, EMB_DIM, MLP_LAYERS, ModelSpec, Tower, adjust, training
from recviz.options import Option

PAPER = "He et al. 2017, Neural Collaborative Filtering"
NCF_PAPER = {"lr": 0.001, "batch_size": 256, "neg_ratio": 4, "l2": 0.0}  # §4.1, for every NCF model
PRETRAIN = Option("pretrain", "bool", True,
                  "initialise from a GMF and an MLP trained first with the same options (§3.4.1; α = 0.5), "
                  "then continue with SGD", label="Pre-train from GMF + MLP", paper=True)

GMF = ModelSpec(
    "gmf", "GMF", f"{PAPER}, §3.2", "recviz.models.ncf:GMF", iterative=True, uses_device=True,
    summary="p_u ⊙ q_i → learned output weights (log loss, negatives re-drawn each epoch)",
    options=(*adjust((EMB_DIM,), paper={"emb_dim": 64}),
             *training(lr=0.001, batch_size=256, l2=1e-6, paper=NCF_PAPER)))

MLP = ModelSpec(
    "mlp", "MLP", f"{PAPER}, §3.3", "recviz.models.ncf:MLP", iterative=True, uses_device=True,
    tower=Tower("mlp_layers", includes_input=True),
    summary="ReLU tower over [p_u; q_i]; the first width of mlp_layers is both embeddings",
    options=(*adjust((MLP_LAYERS, DROPOUT), paper={"mlp_layers": "256,128,64", "dropout": 0.0}),
             *training(lr=0.004, batch_size=1024, paper=NCF_PAPER)))

NEUMF = ModelSpec(
    "neumf", "NeuMF", f"{PAPER}, §3.4", "recviz.models.ncf:NeuMF", iterative=True, uses_device=True,
    tower=Tower("mlp_layers", includes_input=True),
    stages=lambda o: ("gmf", "mlp", "neumf") if o["pretrain"] else ("neumf",),
    summary="GMF and MLP bodies fused in one output layer; optionally pre-trained from both (α = 0.5), then SGD",
    options=(*adjust((EMB_DIM, MLP_LAYERS, PRETRAIN, DROPOUT),
                     paper={"emb_dim": 64, "mlp_layers": "256,128,64", "dropout": 0.0}),
             *training(lr=0.002, batch_size=1024, l2=1e-6, paper=NCF_PAPER)))
