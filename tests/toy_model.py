"""A model that exists only in the test suite, written exactly as the README's "Adding a model"
says: its declaration and its code in one file. `tests/conftest.py` registers it in a fixture for
the tests that take every registered model (the contract test, the CLI, the Train page)."""

from recviz.models.mf import DotNet
from recviz.models.spec import ModelSpec, training
from recviz.models.torch_base import TorchRecommender
from recviz.options import Option

TOY = ModelSpec(
    "toy", "Toy MF", "test-only", "tests.toy_model:ToyMF", iterative=True, uses_device=True,
    summary="a plain dot product trained by the shared loop",
    options=(Option("factors", "int", 16, "latent factors per user and item", low=1, high=256, sweep=True,
                    paper=8),
             *training(lr=0.01, epochs=10)))


class ToyMF(TorchRecommender):
    spec = TOY

    def build_module(self, n_users, n_items):
        return DotNet(n_users, n_items, self.opts.factors, biases=False)
