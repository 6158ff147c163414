"""ItemKNN: what it is and which options it takes (the implementation is in `recviz.models.itemknn`)."""

from recviz.models.spec import ModelSpec
from recviz.options import Option

NEIGHBORS = Option("neighbors", "int", 100, "similar items kept per item", label="Neighbours", low=1,
                   high=100_000, sweep=True)
SHRINK = Option("shrink", "float", 0.0, "added to the similarity's denominator: damps pairs with few co-occurrences",
                label="Shrinkage", low=0.0, high=1e6, sweep=True)
SPEC = ModelSpec("itemknn", "ItemKNN", "Sarwar et al. 2001; baseline of He et al. 2017", "recviz.models.itemknn:ItemKNN",
                 options=(NEIGHBORS, SHRINK),
                 summary="item–item cosine on the binary train matrix, the most similar `neighbors` per item")
