"""Understanding, not just scores: per-user results stored with every run, paired comparison of
two runs (known answers for every statistic), beyond-accuracy metrics (known answers on hand-made
lists), slices by user activity and held-out item popularity. Runs stored by earlier versions say
"not available". Where they are shown (CLI, API, Results page): tests/test_understanding_views.py."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from recviz.analysis import exposure, paired, peruser, slices
from recviz.config import RunConfig
from recviz.errors import RecvizError
from recviz.eval import beyond, significance
from recviz.experiments import artifacts, record
from recviz.experiments.store import RunStore
from tests.helpers import SHARED_DATA

TINY = "synthetic:users=120,items=300,interactions=2500"
LEGACY = Path(__file__).parent / "fixtures" / "store-7c9db7b"


# ---- beyond accuracy: known answers ------------------------------------------------------------------
POP = np.array([10, 4, 2, 0, 1])  # train popularity of 5 items
TOP = np.array([[0, 1], [1, 2]])  # two users' top-2


def test_coverage_counts_distinct_items_over_the_catalogue_and_skips_padding():
    assert beyond.coverage(TOP, 5, k=2) == pytest.approx(3 / 5)
    assert beyond.coverage(TOP, 5, k=1) == pytest.approx(2 / 5)
    assert beyond.coverage(np.array([[3, -1], [-1, -1]]), 5, k=2) == pytest.approx(1 / 5)


def test_average_popularity_and_its_ratio_to_the_users_history():
    arp = beyond.recommended_popularity(TOP, POP, k=2)
    assert arp.tolist() == [7.0, 3.0]  # (10+4)/2, (4+2)/2
    out = beyond.beyond_accuracy(TOP, 2, 5, POP, history_popularity=np.array([5.0, 2.0]), n_train_users=16)
    assert out["ARP@2"] == pytest.approx(5.0)
    assert out["Popularity lift@2"] == pytest.approx(5.0 / 3.5)
    padded = beyond.recommended_popularity(np.array([[0, -1], [-1, -1]]), POP, k=2)
    assert padded[0] == 10.0 and np.isnan(padded[1])  # an empty list has no mean, and is not a 0


def test_gini_of_exposure():
    assert beyond.gini(np.array([3, 3, 3])) == pytest.approx(0.0)
    assert beyond.gini(np.array([0, 0, 0, 4])) == pytest.approx(0.75)  # all on one item of 4: (n-1)/n
    assert beyond.gini(np.array([1, 2, 3])) == pytest.approx(4 / 18)  # (-2·1 + 0·2 + 2·3) / (3·6)
    assert beyond.exposure(TOP, 5, k=2).tolist() == [1, 2, 1, 0, 0]
    assert beyond.beyond_accuracy(TOP, 2, 5)["Gini@2"] == pytest.approx(beyond.gini(np.array([0, 0, 1, 1, 2])))


def test_novelty_is_mean_self_information_and_an_unseen_item_counts_as_one_user():
    n = beyond.novelty(TOP, POP, n_train_users=16, k=2)
    assert n[0] == pytest.approx((-math.log2(10 / 16) + 2) / 2)
    assert n[1] == pytest.approx((2 + 3) / 2)
    assert beyond.novelty(np.array([[3]]), POP, 16, k=1)[0] == pytest.approx(4.0)  # popularity 0 → 1/16


def test_the_long_tail_is_outside_the_top_fifth_by_popularity_and_ties_join_the_head():
    assert beyond.HEAD_SHARE == 0.2
    assert beyond.long_tail(POP).tolist() == [False, True, True, True, True]
    assert beyond.long_tail(np.array([5, 5, 1, 1, 1])).tolist() == [False, False, True, True, True]
    assert beyond.long_tail_share(TOP, beyond.long_tail(POP), k=2).tolist() == [0.5, 1.0]


def test_popularity_and_activity_count_distinct_pairs_from_train():
    users, items = np.array([0, 0, 1, 1, 2, 2]), np.array([0, 0, 0, 1, 1, 2])
    pop = beyond.item_popularity(users, items, n_items=4)
    assert pop.tolist() == [2, 2, 1, 0]  # user 0's two rows of item 0 count once
    activity, history = beyond.user_profile(users, items, n_users=4, n_items=4, popularity=pop)
    assert activity.tolist() == [1, 2, 2, 0]
    assert history[:3].tolist() == [2.0, 2.0, 1.5] and np.isnan(history[3])


def test_without_train_popularity_the_metrics_that_need_it_are_none_not_numbers():
    out = beyond.beyond_accuracy(TOP, 2, 5)
    assert out["Coverage@2"] == pytest.approx(0.6)
    assert all(out[beyond.name(m, 2)] is None for m in ("ARP@K", "Popularity lift@K", "Novelty@K", "Long tail@K"))


# ---- paired statistics: known answers ----------------------------------------------------------------
def test_paired_t_test_against_the_closed_form_with_two_degrees_of_freedom():
    t, p = significance.paired_t(np.array([1.0, 2.0, 3.0]))
    assert t == pytest.approx(2 * math.sqrt(3))  # mean 2, sd 1, n 3
    assert p == pytest.approx(1 - t / math.sqrt(2 + t * t))  # df = 2: P(|T| > t) = 1 − t/√(2+t²)
    assert significance.paired_t(np.array([0.5, 0.5])) == (math.inf, 0.0)
    assert significance.paired_t(np.zeros(4)) == (0.0, 1.0)


def test_wilcoxon_exact_on_tiny_cases_and_zero_differences_are_dropped():
    plus, minus, p = significance.wilcoxon(np.array([1.0, 2.0, 3.0]))
    assert (plus, minus) == (6, 0) and p == pytest.approx(2 / 8)  # all 2^3 sign patterns, two-sided
    plus, minus, p = significance.wilcoxon(np.array([0.0, 1.0, -2.0, 3.0, 4.0]))
    # ranks 1..4, R− = 2: P(T ≤ 2) = |{∅, {1}, {2}}| / 16, doubled
    assert (plus, minus) == (8, 2) and p == pytest.approx(6 / 16)
    assert significance.wilcoxon(np.zeros(5)) == (0.0, 0.0, 1.0)


def test_wilcoxon_normal_approximation_beyond_fifty_users():
    d = np.arange(1, 61, dtype=float)  # 60 positive differences, no ties
    n = 60
    z = (0 - n * (n + 1) / 4) / math.sqrt(n * (n + 1) * (2 * n + 1) / 24)
    assert significance.wilcoxon(d)[2] == pytest.approx(math.erfc(abs(z) / math.sqrt(2)), rel=1e-6)


def test_bootstrap_interval_is_seeded_and_right_on_known_cases():
    assert significance.bootstrap_ci(np.full(7, 0.25)) == pytest.approx((0.25, 0.25))
    # two users, differences 0 and 1: resampled means 0, ½, 1 with chances ¼, ½, ¼
    assert significance.bootstrap_ci(np.array([0.0, 1.0]), resamples=4000) == (0.0, 1.0)
    d = np.random.default_rng(1).normal(0.1, 1, 300)
    once = significance.bootstrap_ci(d, seed=3)
    assert once == significance.bootstrap_ci(d, seed=3) != significance.bootstrap_ci(d, seed=4)
    low, high = once
    se = d.std(ddof=1) / math.sqrt(len(d))
    assert low < d.mean() < high and (high - low) == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_a_paired_test_counts_wins_and_ties_and_says_who_is_better():
    t = significance.paired_test(np.array([1.0, 0.0, 0.5, 0.2]), np.array([0.0, 0.0, 1.0, 0.2]))
    assert (t.wins_a, t.wins_b, t.ties, t.n) == (1, 1, 2, 4)
    assert t.mean_diff == pytest.approx(0.125) and t.better is None
    strong = significance.paired_test(np.ones(60), np.zeros(60))
    assert strong.better == "a" and strong.wilcoxon_p < 1e-10
    words = significance.verdict(strong, "#1 neumf", "#2 itempop", "NDCG@10", "leave-one-out, 100 candidates")
    assert words.startswith("**#1 neumf is better than #2 itempop** on NDCG@10 (leave-one-out, 100 candidates)")
    assert "#1 neumf wins on 60 users, #2 itempop on 0, tie on 0." in words
    assert "No difference shown" in significance.verdict(t, "A", "B", "HR@10")
    assert significance.format_p(0.0004) == "p < 0.001" and significance.format_p(0.0421) == "p = 0.042"


# ---- slices: buckets ---------------------------------------------------------------------------------
def test_quartile_buckets_put_a_value_on_an_edge_below_and_name_their_ranges():
    codes, labels = slices.buckets(np.array([1, 2, 3, 4, 5, 6, 7, 8]), ("a", "b", "c", "d"))
    assert codes.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert labels == ["a · 1–2", "b · 3–4", "c · 5–6", "d · 7–8"]
    codes, labels = slices.buckets(np.array([5, 5, 5, 5, 9]), ("a", "b", "c", "d"))
    assert codes.tolist() == [0, 0, 0, 0, 3] and labels[1] == "b · none"


# ---- runs stored with per-user results ---------------------------------------------------------------
@pytest.fixture(scope="module")
def store_home(tmp_path_factory):
    """One store for the module: itemknn and itempop on seeds 0 and 1 (run ids 1–4), and an
    itempop run under the ratio protocol (5)."""
    home = tmp_path_factory.mktemp("understanding-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECVIZ_HOME", str(home))
        for model, seed in (("itemknn", 0), ("itempop", 0), ("itemknn", 1), ("itempop", 1)):
            record.train_here(RunConfig.build(dataset=TINY, model=model, seed=seed))
        record.train_here(RunConfig.build(dataset=TINY, model="itempop", protocol="ratio"))
    return home


@pytest.fixture
def runs(store_home, monkeypatch):
    monkeypatch.setenv("RECVIZ_HOME", str(store_home))
    store = RunStore()
    return {i: peruser.load(store, i) for i in range(1, 6)}


def test_eval_npz_holds_every_users_results_compactly_with_the_held_out_items(tmp_path):
    from recviz.experiments.experiment import run

    for protocol in ("loo", "ratio"):
        result = run(RunConfig.build(dataset=TINY, model="itempop", protocol=protocol))
        artifacts.save(tmp_path / protocol, result)
        pu = artifacts.load_per_user(tmp_path / protocol)
        assert np.array_equal(pu.users, result.test.users)
        for name, values in result.test.per_user.items():
            target = pu.rank if name == "rank" else pu.metrics[name]
            assert np.array_equal(target, values.astype(np.float32).astype(np.float64)), name
            if name != "rank":
                assert target.mean() == pytest.approx(result.test.metrics[name], abs=1e-6)
        held_users, held_items = result.split.held_out("test")
        for i, u in enumerate(pu.users):
            mine = pu.held_items[pu.held_indptr[i]:pu.held_indptr[i + 1]]
            assert sorted(mine) == sorted(held_items[held_users == u])
        train = result.split.train
        assert np.array_equal(pu.item_popularity, beyond.item_popularity(train.user, train.item, result.data.n_items))
        with np.load(tmp_path / protocol / "eval.npz") as z:
            assert z["HR@10"].dtype == np.float32 and int(z["format"]) == artifacts.EVAL_FORMAT
    assert np.isfinite(artifacts.load_per_user(tmp_path / "loo").rank).all()  # loo: every rank is known
    ratio = artifacts.load_per_user(tmp_path / "ratio")
    assert np.diff(ratio.held_indptr).max() > 1  # several held-out items per user under the ratio split
    hit = ratio.metrics["HR@20"] > 0
    assert (ratio.rank[hit] <= 20).all() and np.isinf(ratio.rank[~hit]).all()


def test_an_eval_file_of_an_earlier_version_is_not_available_and_a_damaged_one_is_refused(tmp_path):
    from recviz.experiments.experiment import run

    artifacts.save(tmp_path, run(RunConfig.build(dataset=TINY, model="itempop")))
    with np.load(tmp_path / "eval.npz") as z:
        arrays = {k: z[k] for k in z.files}
    np.savez(tmp_path / "eval.npz", users=arrays["users"], **{k: arrays[k].astype(np.float64)
                                                             for k in arrays if "@" in k or k == "rank"})
    assert artifacts.load_per_user(tmp_path) is None  # format 1: what the views need is not there
    np.savez(tmp_path / "eval.npz", **{**arrays, "HR@10": arrays["HR@10"][:-1]})
    with pytest.raises(RecvizError, match="one value per evaluated user"):
        artifacts.load_per_user(tmp_path)


def test_runs_on_one_split_share_its_id_and_another_seed_or_protocol_does_not(runs):
    ids = {i: r.per_user.split_id for i, r in runs.items()}
    assert ids[1] == ids[2] and ids[3] == ids[4]
    assert len({ids[1], ids[3], ids[5]}) == 3


def test_comparing_two_runs_on_one_split_is_the_tests_on_their_per_user_numbers(runs):
    c = paired.compare(runs[1], runs[2], metric="NDCG@10")
    a, b = runs[1].per_user.metrics["NDCG@10"], runs[2].per_user.metrics["NDCG@10"]
    d = a - b
    assert c.test.n == len(d) and c.test.mean_diff == pytest.approx(d.mean())
    assert c.test.wilcoxon_p == pytest.approx(stats.wilcoxon(d).pvalue)
    assert c.test.t_p == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert (c.test.wins_a, c.test.wins_b, c.test.ties) == ((d > 0).sum(), (d < 0).sum(), (d == 0).sum())
    assert c.test.better == "a" and c.verdict.startswith("**#1 itemknn is better than #2 itempop**")
    assert c.to_dict()["better"] == "#1 itemknn" and json.dumps(c.to_dict())
    assert paired.compare(runs[1], runs[2]).to_dict() == c.to_dict()  # seeded: the same every time


def test_runs_on_different_splits_are_refused_with_the_reason(runs):
    with pytest.raises(paired.NotPaired, match=r"different splits \(split seed 0 ≠ 1\).*not paired"):
        paired.compare(runs[1], runs[4])
    with pytest.raises(paired.NotPaired, match="protocol loo ≠ ratio"):
        paired.compare(runs[2], runs[5])
    with pytest.raises(peruser.NotAvailable, match="choose one of HR@5"):
        paired.compare(runs[1], runs[2], metric="Recall@10")


def test_seed_groups_pair_seed_by_seed_and_compare_the_users_seed_means(runs):
    c = paired.compare([runs[1], runs[3]], [runs[4], runs[2]])
    mean_a = (runs[1].per_user.metrics["NDCG@10"] + runs[3].per_user.metrics["NDCG@10"]) / 2
    mean_b = (runs[2].per_user.metrics["NDCG@10"] + runs[4].per_user.metrics["NDCG@10"]) / 2
    assert np.allclose(c.values_a, mean_a) and np.allclose(c.values_b, mean_b)
    assert [(s["seed"], s["run_a"], s["run_b"]) for s in c.per_seed] == [(0, 1, 2), (1, 3, 4)]
    assert c.a == "#1, #3 itemknn · 2 seeds"
    with pytest.raises(paired.NotPaired, match="has no run in B judged on its split"):
        paired.compare([runs[1], runs[3]], [runs[2], runs[5]])
    with pytest.raises(paired.NotPaired, match="same split: a group holds one run per split"):
        paired.compare([runs[1], runs[2]], [runs[3], runs[4]])


def test_beyond_accuracy_of_stored_runs_is_the_metrics_on_their_stored_lists(runs):
    table = exposure.table([runs[1], runs[2]], k=10).set_index("run")
    pu = runs[2].per_user
    top = artifacts.load_topn(runs[2]._run_dir)["items"][pu.users]
    assert table.at["#2 itempop", "Coverage@10"] == pytest.approx(beyond.coverage(top, runs[2].n_items, 10))
    assert table.at["#2 itempop", "Long tail@10"] == pytest.approx(0.0)  # ItemPop shows the head only
    assert table.at["#2 itempop", "Popularity lift@10"] > table.at["#1 itemknn", "Popularity lift@10"] > 0
    assert table.at["#2 itempop", "Gini@10"] > table.at["#1 itemknn", "Gini@10"]


def test_slices_split_the_users_and_their_means_add_up_to_the_runs(runs):
    for by in slices.SLICES:
        df = slices.sliced([runs[1], runs[2]], "HR@10", by)
        for label, r in (("#1 itemknn", runs[1]), ("#2 itempop", runs[2])):
            part = df[df["run"] == label]
            assert part["users"].sum() == len(r.per_user.users)
            assert (part["mean"] * part["users"]).sum() / part["users"].sum() == pytest.approx(
                r.per_user.metrics["HR@10"].mean())
    pop = slices.sliced([runs[2]], "HR@10", "popularity").set_index("bucket")["mean"]
    assert pop["blockbuster"] > pop["rare"]  # ItemPop fails the users whose held-out item is rare
    bias = slices.popularity_bias([runs[2]], k=10)
    assert (bias["recommended"] > bias["consumed"]).all()


def test_runs_stored_by_an_earlier_version_are_not_available_never_a_number(recviz_home):
    shutil.copytree(LEGACY, recviz_home, dirs_exist_ok=True)
    store = RunStore()
    old = [peruser.load(store, r.id) for r in store.list()]
    assert old and not any(r.available for r in old)
    assert all("earlier version" in r.why_not for r in old)
    shown = exposure.shown(exposure.table(old, k=10))
    assert (shown[exposure.columns(10)] == exposure.NOT_AVAILABLE).all().all()
    with pytest.raises(peruser.NotAvailable, match="earlier version"):
        paired.compare(old[0], old[1])


# ---- the acceptance check on real data -----------------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "ml-100k").exists(), reason="needs ../shared/data/ml-100k")
def test_on_ml100k_neumf_beats_itempop_in_the_paired_test(recviz_home):
    """NeuMF trained for one epoch (no pre-training) already ranks the held-out item higher than
    ItemPop for enough of the 943 users that the paired tests say so with p < 0.001."""
    data = str(SHARED_DATA / "ml-100k")
    neumf = record.train_here(RunConfig.build(dataset=data, model="neumf", pretrain=False, epochs=1, threads=2))[0]
    pop = record.train_here(RunConfig.build(dataset=data, model="itempop"))[0]
    store = RunStore()
    c = paired.compare(peruser.load(store, neumf), peruser.load(store, pop))
    assert c.test.n == 943
    assert c.test.better == "a" and c.test.wilcoxon_p < 1e-3 and c.test.t_p < 1e-3 and c.test.ci_low > 0
    assert c.verdict.startswith(f"**#{neumf} neumf is better than #{pop} itempop** on NDCG@10")
