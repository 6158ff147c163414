"""recviz.analysis.results: the runs table, run labels, seed groups, protocol labels and sweeps —
tiny hand-made cases whose answers are worked out in the comments."""

import numpy as np
import pytest

from recviz import charts
from recviz.analysis import results
from recviz.data.split import make_split, protocol_label
from tests.helpers import random_interactions

LOO100 = "leave-one-out, 100 candidates"
FULL = "80/10/10 ratio split, full ranking"


# ---- runs -------------------------------------------------------------------------------------------
def _run(id, model, protocol="loo", status="done", metrics=None, **config):
    return {"id": id, "model": model, "dataset": "ml-1m", "protocol": protocol, "status": status,
            "created_at": 1_700_000_000 + id, "metrics": metrics or {},
            "config": {"protocol": protocol, "candidates": 100, **config}}


def _m(hr, ndcg):
    return {f"{n}@{k}": v * k / 10 for n, v in (("HR", hr), ("NDCG", ndcg)) for k in (20, 5, 10)}


RUNS = [_run(1, "gmf", metrics=_m(0.6, 0.3), emb_dim=16), _run(2, "mlp", metrics=_m(0.7, 0.4), emb_dim=8),
        _run(3, "neumf", protocol="ratio", metrics=_m(0.2, 0.1) | {"Recall@10": 0.05}, emb_dim=8),
        _run(4, "gmf", status="queued")]


def test_runs_table_flattens_metrics_in_order():
    df = results.runs_table(RUNS)
    assert len(df) == 4
    metric_cols = [c for c in df.columns if "@" in c]
    assert metric_cols == ["HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "Recall@10"]
    assert df.loc[0, "HR@10"] == pytest.approx(0.6) and np.isnan(df.loc[3, "HR@10"])
    assert df["protocol"].tolist() == [LOO100, LOO100, FULL, LOO100]
    assert df["created_at"].dt.year.tolist() == [2023] * 4
    assert df.loc[0, "config"]["emb_dim"] == 16
    empty = results.runs_table([])
    assert empty.empty and {"id", "model", "protocol", "config"} <= set(empty.columns)


def test_runs_table_prefers_the_stored_protocol_detail():
    run = _run(5, "gmf") | {"protocol_detail": "leave-one-out, 99 candidates"}
    assert results.runs_table([run])["protocol"].tolist() == ["leave-one-out, 99 candidates"]


def test_filter_runs():
    df = results.runs_table(RUNS)
    assert results.filter_runs(df, model="gmf")["id"].tolist() == [1, 4]
    assert results.filter_runs(df, model="gmf", status="done")["id"].tolist() == [1]
    assert results.filter_runs(df, model=["mlp", "neumf"], dataset="ml-1m")["id"].tolist() == [2, 3]
    assert len(results.filter_runs(df)) == 4


def test_metric_long_shape_and_protocol_column():
    long = results.metric_long(results.runs_table(RUNS))
    assert list(long.columns) == ["run", "model", "dataset", "protocol", "panel", "metric", "K", "value", "std", "runs"]
    assert (long["runs"] == 1).all() and long["std"].isna().all()  # one bar per run
    assert len(long) == 3 * 2 * 3  # 3 runs with results × HR/NDCG × K; the queued run gives none
    assert all(r.startswith("#") and f" {m}" in r for r, m in zip(long["run"], long["model"]))
    assert set(long["panel"]) == {f"ml-1m · {LOO100}", f"ml-1m · {FULL}"}
    row = long[long["run"].str.startswith("#2 ") & (long["metric"] == "NDCG") & (long["K"] == 5)]
    assert row["value"].item() == pytest.approx(0.2) and row["protocol"].item() == LOO100
    assert set(long["protocol"]) == {LOO100, FULL}


def test_run_labels_name_the_settings_that_tell_runs_apart():
    runs = [_run(1, "gmf", emb_dim=16, lr=0.001, seed=0), _run(2, "gmf", emb_dim=32, lr=0.001, seed=0),
            _run(3, "mlp", emb_dim=8, seed=1), _run(4, "gmf", emb_dim=32, lr=0.001, seed=1) | {"name": "big"}]
    labels = results.run_labels(results.runs_table(runs)).tolist()
    assert labels == ["#1 gmf · emb_dim=16, seed=0", "#2 gmf · emb_dim=32, seed=0", "#3 mlp",
                      "#4 big · emb_dim=32, seed=1"]  # lr is the same for every gmf run: not named
    nested = [_run(5, "gmf", options={"emb_dim": 8}), _run(6, "gmf", options={"emb_dim": 64})]
    assert results.run_labels(results.runs_table(nested)).tolist() == ["#5 gmf · emb_dim=8", "#6 gmf · emb_dim=64"]


def test_runs_that_differ_only_in_seed_are_one_bar_with_their_mean_std_and_count():
    seeds = [_run(i, "gmf", metrics=_m(hr, 0.3), emb_dim=8, lr=0.001, seed=i,
                 threads=1 + i % 2)
             for i, hr in ((1, 0.5), (2, 0.6), (3, 0.7))]  # threads differ too: a repeat, not a new setting
    others = [_run(4, "gmf", metrics=_m(0.4, 0.2), emb_dim=16, lr=0.001, seed=0),
              _run(5, "gmf", metrics=_m(0.9, 0.2), emb_dim=8, seed=0, lr=0.01),  # another setting
              _run(6, "gmf", metrics=_m(0.8, 0.2), emb_dim=8, lr=0.001, seed=1) | {"dataset": "ml-100k"}]  # other data
    df = results.runs_table(seeds + others)
    groups = results.seed_groups(df)
    assert groups.nunique() == 4 and len(set(groups[:3])) == 1
    long = results.metric_long(df, over_seeds=True)
    hr10 = long[(long["metric"] == "HR") & (long["K"] == 10)].set_index("run")
    assert len(hr10) == 4
    group = hr10.loc["#1, #2, #3 gmf · emb_dim=8, lr=0.001 · 3 seeds"]
    assert group["value"] == pytest.approx(0.6) and group["std"] == pytest.approx(0.1) and group["runs"] == 3
    lone = hr10.loc["#4 gmf · emb_dim=16, lr=0.001"]
    assert lone["value"] == pytest.approx(0.4) and np.isnan(lone["std"]) and lone["runs"] == 1
    assert len(results.metric_long(df)) == len(long) + 2 * 3 * 2  # without: one bar per run
    repeated = results.runs_table([_run(i, "gmf", metrics=_m(0.5, 0.3), seed=0, threads=i) for i in (1, 2)])
    assert results.metric_long(repeated, over_seeds=True)["run"][0] == "#1, #2 gmf · 2 runs, 1 seed"
    queued = results.runs_table([_run(1, "gmf", metrics=_m(0.5, 0.3), seed=1), _run(2, "gmf", metrics=_m(0.7, 0.3), seed=2),
                                 _run(3, "gmf", status="queued", seed=3)])  # no numbers yet: not in the bar
    assert results.metric_long(queued, over_seeds=True)["run"][0] == "#1, #2 gmf · 2 seeds"
    many = results.runs_table([_run(i, "gmf", metrics=_m(0.5, 0.3), seed=i) for i in range(1, 7)])
    assert results.metric_long(many, over_seeds=True)["run"][0] == "#1, #2, #3, #4 … gmf · 6 seeds"


def test_protocol_label_and_mixed():
    assert protocol_label("loo", 100) == LOO100
    assert protocol_label("ratio", None) == FULL
    assert protocol_label("leave-one-out, 99 candidates", None) == "leave-one-out, 99 candidates"
    assert protocol_label("loo", 100, "random") == LOO100 + ", random validation item"
    data = random_interactions(n_users=20, n_items=50)
    for protocol, candidates, valid in (("loo", 2, "random"), ("loo", 2, "latest"), ("ratio", 0, "latest")):
        split = make_split(data, protocol, n_candidates=candidates, valid=valid, cache=False)
        assert split.describe() == protocol_label(protocol, candidates if protocol == "loo" else None, valid)
    assert results.metric_label("HR@10", LOO100) == "HR@10 · leave-one-out, 100 candidates"
    df = results.runs_table(RUNS)
    assert results.mixed_protocols(df)
    assert not results.mixed_protocols(results.filter_runs(df, model="gmf"))


def test_sweep_table_sorted_and_averaged():
    runs = [_run(1, "gmf", metrics=_m(0.5, 0.3), emb_dim=64), _run(2, "gmf", metrics=_m(0.3, 0.1), emb_dim=8),
            _run(3, "gmf", metrics=_m(0.4, 0.2), emb_dim=16), _run(4, "gmf", metrics=_m(0.6, 0.4), emb_dim=16),
            _run(5, "mf", metrics=_m(0.45, 0.25), emb_dim=8), _run(6, "gmf", status="running", emb_dim=32)]
    s = results.sweep_table(results.runs_table(runs), "emb_dim")
    assert s["model"].tolist() == ["gmf", "gmf", "gmf", "mf"]
    assert s["emb_dim"].tolist() == [8, 16, 64, 8]  # the run without results is left out
    assert s.loc[1, "HR@10"] == pytest.approx(0.5) and s.loc[1, "runs"] == 2  # mean of 0.4, 0.6
    assert s.loc[1, "HR@10 std"] == pytest.approx(np.std([0.4, 0.6], ddof=1))  # sample std of the two
    assert np.isnan(s.loc[0, "HR@10 std"])  # one run: no spread to show
    assert results.swept_lines(s, "emb_dim")["model"].tolist() == ["gmf"] * 3  # mf's lone point is no curve


def test_sweep_table_keeps_only_models_that_declare_the_option_and_splits_datasets():
    """Configs stored by earlier versions carried every option: an ItemPop or GMF run "had" η 0.6.
    Only EINMF declares η, and runs on another dataset are another line."""
    runs = [_run(1, "einmf", metrics=_m(0.5, 0.3), options={"eta": 0.0}),
            _run(2, "einmf", metrics=_m(0.6, 0.3), options={"eta": 0.6}),
            _run(3, "gmf", metrics=_m(0.9, 0.3), eta=0.6), _run(4, "itempop", metrics=_m(0.4, 0.2), eta=0.6),
            {**_run(5, "einmf", metrics=_m(0.7, 0.3), options={"eta": 0.6}), "dataset": "other"}]
    s = results.sweep_table(results.runs_table(runs), "eta")
    assert s[["model", "dataset", "eta", "runs"]].values.tolist() == [
        ["einmf", "ml-1m", 0.0, 1], ["einmf", "ml-1m", 0.6, 1], ["einmf", "other", 0.6, 1]]
    fig = charts.sweep(s, "eta", "HR@10")
    assert sorted(t.name for t in fig.data) == ["einmf on ml-1m", "einmf on other"]


def test_a_sweep_point_averages_only_runs_equal_but_for_the_seed():
    """Two η sweeps at different embedding sizes are two lines, never one line averaged across
    them; seeds at one setting are one point with its spread; a config stored flat by an earlier
    version is the same setting as the nested one."""
    def einmf(i, eta, emb, hr, seed=0, flat=False):
        options = {"eta": eta, "emb_dim": emb, "lr": 0.002}
        return _run(i, "einmf", metrics=_m(hr, 0.3), seed=seed, **(options if flat else {"options": options}))

    runs = [einmf(1, 0.2, 32, 0.50), einmf(2, 0.2, 32, 0.60, seed=1, flat=True), einmf(3, 0.6, 32, 0.55),
            einmf(4, 0.2, 64, 0.90), einmf(5, 0.6, 64, 0.95)]
    s = results.sweep_table(results.runs_table(runs), "eta")
    assert s[["setting", "eta", "runs"]].values.tolist() == [
        ["emb_dim=32", 0.2, 2], ["emb_dim=32", 0.6, 1], ["emb_dim=64", 0.2, 1], ["emb_dim=64", 0.6, 1]]
    assert s["HR@10"].tolist() == pytest.approx([0.55, 0.55, 0.9, 0.95])
    assert sorted(t.name for t in charts.sweep(s, "eta", "HR@10").data) == ["einmf · emb_dim=32", "einmf · emb_dim=64"]
    one = results.sweep_table(results.runs_table(runs[:3]), "eta")
    assert set(one["setting"]) == {""} and charts.sweep(one, "eta", "HR@10").data[0].name == "einmf"
    # lines that differ only in a setting no option names stay apart, numbered
    kcore = [einmf(6, 0.2, 32, 0.3) | {"config": {**einmf(6, 0.2, 32, 0.3)["config"], "min_user": 5}},
             einmf(7, 0.6, 32, 0.4) | {"config": {**einmf(7, 0.6, 32, 0.4)["config"], "min_user": 5}}]
    apart = results.sweep_table(results.runs_table(runs[:3] + kcore), "eta")
    assert apart[["setting", "eta", "runs"]].values.tolist() == [
        ["setting 1", 0.2, 2], ["setting 1", 0.6, 1], ["setting 2", 0.2, 1], ["setting 2", 0.6, 1]]
    # a config stored before `valid` existed is the default rule, the same setting as one that says it
    legacy = [einmf(8, 0.2, 32, 0.5), einmf(9, 0.6, 32, 0.5) | {"config": {**einmf(9, 0.6, 32, 0.5)["config"],
                                                                            "valid": "latest"}}]
    assert set(results.sweep_table(results.runs_table(legacy), "eta")["setting"]) == {""}


def test_sweep_table_orders_layers_by_depth():
    runs = [_run(i, "mlp", metrics=_m(0.1 * i, 0.1), options={"mlp_layers": layers})
            for i, layers in enumerate(["64,32,16", "32,16", "128,64,32,16", "16,8"], start=1)]
    s = results.sweep_table(results.runs_table(runs), "mlp_layers")
    assert s["mlp_layers"].tolist() == ["16,8", "32,16", "64,32,16", "128,64,32,16"]
