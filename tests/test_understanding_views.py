"""Where the understanding views are shown: `recviz compare` and `recviz report`, `recviz.compare`
and `recviz.report`, and the Results page's panels (AppTest), on the runs of
tests/test_understanding.py's store."""

import json

from recviz.analysis import paired, slices
from tests.test_app import app, app_env, assert_clean  # noqa: F401  (app_env: the fixture)
from tests.test_understanding import runs, store_home  # noqa: F401  (fixtures)


def test_the_charts_draw_one_bar_set_per_run_and_consumed_popularity_once(runs):
    from recviz import charts

    df = slices.sliced([runs[1], runs[2]], "NDCG@10", "activity")
    fig = charts.sliced_bars(df, "NDCG@10", slices.ACTIVITY.title, runs[1].protocol)
    assert [t.name for t in fig.data] == ["#1 itemknn", "#2 itempop"]
    assert list(fig.data[0].x) == list(slices.ACTIVITY.names) and fig.data[0].error_y.array is not None
    bias = charts.popularity_bias(slices.popularity_bias([runs[1], runs[2]], k=10), k=10)
    assert [t.name for t in bias.data] == ["consumed (train)", "recommended by #1 itemknn", "recommended by #2 itempop"]
    hist = charts.paired_differences(paired.compare(runs[1], runs[2]).differences, "A", "B", "NDCG@10")
    assert hist.data[0].type == "bar" and len(hist.data[0].x) == charts.PAIRED_BINS  # binned: bounded at any size
    assert sum(hist.data[0].y) == len(runs[1].per_user.users)


# ---- where it is shown: CLI, API, Results page -------------------------------------------------------
def test_recviz_compare_prints_the_verdict_and_its_json(runs, capsys):
    from recviz.cli import main

    assert main(["compare", "1", "2"]) == 0
    out = capsys.readouterr().out
    assert "#1 itemknn is better than #2 itempop on NDCG@10" in out and "Wilcoxon signed-rank" in out
    assert main(["compare", "1", "2", "--metric", "HR@5", "--json"]) == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert data["metric"] == "HR@5" and data["users"] == len(runs[1].per_user.users)
    assert main(["compare", "1,3", "2,4"]) == 0
    assert "per seed" in capsys.readouterr().out
    assert main(["compare", "1", "4"]) == 2
    assert "not paired" in capsys.readouterr().err


def test_recviz_report_shows_beyond_accuracy_and_slices(runs, capsys):
    from recviz.cli import main

    assert main(["report", "1", "2", "-k", "5"]) == 0
    out = capsys.readouterr().out
    assert "Coverage@5" in out and "Gini@5" in out and "by user activity" in out and "popularity" in out
    assert main(["report", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert data["beyond_accuracy"][0]["run"] == "#2 itempop" and data["slices"]["activity"]


def test_the_api_compares_and_reports(runs):
    import recviz

    c = recviz.compare(1, 2, metric="HR@10")
    assert c.test.better == "a" and list(c.frame().columns) == ["user", "A", "B", "difference"]
    assert c.frame()["user"].tolist() == runs[1].user_ids()[runs[1].per_user.users].tolist()
    assert recviz.compare([1, 3], [2, 4]).per_seed[1]["run_b"] == 4
    rep = recviz.report(1, 2, k=5)
    assert set(rep) == {"beyond_accuracy", "activity", "popularity", "popularity_bias"}
    assert rep["beyond_accuracy"]["Coverage@5"].notna().all()


def test_the_results_page_compare_panel_says_the_verdict_and_draws_the_differences(runs):
    at = app().switch_page("pages/results.py").run()
    assert_clean(at)
    at.selectbox(key="compare_a").set_value(1).run()
    at.selectbox(key="compare_b").set_value(2).run()
    assert_clean(at)
    expected = paired.compare(runs[1], runs[2])
    assert any(m.value == expected.verdict for m in at.markdown)
    table = next(d.value for d in at.dataframe if "statistic" in d.value.columns).set_index("statistic")["value"]
    assert table["A wins / B wins / tie (users)"] == f"{expected.test.wins_a} / {expected.test.wins_b} / " \
                                                     f"{expected.test.ties}"
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert any(t.startswith("Per-user difference of NDCG@10: #1 itemknn − #2 itempop") for t in titles)
    at.selectbox(key="compare_b").set_value(4).run()  # another seed: not paired
    assert any("not paired" in w.value for w in at.warning)
    at.toggle(key="compare_seeds").set_value(True).run()  # the two settings over seeds 0 and 1
    assert_clean(at)
    assert any(m.value.startswith("**#1, #3 itemknn · 2 seeds is better than #2, #4 itempop · 2 seeds**")
               for m in at.markdown)
    beyond_table = next(d.value for d in at.dataframe if "Coverage@10" in d.value.columns)
    assert len(beyond_table) == 5


def test_the_results_page_says_not_available_for_runs_stored_by_an_earlier_version(recviz_home):
    import shutil

    from tests.test_understanding import LEGACY

    shutil.copytree(LEGACY, recviz_home, dirs_exist_ok=True)
    at = app().switch_page("pages/results.py").run()
    assert_clean(at)
    table = next(d.value for d in at.dataframe if "Coverage@10" in d.value.columns)
    assert (table["Coverage@10"] == "not available").all() and table["note"].str.contains("earlier version").all()
    assert any("earlier version" in w.value for w in at.warning)  # the compare panel says why it cannot
