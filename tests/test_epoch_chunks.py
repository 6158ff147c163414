"""Epochs built and consumed in chunks (`recviz.training.chunks`): an epoch that fits one chunk is
exactly the whole-epoch draw and shuffle of before; a chunked one visits every positive once, keeps
blocks and streams whole, fills whole batches, is seeded, and never holds the whole epoch."""

import tracemalloc
from collections import Counter

import numpy as np
import pytest
import torch

from recviz.config import RunConfig
from recviz.data.interactions import Interactions
from recviz.data.sampling import SeenItems
from recviz.data.split import make_split
from recviz.data.training_samples import EpochDraw, pair_draw
from recviz.experiments import experiment
from recviz.models.base import GradientPhase
from recviz.training import chunks as ch
from recviz.training.loop import POLL_EVERY, GradientEpochs, _Stop
from tests.helpers import random_interactions

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MODELS = {  # model → (options, split target)
    "gmf": ({"emb_dim": 4, "batch_size": 64}, None),
    "bpr": ({"emb_dim": 4, "batch_size": 64}, None),
    "dmf": ({"tower_layers": "8,4", "batch_size": 64}, None),
    "einmf": ({"emb_dim": 4, "hidden_layers": "8,4", "batch_size": 64}, None),
    "mbnmf": ({"emb_dim": 4, "mlp_layers": "8,4", "batch_size": 64}, "buy"),
}
RATED = ("dmf", "einmf")


def epochs_of(name: str, seed: int = 0, **more) -> GradientEpochs:
    options, target = MODELS[name]
    options = {**options, **more}
    data = random_interactions(n_users=40, n_items=120, per_user=(6, 20), seed=seed, behaviors=target is not None)
    if name in RATED:  # DMF and EINMF learn from ratings
        frame = data.to_frame()
        frame["rating"] = np.random.default_rng(seed).integers(1, 6, len(frame)).astype(float)
        data = Interactions.from_frame(frame)
    split = make_split(data, "loo", n_candidates=20, target=target, cache=False)
    model = experiment.build_model(RunConfig.build(model=name, device="cpu", epochs=1, **options))
    model.begin(split)
    return GradientEpochs(model.plan(model.phases()[-1], split))


def whole_epoch_as_before(steps: GradientEpochs) -> dict[str, torch.Tensor]:
    """The epoch as the loop made it before chunks (at 8db3eed): one draw of everything, one seeded
    permutation of its blocks, every array indexed by it."""
    plan = steps.plan
    arrays = plan.draw(np.random.default_rng(plan.seed))
    n, block = len(next(iter(arrays.values()))), plan.shuffle_block
    gen = torch.Generator().manual_seed(plan.seed)
    order = (torch.randperm(n // block, generator=gen)[:, None] * block + torch.arange(block)).reshape(-1)
    return {k: torch.from_numpy(np.ascontiguousarray(v))[order] for k, v in arrays.items()}


def all_chunks(steps: GradientEpochs) -> list[dict[str, torch.Tensor]]:
    return [data for data, _ in steps.chunks()]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_an_epoch_that_fits_one_chunk_is_the_whole_epoch_of_before_bit_for_bit(name):
    steps = epochs_of(name)
    assert steps.plan.draw.samples <= ch.EPOCH_CHUNK
    got = all_chunks(steps)
    want = whole_epoch_as_before(epochs_of(name))
    assert len(got) == 1 and got[0].keys() == want.keys()
    for key in want:
        assert got[0][key].dtype == want[key].dtype and torch.equal(got[0][key], want[key]), key


def test_every_draw_gives_its_whole_epoch_when_asked_for_all_units_and_a_subset_for_some():
    for name in MODELS:
        draw = epochs_of(name).plan.draw
        assert isinstance(draw, EpochDraw)
        whole = draw(np.random.default_rng(0))
        assert len(whole["user"]) == draw.samples
        assert {k: v.tolist() for k, v in whole.items()} == \
            {k: v.tolist() for k, v in draw(np.random.default_rng(0), None).items()}
        part = draw(np.random.default_rng(0), np.array([0, 3, draw.units - 1]))
        assert all(len(v) == 3 * draw.rows_per_unit for v in part.values()), name


def positives(data: dict[str, torch.Tensor], *streams) -> Counter:
    pos = data["label"] == 1 if "label" in data else torch.ones(len(data["user"]), dtype=torch.bool)
    keys = [data["user"][pos].tolist(), data["item"][pos].tolist()] + [data[s][pos].tolist() for s in streams]
    return Counter(zip(*keys))


def concat(parts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_chunked_epoch_visits_every_positive_exactly_once_in_chunks_of_whole_batches(name):
    whole = all_chunks(epochs_of(name))[0]
    steps = epochs_of(name)
    steps.chunk_samples = 130  # this epoch is 500 (bpr) to 2,500 samples: 4 to 8 chunks
    parts = all_chunks(steps)
    size, per_unit = steps.plan.batch_size, steps.plan.draw.rows_per_unit
    assert len(parts) > 3
    assert all(len(p["user"]) % size == 0 for p in parts[:-1])  # only the epoch's last batch can be short
    assert all(len(p["user"]) <= ch.chunk_units(per_unit, size, 130) * per_unit for p in parts)
    got = concat(parts)
    streams = ("stream",) if "stream" in whole else ()
    assert len(got["user"]) == len(whole["user"]) == steps.plan.draw.samples
    assert positives(got, *streams) == positives(whole, *streams)  # the same multiset, every one once
    # still an epoch's samples: as many negatives, each of an item the user did not touch in train
    if "label" in got:
        assert int((got["label"] == 0).sum()) == int((whole["label"] == 0).sum())


def test_chunks_are_seeded_and_differ_from_the_whole_epochs_order():
    one, two = epochs_of("gmf"), epochs_of("gmf")
    one.chunk_samples = two.chunk_samples = 256
    a, b = concat(all_chunks(one)), concat(all_chunks(two))
    assert all(torch.equal(a[k], b[k]) for k in a)
    again = concat(all_chunks(one))  # the next epoch: other negatives, another order
    assert not torch.equal(a["item"], again["item"])


def test_chunked_dmf_keeps_a_positive_with_its_negatives():
    steps = epochs_of("dmf")
    steps.chunk_samples = 300
    block = steps.plan.shuffle_block
    for data in all_chunks(steps):
        users, labels = data["user"].view(-1, block), data["label"].view(-1, block)
        assert (users == users[:, :1]).all()  # one user per block
        assert (labels[:, 0] == 1).all() and (labels[:, 1:] == 0).all()


def test_chunked_negatives_are_unseen_items_of_the_user():
    steps = epochs_of("gmf")
    steps.chunk_samples = 256
    data = concat(all_chunks(steps))
    pos = data["label"] == 1
    seen = set(zip(data["user"][pos].tolist(), data["item"][pos].tolist()))
    negatives = set(zip(data["user"][~pos].tolist(), data["item"][~pos].tolist()))
    assert negatives and not negatives & seen


def test_a_chunked_epoch_trains_polls_stop_across_chunks_and_counts_every_sample():
    steps = epochs_of("gmf", batch_size=8)
    steps.chunk_samples = 128  # 15 batches of 8 a chunk, ~300 batches: polls fall inside later chunks
    polls = []
    loss, n = steps.epoch(lambda: polls.append(1) and False)
    assert n == steps.plan.draw.samples and 0 < loss < 1
    batches = -(-n // steps.plan.batch_size)
    assert len(polls) == (batches - 1) // POLL_EVERY >= 4
    with pytest.raises(_Stop):
        steps.epoch(lambda: True)


def test_an_epoch_over_millions_of_samples_never_holds_more_than_a_chunk():
    """A synthetic log of 600,000 positives and neg_ratio 4: 3M samples, ~60 MB as the int64/float32
    arrays of a whole-epoch draw (and ~2.5× that while it is drawn). In chunks of 2^16 samples the
    draw never holds more than a few chunks' worth (numpy's arrays are what tracemalloc sees; each
    chunk's tensors are checked by size)."""
    rng = np.random.default_rng(0)
    n_users, n_items, per_user = 20_000, 5_000, 30
    users = np.repeat(np.arange(n_users), per_user)
    items = rng.integers(0, n_items, len(users))
    seen = SeenItems(users, items, n_users, n_items)
    draw = pair_draw(seen, neg_ratio=4)
    assert draw.samples > 2_900_000
    module = torch.nn.Embedding(n_users + n_items, 2)
    plan = GradientPhase(None, module, torch.device("cpu"), draw, lambda batch: None, lr=0.1, batch_size=1024,
                         weight_decay=0.0, seed=0)
    steps = GradientEpochs(plan)
    chunk = steps.chunk_samples = 1 << 16
    sizes, visited = [], 0
    tracemalloc.start()
    try:
        for data, size in steps.chunks():
            sizes.append(size)
            visited += int((data["label"] == 1).sum())
            assert all(len(t) <= chunk for t in data.values())
            del data
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    whole = draw.samples * (8 + 8 + 4)
    assert sum(sizes) == draw.samples and visited == draw.units and len(sizes) >= draw.samples // chunk
    assert peak < 8 * chunk * (8 + 8 + 4) < whole / 5, f"peak {peak / 2**20:.1f} MB"


def test_chunk_units_fill_whole_batches():
    assert ch.chunk_units(5, 1024, chunk=1 << 22) * 5 % 1024 == 0
    assert ch.chunk_units(5, 1024, chunk=1 << 22) * 5 <= 1 << 22
    assert ch.chunk_units(1, 256, chunk=1000) == 768
    assert ch.chunk_units(5, 256, chunk=10) == 256  # at least one batch's worth of units
    assert [s.stop - s.start for s in ch.chunk_slices(10, 4)] == [4, 4, 2]
    order = ch.unit_order(10, torch.Generator().manual_seed(0))
    assert order.dtype == torch.int32 and sorted(order.tolist()) == list(range(10))
