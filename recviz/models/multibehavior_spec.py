"""Multi-behaviour NeuMF (`mbnmf`, "Neural collaborative filtering with multiple implicit
feedback"): what it is and which options it takes. The network is in `recviz.models.multibehavior`.
The target behaviour is the run's `--target` (it also picks the held-out items)."""

from recviz.models.spec import EMB_DIM, MLP_LAYERS, ModelSpec, Tower, adjust, training
from recviz.options import Option

NEG_SOURCE = Option("neg_source", "str", "uniform",
                    "target negatives: uniform over items without a target pair, or from items the user "
                    "touched only through supportive behaviours (§3.1)", label="Negatives from",
                    choices=("uniform", "supportive"), paper="supportive")

MBNMF = ModelSpec(
    "mbnmf", "Multi-behaviour NeuMF", "Multiple implicit feedback NMF, §3.1–3.4",
    "recviz.models.multibehavior:MultiBehaviorNeuMF", iterative=True, uses_device=True, needs=("behavior",),
    tower=Tower("mlp_layers", includes_input=True),
    summary="MF part + one MLP branch per behaviour, fused for a target behaviour (--target buy)",
    options=(*adjust((EMB_DIM, MLP_LAYERS), emb_dim=16, mlp_layers="32,16"), NEG_SOURCE,
             *training(lr=0.01, batch_size=256, epochs=30, patience=0, l2=1e-4)))
