"""ItemKNN, sparse: the same similarities as the dense formula (ties at the k-th place to the
smaller item id), the same scores, models stored by the dense version still load, any number of
items in bounded memory, and ml-100k numbers against the dense code."""

import tracemalloc

import numpy as np
import pytest

from recviz import native
from recviz.data.interactions import Interactions
from recviz.data.load import load
from recviz.data.split import make_split
from recviz.eval.protocols import evaluate
from recviz.models import itemknn
from recviz.models.itemknn import ItemKNN, _top_k_of_rows
from tests.helpers import SHARED_DATA, needs_ml100k, random_interactions


KERNEL = "knn_pair_scores_f32"


def dense_reference(x: np.ndarray, k: int, shrink: float) -> np.ndarray:
    """The dense formula in float32, each row cut to its k largest with ties to the smaller id."""
    co = x.T @ x
    norms = np.sqrt(np.diag(co)).copy()
    sim = co / (np.outer(norms, norms) + shrink + 1e-12)
    np.fill_diagonal(sim, 0.0)
    best = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    keep = np.zeros(sim.shape, bool)
    np.put_along_axis(keep, best, True, axis=1)
    return np.where(keep, sim, 0.0).astype(np.float32)


def old_dense(x: np.ndarray, k: int, shrink: float) -> np.ndarray:
    """The similarity of the dense version (92487f6), verbatim: argpartition picks among ties."""
    co = x.T @ x
    norms = np.sqrt(np.diag(co)).copy()
    sim = co / (np.outer(norms, norms) + shrink + 1e-12)
    np.fill_diagonal(sim, 0.0)
    k = min(k, x.shape[1] - 1)
    if k < x.shape[1] - 1:
        cut = np.argpartition(-sim, k, axis=1)[:, k:]
        np.put_along_axis(sim, cut, 0.0, axis=1)
    return sim


def fitted(data, **options):
    split = make_split(data, "loo", n_candidates=5, cache=False)
    model = ItemKNN(**options)
    model.fit(split)
    return split, model


@pytest.fixture(params=["compiled", "numpy"])
def pair_path(request, monkeypatch):
    """Pairs scored by the compiled kernel (`recviz/native/itemknn.c`), or by the numpy path that
    runs where it cannot be built."""
    if request.param == "compiled" and native.kernel(KERNEL) is None:
        pytest.skip("no C compiler here")
    monkeypatch.setenv(native.DISABLE, "1" if request.param == "compiled" else "0")
    return request.param


@pytest.mark.parametrize("block", [1, itemknn.BLOCK_PAIRS])  # one item a block, or all at once
@pytest.mark.parametrize("k,shrink", [(1, 0.0), (3, 0.0), (5, 2.5), (29, 0.0), (200, 1.0)])
def test_similarity_and_scores_equal_the_dense_formula(monkeypatch, block, k, shrink, pair_path):
    """Small dense binary data: many equal similarities, so the k-th place is often a tie."""
    monkeypatch.setattr(itemknn, "BLOCK_PAIRS", block)
    split, model = fitted(random_interactions(n_users=40, n_items=30, per_user=(3, 12), seed=k), neighbors=k,
                          shrink=shrink)
    x = model.x.toarray()
    ref = dense_reference(x, k, shrink)
    assert np.array_equal(model.sim.toarray(), ref)
    assert np.array_equal(np.diff(model.sim.indptr), (ref > 0).sum(axis=1))  # no stored zeros
    # the old cut kept the same similarity values in every row; only which tied item may differ
    assert np.array_equal(np.sort(old_dense(x, k, shrink), axis=1), np.sort(ref, axis=1))
    users = np.arange(x.shape[0])
    all_scores = model.score_all(users)
    np.testing.assert_allclose(all_scores, x @ ref.T, rtol=1e-6, atol=1e-6)
    items = np.random.default_rng(0).integers(0, x.shape[1], (len(users), 9))
    assert np.array_equal(model.score(users, items), np.take_along_axis(all_scores, items, axis=1))


def test_state_is_plain_arrays_and_dense_states_of_earlier_versions_still_load():
    split, model = fitted(random_interactions(seed=5), neighbors=7)
    n_users, n_items = split.data.n_users, split.data.n_items
    users = np.arange(n_users)
    state = model.get_state()
    assert all(isinstance(a, np.ndarray) and a.dtype != object for a in state.values())
    again = ItemKNN(neighbors=7)
    again.set_state(state, n_users, n_items)
    assert np.array_equal(again.score_all(users), model.score_all(users))
    # what the dense version stored: "sim" [n_items, n_items] with its own choice among ties
    x = model.x.toarray()
    legacy = {"sim": old_dense(x, 7, 0.0), "train_user": state["train_user"], "train_item": state["train_item"]}
    old = ItemKNN(neighbors=7)
    old.set_state(legacy, n_users, n_items)
    np.testing.assert_allclose(old.score_all(users), x @ legacy["sim"].T, rtol=1e-6, atol=1e-6)
    assert np.array_equal(old.sim.toarray(), legacy["sim"])


def test_a_catalogue_of_300k_items_fits_and_evaluates_in_bounded_memory():
    """20k users × 300k items with a few hub items: a dense item × item float32 matrix would be
    360 GB and users × items 24 GB; fit and the sampled evaluation stay under 150 MB traced."""
    rng = np.random.default_rng(0)
    n_users, n_items, rows = 20_000, 300_000, 600_000
    user = rng.integers(0, n_users, rows)
    item = rng.zipf(1.5, rows) * 7919 % n_items  # long tail, hubs co-occur with almost everything
    ids = lambda n: np.arange(n).astype(str)  # noqa: E731
    data = Interactions.from_codes(user, item, ids(n_users), ids(n_items), timestamp=rng.integers(0, 10**6, rows),
                                   name="wide")
    split = make_split(data, "loo", n_candidates=100, cache=False)
    model = ItemKNN()
    tracemalloc.start()
    try:
        model.fit(split)
        result = evaluate(model, split, "test")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 150e6, f"peak {peak / 1e6:.0f} MB"
    assert (np.diff(model.sim.indptr) <= 100).all() and len(result.users) > 10_000


# ---- ItemKNN: the per-row top k -------------------------------------------------------------------
def test_top_k_of_rows_by_hand():
    # three rows of a CSR block, columns in any order; k = 2
    lens = np.array([4, 2, 5])
    values = np.array([0.5, 0.0, 0.9, 0.5,   # row 0: 0.9 (col 3), then 0.5 twice: col 1 beats col 7
                       0.3, 0.0,             # row 1: ≤ k entries: every positive one (the 0 is a diagonal)
                       0.2, 0.2, 0.2, 0.1, 0.2], np.float32)  # row 2: four ties at 0.2: cols 0 and 2
    cols = np.array([7, 5, 3, 1,
                     4, 1,
                     9, 2, 6, 1, 0])
    keep = _top_k_of_rows(values, cols, lens, 2)
    assert sorted(cols[:4][keep[:4]]) == [1, 3]
    assert cols[4:6][keep[4:6]].tolist() == [4]
    assert sorted(cols[6:][keep[6:]]) == [0, 2]


def test_top_k_of_rows_on_rows_of_very_different_lengths():
    """Rows padded by length group (1 to 5,000 entries): the same choice as a full sort by
    (value descending, column)."""
    rng = np.random.default_rng(1)
    lens = np.r_[rng.integers(0, 40, 200), [5000, 1200, 513, 512, 257]]
    values = rng.integers(0, 8, lens.sum()).astype(np.float32) / 8  # many ties and zeros
    cols = np.concatenate([rng.permutation(n) for n in lens])
    keep = _top_k_of_rows(values, cols, lens, 7)
    start = np.r_[0, np.cumsum(lens)]
    for r in range(len(lens)):
        v, c = values[start[r]:start[r + 1]], cols[start[r]:start[r + 1]]
        order = np.lexsort((c, -v))
        expected = {int(x) for x in c[order[:7]][v[order[:7]] > 0]}
        assert {int(x) for x in c[keep[start[r]:start[r + 1]]]} == expected, r


# ---- ItemKNN: scoring pairs -------------------------------------------------------------------------
def test_pair_scores_by_hand_in_blocks_of_one_user(monkeypatch, pair_path):
    """Users a{0,1,2} b{0,1} c{0,2}, item 3 unseen: |U_0|=3, |U_1|=|U_2|=2, U_0∩U_1={a,b},
    U_0∩U_2={a,c}, U_1∩U_2={a}. score(b, 2) = sim(2,0) + sim(2,1) = 2/√6 + 1/2; score(c, 1) =
    sim(1,0) + sim(1,2) = 2/√6 + 1/2; score(a, 3) = 0; score(b, 0) = sim(0,1) = 2/√6."""
    monkeypatch.setattr(itemknn, "MASK_CELLS", 1)  # one user a block: the mask is cleared between them
    monkeypatch.setattr(itemknn, "BLOCK_PAIRS", 1)
    model = ItemKNN(neighbors=5)
    model._set_train(np.array([0, 0, 0, 1, 1, 2, 2]), np.array([0, 1, 2, 0, 1, 0, 2]), 3, 4)
    model._set_sim(itemknn._top_k_cosine(model.x, 5, 0.0))
    users, items = np.array([1, 2, 0, 1]), np.array([[2, 3], [1, 3], [3, 0], [0, 2]])
    got = model.score(users, items)
    h = np.float32(2 / np.sqrt(np.float32(6))) + np.float32(0.5)
    assert got[:, 1].tolist()[:2] == [0, 0] and got[2, 0] == 0
    assert got[0, 0] == pytest.approx(h) and got[1, 0] == pytest.approx(h)
    assert got[3, 0] == pytest.approx(2 / np.sqrt(6))
    assert np.array_equal(got, np.take_along_axis(model.score_all(users), items, axis=1))


def test_compiled_pair_scores_equal_the_numpy_path_bit_for_bit(monkeypatch):
    """Long-tailed data, users with repeated items, 300 items × 60 neighbours: the same float32
    sums in the same order, so equal exactly; an id out of range is refused."""
    if native.kernel(KERNEL) is None:
        pytest.skip("no C compiler here")
    data = random_interactions(n_users=400, n_items=300, per_user=(1, 60), seed=3)
    split, model = fitted(data, neighbors=60, shrink=0.5)
    rng = np.random.default_rng(1)
    users = rng.integers(0, data.n_users, 900)  # repeats, out of order
    items = rng.integers(0, data.n_items, (900, 101))
    compiled = model.score(users, items)
    monkeypatch.setenv(native.DISABLE, "0")
    assert np.array_equal(compiled, model.score(users, items)) and compiled.any()
    monkeypatch.setenv(native.DISABLE, "1")
    for bad_users, bad_items in ((users, np.where(items == items[5, 5], data.n_items, items)),
                                 (np.r_[users[:-1], data.n_users], items), (np.r_[users[:-1], -1], items)):
        with pytest.raises(IndexError, match="outside this model"):
            model.score(bad_users, bad_items)


def test_score_all_row_by_row_without_the_transpose_equals_the_sparse_product(monkeypatch):
    """A large model scores its first PAIR_ROW_CELLS cells row by row through the pair kernel (no
    transpose built), then switches to the product with sim's transpose: the same numbers bit for
    bit either way. The budget covers every run's stored top-N lists."""
    from recviz.experiments import topn

    assert itemknn.PAIR_ROW_CELLS >= topn.TOPN_CELLS
    if native.kernel(KERNEL) is None:
        pytest.skip("no C compiler here")
    data = random_interactions(n_users=300, n_items=200, per_user=(1, 50), seed=4)
    split, model = fitted(data, neighbors=40, shrink=1.0)
    users = np.arange(data.n_users)
    expected = model.score_all(users)  # a small model: the transpose at once
    assert model._by_neighbour is not None and model._row_cells == 0
    monkeypatch.setattr(itemknn, "TRANSPOSE_FREE", 0)
    monkeypatch.setattr(itemknn, "PAIR_ROW_CELLS", 120 * data.n_items)
    model._set_sim(model.sim)
    rows = [model.score_all(users[s:s + 50]) for s in range(0, 300, 50)]
    assert model._row_cells == 100 * data.n_items and model._by_neighbour is not None  # two blocks, then the product
    assert np.array_equal(np.concatenate(rows), expected)


# ---- ItemKNN: the fit's memory ------------------------------------------------------------------------
def test_itemknn_fit_memory_is_bounded_by_its_blocks():
    """Log-normal activity (heavy users make most of the co-occurrences) over 100k items: the
    fit holds the train matrix twice, the k neighbours per item and one block's work — the traced
    peak stays within the state plus a fixed number of bytes per co-occurrence of a block, and
    shrinks with the block (41 and 45 MB measured); items² float32 would be 40 GB."""
    rng = np.random.default_rng(0)
    n_users, n_items = 5_000, 100_000
    per_user = np.minimum(np.exp(rng.normal(3.5, 1.2, n_users)).astype(np.int64) + 1, 3_000)
    user = np.repeat(np.arange(n_users), per_user)
    item = (rng.zipf(1.2, len(user)) * 7919) % n_items
    ids = lambda n: np.arange(n).astype(str)  # noqa: E731
    data = Interactions.from_codes(user, item, ids(n_users), ids(n_items), timestamp=rng.integers(0, 10**6, len(user)),
                                   name="heavy")
    split = make_split(data, "loo", n_candidates=5, cache=False)
    peaks = {}
    for block in (1 << 16, 1 << 19):
        itemknn.BLOCK_PAIRS, saved = block, itemknn.BLOCK_PAIRS
        model = ItemKNN(neighbors=50)
        tracemalloc.start()
        try:
            model.fit(split)
            _, peaks[block] = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            itemknn.BLOCK_PAIRS = saved
        state = sum(a.nbytes for a in model.get_state().values())
        work = model.x.nnz * 8 * 3 + model.sim.nnz * 24 + n_items * 32  # x, its transpose, kept parts, per item
        biggest = max(block, int((model.x.T @ np.diff(model.x.indptr)).max()))  # a block holds ≥ one item
        assert peaks[block] < state + work + 120 * biggest, f"block {block}: {peaks[block] / 1e6:.0f} MB"
    assert peaks[1 << 16] < peaks[1 << 19]


# ---- ml-100k against the dense version (92487f6) ------------------------------------------------
# Test HR@10 / NDCG@10 of the dense code, measured before the change (loo: on the candidates that
# the current sampler draws). With neighbors=20, shrink=10 no tie at the 20th place moves a number.
# With the defaults (100, 0) 512 of 1682 items have a tie at the 100th place, which argpartition
# settled its own way: the dense similarities loaded as a stored model give its numbers, the sparse
# fit (ties to the smaller id) moves one ratio user's hit and the loo NDCG@10 by 9e-5.
DENSE = {("ratio", 20, 10.0): (0.770563, 0.259569), ("loo", 20, 10.0): (0.621421, 0.352351),
         ("ratio", 100, 0.0): (0.764069, 0.275237), ("loo", 100, 0.0): (0.593849, 0.340273)}
SPARSE = {("ratio", 100, 0.0): (0.762987, 0.275116), ("loo", 100, 0.0): (0.593849, 0.340365)}


@pytest.mark.slow
@pytest.mark.realdata
@needs_ml100k
@pytest.mark.parametrize("protocol", ["ratio", "loo"])
def test_ml100k_matches_the_dense_version(protocol):
    split = make_split(load(str(SHARED_DATA / "ml-100k")), protocol, n_candidates=100, cache=False)
    for k, shrink in ((20, 10.0), (100, 0.0)):
        model = ItemKNN(neighbors=k, shrink=shrink)
        model.fit(split)
        m = evaluate(model, split, "test").metrics
        got = (m["HR@10"], m["NDCG@10"])
        assert got == pytest.approx(SPARSE.get((protocol, k, shrink), DENSE[protocol, k, shrink]), abs=5e-5)
        x = model.x.toarray()
        dense = old_dense(x, k, shrink)
        assert np.array_equal(np.sort(dense, axis=1), np.sort(model.sim.toarray(), axis=1))
        state = model.get_state()
        stored = ItemKNN(neighbors=k, shrink=shrink)  # a model the dense version saved
        stored.set_state({"sim": dense, "train_user": state["train_user"], "train_item": state["train_item"]},
                         split.data.n_users, split.data.n_items)
        m = evaluate(stored, split, "test").metrics
        assert (m["HR@10"], m["NDCG@10"]) == pytest.approx(DENSE[protocol, k, shrink], abs=5e-5)
