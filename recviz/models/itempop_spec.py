"""ItemPop: what it is (the implementation is in `recviz.models.itempop`)."""

from recviz.models.spec import ModelSpec

SPEC = ModelSpec("itempop", "ItemPop", "baseline of He et al. 2017 (NCF) and Xue et al. 2017 (DMF)",
                 "recviz.models.itempop:ItemPop", summary="items ranked by how many distinct users have them in train")
