"""recviz.charts: every builder returns a Figure with the traces and axes the page relies on."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from recviz import charts
from recviz.analysis import dataset, embeddings, progress, results
from tests.helpers import frame

LOO100 = "leave-one-out, 100 candidates"
FULL = "80/10/10 ratio split, full ranking"


def rated():
    return frame([("a", "x", 5, 30), ("a", "y", 3, 10), ("b", "x", 4, 5)],
                 columns=("user", "item", "rating", "timestamp"))


def long_metrics(protocols, datasets=None):
    datasets = datasets or ["ml-1m"] * len(protocols)
    rows = [(f"#{i}", "gmf", d, p, results.panel_label(d, p), m, k, 0.1 * k / 10)
            for i, (p, d) in enumerate(zip(protocols, datasets), 1) for m in ("HR", "NDCG") for k in (5, 10, 20)]
    return pd.DataFrame(rows, columns=["run", "model", "dataset", "protocol", "panel", "metric", "K", "value"])


def test_rating_histogram_and_no_ratings():
    fig = charts.rating_histogram(dataset.rating_histogram(rated()))
    assert isinstance(fig, go.Figure) and len(fig.data) == 1 and list(fig.data[0].y) == [1, 1, 1]
    empty = charts.rating_histogram(None)
    assert len(empty.data) == 0 and "no ratings" in empty.layout.annotations[0].text


def test_long_tail_is_log_scale_with_users_and_items():
    data = rated()
    fig = charts.long_tail(dataset.activity(data, "user"), dataset.activity(data, "item"))
    assert [t.name for t in fig.data] == ["users", "items"]
    assert fig.layout.yaxis.type == "log"


def test_behavior_mix():
    data = frame([("a", "x", "click"), ("a", "x", "buy")], columns=("user", "item", "behavior"))
    fig = charts.behavior_mix(dataset.behavior_mix(data))
    assert len(fig.data) == 1 and list(fig.data[0].text) == ["50.0%", "50.0%"]
    assert len(charts.behavior_mix(None).data) == 0


def test_learning_curves_one_line_per_run_and_phase():
    ep = lambda rows: pd.DataFrame(rows, columns=["epoch", "phase", "train_loss", "valid"])  # noqa: E731
    curves = progress.curves_long({
        "#1": ep([(1, "gmf", 0.7, {"NDCG@10": 0.2}), (2, "neumf", 0.5, {"NDCG@10": 0.3}),
                  (3, "neumf", 0.4, {"NDCG@10": 0.35})]),
        "#2": ep([(1, "mlp", 0.9, {"NDCG@10": 0.1})]),
        "#3": ep([])})
    fig = charts.learning_curves(curves, "NDCG@10", protocol=LOO100)
    assert len(fig.data) == 2 * 3  # (loss, metric) × (run 1 gmf, run 1 neumf, run 2)
    dashes = {t.name: t.line.dash for t in fig.data if t.showlegend is not False}
    assert dashes == {"#1 · gmf": "dot", "#1 · neumf": "solid", "#2": "solid"}
    assert LOO100 in fig.layout.annotations[1].text  # the metric panel's title
    assert len(charts.learning_curves(progress.curves_long({}), "NDCG@10").data) == 0


def test_metric_bars_grouped_and_faceted_when_mixed():
    one = charts.metric_bars(long_metrics([LOO100, LOO100]))
    assert len(one.data) == 6 and one.layout.barmode == "group"  # HR/NDCG × K=5,10,20
    assert [t.name for t in one.data][:3] == ["HR@5", "HR@10", "HR@20"]
    assert LOO100 in one.layout.title.text
    mixed = charts.metric_bars(long_metrics([LOO100, FULL]))
    assert len(mixed.data) == 12  # the same six bars in each protocol's panel
    assert {a.text for a in mixed.layout.annotations} == {f"ml-1m · {LOO100}", f"ml-1m · {FULL}"}


def test_metric_bars_never_put_two_datasets_in_one_panel():
    fig = charts.metric_bars(long_metrics([LOO100, LOO100], datasets=["synthetic", "ml-1m"]))
    assert {a.text for a in fig.layout.annotations} == {f"synthetic · {LOO100}", f"ml-1m · {LOO100}"}
    assert {tuple(t.x) for t in fig.data} == {("#1",), ("#2",)}  # each bar alone in its dataset's panel


def test_a_bar_averaged_over_seeds_carries_its_std_and_count():
    runs = [{"id": i, "model": "gmf", "dataset": "ml-1m", "protocol": "loo", "status": "done", "created_at": i,
             "metrics": {"HR@10": hr, "NDCG@10": hr / 2}, "config": {"protocol": "loo", "candidates": 100, "seed": i}}
            for i, hr in ((1, 0.5), (2, 0.7))]
    table = results.runs_table(runs)
    fig = charts.metric_bars(results.metric_long(table, over_seeds=True))
    hr = next(t for t in fig.data if t.name == "HR@10")
    assert list(hr.x) == ["#1, #2 gmf · 2 seeds"] and list(hr.y) == pytest.approx([0.6])
    spread = np.std([0.5, 0.7], ddof=1)
    assert list(hr.error_y.array) == pytest.approx([spread])
    assert np.allclose(hr.customdata, [[2, spread]]) and charts.SPREAD_HOVER in hr.hovertemplate
    apart = charts.metric_bars(results.metric_long(table))  # one bar per run: no error bars
    assert all(t.error_y.array is None for t in apart.data) and len(next(t for t in apart.data).x) == 2


def test_learning_curves_star_the_best_epoch():
    ep = pd.DataFrame({"epoch": [1, 2, 3], "phase": "train", "train_loss": [0.9, 0.5, 0.4],
                       "valid": [{"NDCG@10": 0.2}, {"NDCG@10": 0.35}, {"NDCG@10": 0.3}]})
    fig = charts.learning_curves(progress.curves_long({"#1": ep}), "NDCG@10", best={"#1": 2})
    stars = [t for t in fig.data if t.name == "best epoch"]
    assert len(stars) == 2 and all(list(t.x) == [2] for t in stars)
    assert sorted(t.y[0] for t in stars) == [0.35, 0.5]  # the metric and the loss at epoch 2
    assert not [t for t in charts.learning_curves(progress.curves_long({"#1": ep})).data if t.name == "best epoch"]


def test_log_axes_tick_at_powers_of_ten_only():
    df = pd.DataFrame({"model": ["gmf"] * 3, "dataset": "d", "protocol": [LOO100] * 3, "lr": [1e-4, 1e-3, 1e-2],
                       "HR@10": [0.5, 0.6, 0.4], "NDCG@10": [0.3, 0.35, 0.2], "runs": [1, 1, 1]})
    fig = charts.sweep(df, "lr", "NDCG@10")
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis.dtick == 1
    tail = charts.long_tail(pd.DataFrame({"rank": [1, 2], "interactions": [1000, 2]}),
                            pd.DataFrame({"rank": [1, 2], "interactions": [100, 5]}))
    assert tail.layout.yaxis.type == "log" and tail.layout.yaxis.dtick == 1


def test_sweep_points_over_several_seeds_have_error_bars():
    df = pd.DataFrame({"model": ["einmf"] * 2, "dataset": "d", "protocol": [LOO100] * 2, "eta": [0.2, 0.6],
                       "HR@10": [0.5, 0.6], "NDCG@10": [0.3, 0.35], "HR@10 std": [0.01, 0.02],
                       "NDCG@10 std": [0.005, float("nan")], "runs": [3, 1]})
    fig = charts.sweep(df, "eta", "HR@10")
    assert fig.data[0].error_y.array[0] == 0.01 and np.isnan(fig.data[0].error_y.array[1])  # one run: no bar
    one = charts.sweep(df.assign(runs=1), "eta", "HR@10")
    assert one.data[0].error_y.array is None  # one run per point: no bar pretending to be a spread


def test_sweep_one_line_per_model():
    df = pd.DataFrame({"model": ["gmf", "gmf", "mlp"], "protocol": [LOO100] * 3,
                       "emb_dim": [8, 16, 8], "HR@10": [0.5, 0.6, 0.4], "NDCG@10": [0.3, 0.35, 0.2],
                       "runs": [1, 1, 1]})
    fig = charts.sweep(df, "emb_dim", "NDCG@10")
    assert [t.name for t in fig.data] == ["gmf", "mlp"]
    assert list(fig.data[0].y) == [0.3, 0.35]
    assert LOO100 in fig.layout.yaxis.title.text
    layers = df.assign(layers=["16,8", "32,16", "16,8"])
    assert charts.sweep(layers, "layers").layout.xaxis.type == "category"


def test_embedding_map_highlights_roles():
    coords = embeddings.pca_2d(np.random.default_rng(0).normal(size=(20, 4)))
    df = embeddings.embedding_map(coords, [f"t{i}" for i in range(20)], [0, 1], [2, 3], [4])
    fig = charts.embedding_map(df, explained=(0.3, 0.2))
    assert [t.name for t in fig.data] == ["other", "history", "recommended", "held-out"]
    assert fig.data[0].marker.color == "#c8c8c8" and fig.data[0].marker.size < fig.data[1].marker.size
    assert len({t.marker.symbol for t in fig.data[1:]}) == 3
    assert "30% of variance" in fig.layout.xaxis.title.text
    no_held = embeddings.embedding_map(coords, [f"t{i}" for i in range(20)], [0], [2], [])
    assert len(charts.embedding_map(no_held).data) == 3


def test_learning_curves_tick_whole_epochs():
    from recviz.analysis.progress import curves_long

    ep = pd.DataFrame({"epoch": [1, 2, 3], "phase": "gmf", "train_loss": [0.5, 0.4, 0.3],
                       "seconds": 1.0, "valid": [{"NDCG@10": 0.1}, {"NDCG@10": 0.2}, {"NDCG@10": 0.25}]})
    fig = charts.learning_curves(curves_long({"#1": ep}))
    assert fig.layout.xaxis.tickformat == "d" and fig.layout.xaxis.dtick == 1
