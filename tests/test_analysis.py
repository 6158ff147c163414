"""recviz.analysis apart from comparing runs (tests/test_analysis_results.py): dataset summaries,
a user's history, top-N lists, training progress, embedding maps and cost estimates — tiny
hand-made cases whose answers are worked out in the comments."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from recviz.analysis import dataset, embeddings, estimate, history, progress, toplists
from recviz.data.split import make_split
from recviz.training.report import EpochReport
from tests.helpers import frame


# ---- dataset ----------------------------------------------------------------------------------------
def rated():
    return frame([("a", "x", 5, 30), ("a", "y", 3, 10), ("a", "z", 5, 20), ("b", "x", 4, 5)],
                 columns=("user", "item", "rating", "timestamp"))


def test_rating_histogram_and_implicit_data():
    h = dataset.rating_histogram(rated())
    assert h.to_dict("list") == {"rating": [3.0, 4.0, 5.0], "count": [1, 1, 2]}
    assert dataset.rating_histogram(frame([("a", "x", 1)])) is None


def test_activity_is_descending_with_ranks():
    users = dataset.activity(rated(), by="user")  # a: 3, b: 1
    assert users.to_dict("list") == {"rank": [1, 2], "interactions": [3, 1]}
    items = dataset.activity(rated(), by="item")  # x: 2, y: 1, z: 1
    assert items["interactions"].tolist() == [2, 1, 1]
    with pytest.raises(ValueError):
        dataset.activity(rated(), by="genre")


def test_behavior_mix_and_summary():
    data = frame([("a", "x", "click"), ("a", "x", "buy"), ("b", "y", "click"), ("b", "z", "click")],
                 columns=("user", "item", "behavior"))
    mix = dataset.behavior_mix(data)
    assert dict(zip(mix["behavior"], mix["count"])) == {"buy": 1, "click": 3}
    assert mix["share"].sum() == pytest.approx(1.0)
    assert dataset.behavior_mix(rated()) is None
    table = dict(dataset.summary_table(rated()).itertuples(index=False))
    assert table["users"] == "2" and table["interactions"] == "4"
    assert table["density"] == "66.7%"  # 4 distinct pairs of 2 × 3
    assert table["median interactions per user"] == "2"  # median of (3, 1)
    assert table["time span"].startswith("1970-01-01 → 1970-01-01")


def test_user_history_parts_with_a_split():
    # user a: items in file order p(t=40) q(t=10) r(t=30) s(t=20) → time order q s r p
    # leave-one-out: test = latest (p), valid = the one before (r), train = q, s
    data = frame([("a", "p", 40), ("a", "q", 10), ("a", "r", 30), ("a", "s", 20),
                  ("b", "p", 1), ("b", "q", 2), ("b", "r", 3)])
    split = make_split(data, "loo", n_candidates=0, cache=False)
    h = history.user_history(data, 0, split)
    assert h["item"].tolist() == ["q", "s", "r", "p"]
    assert h["part"].tolist() == ["train", "train", "valid", "test"]
    assert h["title"].tolist() == ["item q", "item s", "item r", "item p"]
    assert list(h.columns) == ["item", "title", "genres", "date", "part"]
    assert h["date"].is_monotonic_increasing
    assert "part" not in history.user_history(data, 0).columns
    with pytest.raises(ValueError):
        history.user_history(data, 7)


def test_user_history_marks_rows_in_no_part_unused():
    # a's click on p (t=1) precedes the buy that is held out: holding out the pair removes both rows
    data = frame([("a", "p", 1), ("a", "q", 2), ("a", "r", 3), ("a", "p", 9)])
    split = make_split(data, "loo", n_candidates=0, cache=False)
    assert history.user_history(data, 0, split)["part"].tolist() == ["unused", "train", "valid", "test"]


# ---- top-N lists ------------------------------------------------------------------------------------
TOP_A = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
TOP_B = np.array([[3, 2, 1], [4, 10, 11], [12, 13, 14]])


def test_overlap_is_jaccard_of_top_k_sets():
    # same set → 1; one shared of 5 distinct → 1/5; disjoint → 0
    assert toplists.overlap(TOP_A, TOP_B, k=3) == pytest.approx([1.0, 0.2, 0.0])
    # k=2: {1,2} vs {3,2} share 1 of 3; {4,5} vs {4,10} share 1 of 3
    assert toplists.overlap(TOP_A, TOP_B, k=2) == pytest.approx([1 / 3, 1 / 3, 0.0])


def test_overlap_ignores_padding():
    a = np.array([[1, -1, -1], [-1, -1, -1]])
    b = np.array([[1, 2, -1], [-1, -1, -1]])
    assert toplists.overlap(a, b, k=3) == pytest.approx([0.5, 1.0])  # {1} vs {1,2}; both empty


def test_disagreement_users_lowest_overlap_first_ties_by_id():
    a = np.array([[1, 2], [1, 2], [1, 2], [1, 2]])
    b = np.array([[1, 9], [8, 9], [1, 2], [7, 6]])  # overlaps 1/3, 0, 1, 0
    assert toplists.disagreement_users(a, b, k=2, n=3).tolist() == [1, 3, 0]


def test_rank_of():
    top = np.array([[5, 3, 9], [1, 2, 3]])
    assert toplists.rank_of(top, 0, 9) == 3
    assert toplists.rank_of(top, 1, 1) == 1
    assert toplists.rank_of(top, 0, 7) is None


def test_side_by_side_shows_raw_ids_titles_scores_ranks_and_the_held_out_item():
    raw = [str(100 + 7 * i) for i in range(15)]  # raw ids differ from the internal indices
    titles = [f"t{i}" for i in range(15)]
    scores_a = -np.arange(TOP_A.size, dtype=np.float32).reshape(TOP_A.shape)
    scores_b = -np.arange(TOP_B.size, dtype=np.float32).reshape(TOP_B.shape) / 2
    df = toplists.side_by_side(TOP_A, scores_a, TOP_B, scores_b, 1, raw, titles, held_out=[10],
                              names=("#1 gmf", "#2 mlp"), k=3)
    assert df["rank"].tolist() == [1, 2, 3]
    assert df["#1 gmf item"].tolist() == [raw[i] for i in TOP_A[1, :3]]
    assert df["#1 gmf title"].tolist() == ["t4", "t5", "t6"] and df["#2 mlp item"].tolist() == ["128", "170", "177"]
    assert df["#1 gmf score"].tolist() == scores_a[1, :3].tolist()
    assert df["#2 mlp score"].tolist() == scores_b[1, :3].tolist()
    # where each item sits in the other list (the whole stored list)
    assert df["rank in #2 mlp"].tolist()[0] == str(toplists.rank_of(TOP_B, 1, TOP_A[1, 0]))
    assert df["rank in #1 gmf"].tolist() == ["1", "", ""]  # 4 is first in A; 10 and 11 are not there
    assert df["#2 mlp item held out"].tolist() == [False, True, False]
    assert not any("a_" in c or "b_in" in c for c in df.columns)


# ---- training progress ------------------------------------------------------------------------------
def _epochs(rows):
    return pd.DataFrame(rows, columns=["epoch", "phase", "train_loss", "seconds", "valid"])


def test_curves_long_two_runs_and_an_empty_one():
    a = _epochs([(1, "gmf", 0.7, 1.0, {"HR@10": 0.4, "NDCG@10": 0.2}),
                 (2, "neumf", 0.5, 1.0, {"HR@10": 0.5, "NDCG@10": 0.3})])
    b = _epochs([(1, "mlp", 0.9, 2.0, {})])  # no validation users
    c = _epochs([])  # queued: nothing yet
    long = progress.curves_long({"#1": a, "#2": b, "#3": c})
    assert list(long.columns) == progress.CURVE_COLUMNS
    assert len(long) == 2 * 2 + 1
    nd = long[(long["run"] == "#1") & (long["metric"] == "NDCG@10")]
    assert nd["epoch"].tolist() == [1, 2] and nd["value"].tolist() == [0.2, 0.3]
    assert nd["phase"].tolist() == ["gmf", "neumf"]
    only_loss = long[long["run"] == "#2"]
    assert only_loss["train_loss"].tolist() == [0.9] and only_loss["value"].isna().all()
    assert progress.curves_long({"#3": c}).empty


def test_seconds_left():
    assert progress.seconds_left(3, 20, [10, 2, 2, 2]) == pytest.approx(34)
    assert progress.seconds_left(3, 20, [10, 2, 2, 2, 3, 3, 3], recent=3) == pytest.approx(51)
    assert progress.seconds_left(0, 20, []) is None
    assert progress.seconds_left(20, 20, [1.0]) == 0.0


def test_progress_of_one_phase():
    plan = progress.RunProgress.of("gmf", {"epochs": 20})
    assert plan.total == 20
    assert plan.text(["gmf"] * 3, [10, 2, 2]) == "epoch 3/20 · ~34 s left"
    assert plan.text(["gmf"] * 3, [300, 300, 300]) == "epoch 3/20 · ~85 min left"
    assert plan.text([], []) == "epoch 0/20"


def test_progress_names_each_phase_and_counts_them_all():
    plan = progress.RunProgress.of("neumf", {"epochs": 20, "pretrain": True})
    assert [p.name for p in plan.phases] == ["gmf", "mlp", "neumf"] and plan.total == 60
    assert plan.at(["gmf"] * 17).fraction == pytest.approx(17 / 60)
    assert plan.text(["gmf"] * 17, [1.0] * 17) == "epoch 17/20 of gmf (phase 1 of 3) · ~43 s left"
    # GMF stopped early after 8 epochs: its phase counts as done once MLP starts
    pos = plan.at(["gmf"] * 8 + ["mlp"] * 2)
    assert (pos.phase, pos.phase_number, pos.in_phase, pos.done) == ("mlp", 2, 2, 22)
    assert plan.at(["gmf"] * 20 + ["mlp"] * 20 + ["neumf"] * 20).fraction == 1.0
    assert progress.RunProgress.of("neumf", {"epochs": 5, "pretrain": False}).epoch_text(["neumf"]) == "epoch 1/5"
    assert progress.RunProgress.of("itempop", {}).total == 1  # fitted in one pass: nothing to count


def test_epoch_lines_follow_the_phases():
    log = progress.EpochLog("neumf", {"epochs": 2, "pretrain": True})
    report = EpochReport(1, "gmf", 0.5, {"HR@10": 0.5, "NDCG@10": 0.25}, seconds=1.0, eval_seconds=0.5,
                         samples=10, samples_per_second=10.0, best_epoch_so_far=1)
    assert log.add(report) == "epoch 1/2 of gmf (phase 1 of 3)  loss 0.5000  HR@10 0.5000  NDCG@10 0.2500  1.5 s"
    line = log.add(dataclasses.replace(report, epoch=2, phase="mlp", valid={}))
    assert line.startswith("epoch 1/2 of mlp (phase 2 of 3)  loss 0.5000  1.5 s")
    assert log.position.done == 3 and log.position.total == 6


# ---- embeddings -------------------------------------------------------------------------------------
def test_pca_on_a_line():
    t = np.array([0.0, 1.0, 2.0, 10.0])
    x = np.outer(t, [1.0, 2.0, 3.0]) + 5.0
    coords = embeddings.pca_2d(x)
    assert coords.shape == (4, 2)
    assert np.abs(coords[:, 1]).max() < 1e-9
    # centred t is (-3.25, -2.25, -1.25, 6.75); the largest |value| is made positive
    assert coords[:, 0] == pytest.approx((t - 3.25) * np.sqrt(14))
    assert embeddings.pca_2d(-x) == pytest.approx(coords)  # mirrored input, same map
    assert embeddings.explained_variance(x) == pytest.approx((1.0, 0.0))


def test_pca_degenerate_inputs():
    assert embeddings.pca_2d(np.zeros((0, 4))).shape == (0, 2)
    one_dim = embeddings.pca_2d(np.array([[1.0], [4.0], [2.0]]))  # centred: -4/3, 5/3, -1/3
    assert one_dim == pytest.approx(np.array([[-4 / 3, 0], [5 / 3, 0], [-1 / 3, 0]]))
    assert embeddings.explained_variance(np.ones((3, 2))) == (0.0, 0.0)


def test_embedding_map_roles():
    coords = np.arange(12, dtype=float).reshape(6, 2)
    df = embeddings.embedding_map(coords, [f"t{i}" for i in range(6)], history_items=[0, 1],
                                  recommended_items=[2, 3], held_out_items=[3])
    roles = dict(zip(df["item"], df["role"]))
    assert roles == {0: "history", 1: "history", 2: "recommended", 3: "held-out", 4: "other", 5: "other"}
    assert df["role"].iloc[0] == "other"  # drawn first, beneath the highlights
    assert df.set_index("item").loc[3, ["x", "y", "title"]].tolist() == [6.0, 7.0, "t3"]


# ---- estimate ---------------------------------------------------------------------------------------
def test_full_ranking_cost_mlp_by_hand():
    # 2 users × 3 items = 6 pairs; tower 8 (=2·4) → 8 → 2 → 1: 2·(64 + 16 + 2) = 164 FLOPs a pair
    c = estimate.full_ranking_cost(2, 3, emb_dim=4, layers=[8, 2], scored_by_mlp=True, flops_per_second=1e3)
    assert c["widths"] == [8, 8, 2, 1]
    assert c["flops"] == 6 * 164 and c["seconds"] == pytest.approx(0.984)
    assert c["score_matrix_bytes"] == 6 * 4
    assert c["peak_activation_bytes"] == 2 * 3 * (8 + 8 + 2 + 1) * 4  # one batch of all users
    one = estimate.full_ranking_cost(2, 3, emb_dim=4, layers=[8, 2], scored_by_mlp=True, batch_users=1)
    assert one["peak_activation_bytes"] == 1 * 3 * 19 * 4
    ncf = estimate.full_ranking_cost(2, 3, emb_dim=4, layers="8,2", scored_by_mlp=True, layers_include_input=True)
    assert ncf["widths"] == [8, 2, 1] and ncf["flops"] == 6 * 2 * (16 + 2)


def test_full_ranking_cost_dot_product_by_hand():
    c = estimate.full_ranking_cost(2, 3, emb_dim=4, layers=[], scored_by_mlp=False)
    assert c["flops"] == 2 * 3 * 4 * 2
    assert c["peak_activation_bytes"] == (2 * 4 + 3 * 4 + 2 * 3) * 4  # users, items, scores


def test_human_summary():
    assert estimate.human({"peak_activation_bytes": 1.2e9, "seconds": 40}) == "≈ 1.2 GB peak, ≈ 40 s on this CPU"
    assert estimate.human({"peak_activation_bytes": 2.5e7, "seconds": 0.2}) == "≈ 25 MB peak, < 1 s on this CPU"
    assert estimate.format_bytes(512) == "512 B"
    assert estimate.format_duration(3 * 3600) == "3.0 h"


def test_evaluation_cost_only_for_mlp_scored_models():
    from recviz.analysis.estimate import evaluation_cost

    assert evaluation_cost("gmf", {"emb_dim": 8}, 100, 50) is None
    cost = evaluation_cost("neumf", {"emb_dim": 64, "mlp_layers": "256,128,64"}, 6040, 3706)
    assert cost["batch_users"] == (1 << 23) // 3706
    # 6040·3706 pairs × 2·(256·128 + 128·64 + 64·1) FLOPs
    assert cost["flops"] == pytest.approx(6040 * 3706 * 2 * (256 * 128 + 128 * 64 + 64), rel=1e-6)


def test_the_live_panel_follows_the_training_run_unless_asked():
    from types import SimpleNamespace as R

    runs = [R(id=5, status="queued"), R(id=4, status="queued"), R(id=3, status="running"), R(id=2, status="done")]
    assert progress.run_to_watch(runs, requested=None, submitted=5) == 3  # not the newest submission
    assert progress.run_to_watch(runs, requested=2, submitted=5) == 2  # the picker or ?run=2
    assert progress.run_to_watch(runs, requested=99, submitted=5) == 3  # a run that is gone
    idle = [R(id=5, status="done"), R(id=4, status="cancelled")]
    assert progress.run_to_watch(idle, submitted=4) == 4 and progress.run_to_watch(idle) == 5
    assert progress.run_to_watch([]) is None
    ray_sweep = [R(id=9, status="running", waiting=True), R(id=8, status="running", waiting=False)]
    assert progress.run_to_watch(ray_sweep) == 8  # the one training, not the newest one held
    assert [progress.parse_run_param(v) for v in ("12", " 7 ", "abc", "-3", "0", None, "1" * 40)] == \
        [12, 7, None, None, None, None, None]
