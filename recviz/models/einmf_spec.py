"""EINMF (neural matrix factorisation integrating explicit and implicit feedback): what it is and
which options it takes. The network is in `recviz.models.einmf`.

The `paper` preset is §4.3: η 0.6, dropout ("discard rate") 0.2, Adam lr 0.0001, batch 1024."""

from recviz.models.spec import DROPOUT, EMB_DIM, ModelSpec, Tower, adjust, training
from recviz.options import Option

HIDDEN_LAYERS = Option("hidden_layers", "widths", "128,64",
                       "widths of the MLP branch's hidden layers after its 2·emb_dim input",
                       label="MLP hidden layers", sweep=True, formerly=("layers",))
ETA = Option("eta", "float", 0.6, "weight of the implicit loss: L = η·L_implicit + (1−η)·L_explicit",
             label="η (implicit loss weight)", low=0.0, high=1.0, sweep=True, paper=0.6)

EINMF = ModelSpec(
    "einmf", "EINMF", "EINMF (Comput. Intell. Neurosci.), §3.2–3.3", "recviz.models.einmf:EINMF",
    iterative=True, uses_device=True, needs=("rating",), tower=Tower("hidden_layers", includes_input=False),
    summary="explicit embeddings from rating rows + implicit id embeddings, added; GMF + MLP branches; "
            "loss η·L_implicit + (1−η)·L_explicit",
    options=(*adjust((EMB_DIM,), paper={"emb_dim": 64}), HIDDEN_LAYERS, ETA,
             *adjust((DROPOUT,), dropout=0.2, paper={"dropout": 0.2}),
             *training(lr=0.002, batch_size=1024, l2=1e-6, paper={"lr": 0.0001, "batch_size": 1024})))
