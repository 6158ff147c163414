"""DMF (Xue et al. 2017, *Deep Matrix Factorization Models for Recommender Systems*): what it is and
which options it takes. The network is in `recviz.models.dmf`.

The `paper` preset is §4: DMF-2 (towers 256→64), normalised cross entropy, 7 negatives, Adam lr
0.0001, batch 256. The default is the one-layer DMF-1, which validation preferred on ml-100k
(docs/experiments.md)."""

from recviz.models.spec import ModelSpec, training
from recviz.options import Option

TOWER_LAYERS = Option("tower_layers", "widths", "64",
                      "output widths of each tower: the first is a linear projection of the rating row, "
                      "each further one a Linear + ReLU (one width = DMF-1, two = DMF-2)",
                      label="Tower layers", sweep=True, paper="256,64", formerly=("layers",))
LOSS = Option("loss", "str", "nce", "nce: targets rating / max rating (the paper's best); ce: binary targets",
              label="Loss", choices=("nce", "ce"), paper="nce", formerly=("dmf_loss",))

DMF = ModelSpec(
    "dmf", "DMF", "Xue et al. 2017, Deep Matrix Factorization, §3", "recviz.models.dmf:DMF",
    iterative=True, uses_device=True, needs=("rating",),
    summary="two towers over the user's train-rating row and the item's column, cosine, (normalised) cross entropy",
    options=(TOWER_LAYERS, LOSS,
             *training(neg_ratio=7, lr=0.0005, batch_size=256, epochs=30, patience=5,
                       paper={"neg_ratio": 7, "lr": 0.0001, "batch_size": 256})))
