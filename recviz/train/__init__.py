"""Training: the shared loop, early stopping, losses, Adam, device choice. Called, the package
trains a model: `recviz.train(...)` is `recviz.api.train` (see `recviz/__init__.py` for why a
package is callable)."""

from recviz import _call_through

_call_through(__name__, "train")
