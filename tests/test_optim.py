"""recviz's Adam is torch's fused Adam without the per-step Python around it: same weights, bit for bit."""

import pytest
import torch
from torch import nn

from recviz.training.optim import Adam, has_fused_adam, make_optimizer

pytestmark = pytest.mark.skipif(not has_fused_adam(torch.device("cpu")),
                                reason="this torch has no fused Adam kernel (recviz then uses torch's Adam)")


class Tiny(nn.Module):
    """Embeddings + a layer, and a branch that only some steps use (its weights get no gradient)."""

    def __init__(self):
        super().__init__()
        self.user, self.item = nn.Embedding(7, 4), nn.Embedding(9, 4)
        self.layer, self.branch = nn.Linear(8, 1), nn.Linear(4, 1)

    def forward(self, u, i, use_branch):
        x = self.layer(torch.cat([self.user(u), self.item(i)], -1)).squeeze(-1)
        return x + self.branch(self.user(u)).squeeze(-1) if use_branch else x


def train_steps(make_opt, steps=25):
    torch.manual_seed(0)
    model = Tiny()
    opt = make_opt(model.parameters())
    gen = torch.Generator().manual_seed(1)
    for step in range(steps):
        u, i = torch.randint(0, 7, (16,), generator=gen), torch.randint(0, 9, (16,), generator=gen)
        y = torch.rand(16, generator=gen)
        loss = nn.functional.binary_cross_entropy_with_logits(model(u, i, use_branch=step % 3 == 0), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.state_dict()


@pytest.mark.parametrize("weight_decay", [0.0, 1e-3])
def test_adam_gives_torchs_fused_adam_weights_bit_for_bit(weight_decay):
    ours = train_steps(lambda p: Adam(p, lr=0.01, weight_decay=weight_decay))
    torchs = train_steps(lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=weight_decay, fused=True))
    assert ours.keys() == torchs.keys()
    for name in ours:
        assert torch.equal(ours[name], torchs[name]), name
    # and it did train: the branch moved too, on the steps that used it
    torch.manual_seed(0)
    assert not torch.equal(ours["branch.weight"], Tiny().branch.weight.detach())


def test_a_weight_without_gradient_is_left_alone():
    w, v = nn.Parameter(torch.ones(3)), nn.Parameter(torch.ones(3))
    opt = Adam([w, v], lr=0.1)
    (w * 2).sum().backward()  # v takes no part
    opt.step()
    assert not torch.equal(w.detach(), torch.ones(3)) and torch.equal(v.detach(), torch.ones(3))
    assert opt.steps[0].item() == 1 and opt.steps[1].item() == 0


def test_make_optimizer_picks_by_name_and_device():
    p = [nn.Parameter(torch.zeros(2))]
    assert isinstance(make_optimizer(p, "adam", 0.1, 0.0, torch.device("cpu")), Adam)
    assert isinstance(make_optimizer(p, "sgd", 0.1, 0.0, torch.device("cpu")), torch.optim.SGD)
    # a device without the fused kernel gets torch's own Adam
    assert isinstance(make_optimizer(p, "adam", 0.1, 0.0, torch.device("meta")), torch.optim.Adam)
    # so do weights of two dtypes, which one fused call cannot take
    mixed = p + [nn.Parameter(torch.zeros(2, dtype=torch.float64))]
    assert type(make_optimizer(mixed, "adam", 0.1, 0.0, torch.device("cpu"))) is torch.optim.Adam
