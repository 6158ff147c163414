"""What a page shows must be what the library knows: the two-run comparison names items by their
real ids, an unknown user id offers valid ones, and a malformed option blocks the launch."""

import numpy as np
from streamlit.testing.v1 import AppTest

from recviz.config import RunConfig
from recviz.data.load import save_named
from recviz.experiments import artifacts, record
from recviz.experiments.store import RunStore
from tests.test_app import ROOT, app, app_env, assert_clean, sweep_form  # noqa: F401  (app_env: the fixture)


def _two_runs(tmp_path) -> tuple[int, int, str]:
    """Two finished runs on a saved dataset whose raw item ids are nothing like the internal
    indices (1000, 1007, 1014, …)."""
    rng = np.random.default_rng(0)
    rows = ["user,item,rating,timestamp"]
    for u in range(40):
        for k, i in enumerate(rng.choice(120, size=12, replace=False)):
            rows.append(f"user{u},{1000 + 7 * int(i)},{1 + (u + k) % 5},{1000 * u + k}")
    path = tmp_path / "ratings.csv"
    path.write_text("\n".join(rows) + "\n")
    save_named("oddids", str(path))
    ids = [record.train_here(RunConfig.build(dataset="oddids", model=m, candidates=20))[0] for m in ("itemknn", "itempop")]
    return ids[0], ids[1], "oddids"


def test_the_compare_table_names_items_by_their_raw_ids(tmp_path):
    knn, pop, _ = _two_runs(tmp_path)
    at = app().switch_page("pages/recommendations.py").run()
    at.selectbox(key="rec_run").set_value(next(o for o in at.selectbox(key="rec_run").options
                                                if o.startswith(f"#{knn} "))).run()
    assert_clean(at)
    user = at.text_input(key="user_raw.oddids").value
    table = next(d.value for d in at.dataframe if any(str(c).startswith("rank in") for c in d.value.columns))
    store = RunStore()
    expected = artifacts.recommend_for(store.run_dir(knn), user, k=len(table))
    assert table[f"#{knn} itemknn item"].astype(str).tolist() == expected["item"].astype(str).tolist()
    other = artifacts.recommend_for(store.run_dir(pop), user, k=len(table))
    assert table[f"#{pop} itempop item"].astype(str).tolist() == other["item"].astype(str).tolist()
    assert np.allclose(table[f"#{knn} itemknn score"], expected["score"])
    assert all(int(i) >= 1000 for i in table[f"#{knn} itemknn item"])


def test_an_unknown_user_id_offers_the_valid_ones(tmp_path):
    _two_runs(tmp_path)
    at = app().switch_page("pages/recommendations.py").run()
    at.text_input(key="user_raw.oddids").set_value("u0001").run()  # an id from another dataset
    assert_clean(at)
    assert any("No user 'u0001' in oddids" in w.value for w in at.warning)
    pick = at.selectbox(key="user_pick.oddids")
    assert len(pick.options) > 10 and all(o.startswith("user") for o in pick.options)
    assert any(h.value.startswith("User user") for h in at.subheader)


def test_a_malformed_option_shows_under_its_field_and_blocks_launch():
    at = AppTest.from_file(str(ROOT / "pages" / "train.py"), default_timeout=60).run()
    at.selectbox(key="model").set_value("mlp").run()
    at.radio(key="protocol").set_value("ratio").run()
    at.text_input(key="opt.mlp.None.mlp_layers").set_value("abc").run()
    assert_clean(at)
    assert any("mlp_layers must be comma-separated layer widths" in e.value for e in at.error)
    assert at.button(key="launch").disabled
    at.text_input(key="opt.mlp.None.mlp_layers").set_value("64,32").run()
    assert not at.error and not at.button(key="launch").disabled


def test_with_two_runs_queued_the_live_panel_shows_the_running_one(monkeypatch):
    from recviz.experiments import launch

    monkeypatch.setenv("RECVIZ_TEST_SLEEP_BEFORE_FIT", "30")  # the worker holds each run, cancellably
    monkeypatch.setenv("RECVIZ_LOCAL_SLOTS", "1")  # one runs, two wait (with two slots two would run)
    first = launch.submit(RunConfig.build(dataset="synthetic:users=60,items=400,interactions=1500", model="itempop"))
    store = RunStore()
    while store.get(first).status != "running":
        pass
    queued = [launch.submit(RunConfig.build(dataset="synthetic", model="itempop", seed=s)) for s in (1, 2)]
    at = app().switch_page("pages/train.py")
    at.session_state["active_run"] = queued[-1]  # this browser session launched the newest
    at.run()
    assert_clean(at)
    assert any(h.value.startswith(f"Run #{first} ") for h in at.subheader), [h.value for h in at.subheader]
    at.selectbox(key="watch_run").set_value(queued[0]).run()  # any run can be opened
    assert any(h.value.startswith(f"Run #{queued[0]} ") for h in at.subheader)
    assert at.query_params["run"] in (str(queued[0]), [str(queued[0])])  # the link to this run
    for run_id in (first, *queued):
        store.request_cancel(run_id)


def test_a_run_link_opens_it_and_a_malformed_one_is_ignored(tmp_path):
    knn, pop, _ = _two_runs(tmp_path)
    for value, shown in ((str(knn), knn), ("abc", pop), ("99999", pop)):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        at.query_params["run"] = value
        at.switch_page("pages/train.py").run()
        assert_clean(at)
        assert any(h.value.startswith(f"Run #{shown} ") for h in at.subheader), (value, [h.value for h in at.subheader])
    assert any("fitted in" in m.value for m in at.markdown)  # ItemPop: no epoch chart
    assert not at.get("plotly_chart")


def test_every_page_with_runs_of_every_status_three_datasets_and_a_malformed_link(tmp_path):
    import os

    knn, _, _ = _two_runs(tmp_path)
    store = RunStore()
    for dataset in ("synthetic:users=60,items=400,interactions=1500", "synthetic-implicit:users=60,items=300,interactions=1500"):
        record.train_here(RunConfig.build(dataset=dataset, model="itemknn", candidates=20))
    failed = store.create(RunConfig.build(dataset="oddids", model="gmf"))
    store.fail(failed, "worker process 123 exited without finishing")
    cancelled = store.create(RunConfig.build(dataset="oddids", model="neumf"))
    store.mark_running(cancelled, os.getpid())
    store.mark_cancelled(cancelled)
    running = store.create(RunConfig.build(dataset="oddids", model="mf"))
    store.mark_running(running, os.getpid())  # alive: this very process
    store.create(RunConfig.build(dataset="oddids", model="bpr"))  # queued
    assert {r.status for r in store.list()} == {"done", "failed", "cancelled", "running", "queued"}
    for value in ("abc", "-1", "99999999999999999999999", str(knn), ""):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        at.query_params["run"] = value
        at.run()
        for page in ("pages/data.py", "pages/train.py", "pages/results.py", "pages/recommendations.py"):
            at.switch_page(page).run()
            assert_clean(at)
            assert not any("internal error" in e.value for e in at.error), (value, page, [e.value for e in at.error])
    store.request_cancel(running)


def test_an_upload_error_names_the_file_once_and_leaves_nothing_behind(recviz_home):
    at = app().switch_page("pages/data.py").run()
    at.file_uploader(key="upload").set_value(("bad.csv", b"user,item,rating\n1,10,4\n2,11,five\n", "text/csv")).run()
    at.text_input(key="save_as").set_value("bad").run()
    at.button(key="save_upload").click().run()
    assert_clean(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("bad.csv, line 3") and "incoming" not in errors[0]
    assert "  \n**Fix:**" in errors[0]  # the fix on a line of its own
    assert not any((recviz_home / "incoming").rglob("*.csv"))

    at.file_uploader(key="upload").set_value(("bin.csv", b"\x00\x01\x02" * 100, "text/csv")).run()
    assert any("binary" in e.value for e in at.error) and at.button(key="save_upload").disabled


def test_an_old_run_keeps_its_items_after_its_dataset_name_gets_a_new_version(tmp_path):
    """Defect 1 of issue 14: save, train, save again under the name, and the old run's list on
    Recommendations must still be the one `recviz recommend` prints for it."""
    knn, _, _ = _two_runs(tmp_path)
    store = RunStore()
    user = "user3"
    before = artifacts.recommend_for(store.run_dir(knn), user, k=10)
    rows = ["user,item,rating,timestamp"] + [f"user{u},{5000 + (u * 3 + k) % 90},{1 + k % 5},{k}"
                                            for u in range(40) for k in range(15)]
    (tmp_path / "other.csv").write_text("\n".join(rows) + "\n")
    save_named("oddids", str(tmp_path / "other.csv"), replace=True)  # a new version, other items
    at = app().switch_page("pages/recommendations.py").run()
    label = next(o for o in at.selectbox(key="rec_run").options if o.startswith(f"#{knn} "))
    at.selectbox(key="rec_run").set_value(label).run()
    at.radio(key="user_mode").set_value("search by id").run()
    at.text_input(key="user_raw.oddids").set_value(user).run()
    assert_clean(at)
    table = next(d.value for d in at.dataframe if f"#{knn} itemknn item" in d.value.columns)
    shown = table[f"#{knn} itemknn item"].astype(str).tolist()[:10]
    assert shown == before["item"].astype(str).tolist()
    assert all(int(i) < 5000 for i in shown)  # the first version's items, not the new one's


def test_the_data_page_asks_before_a_name_gets_a_new_version_and_lists_versions(tmp_path):
    knn, pop, _ = _two_runs(tmp_path)
    at = app().switch_page("pages/data.py").run()
    at.file_uploader(key="upload").set_value(("again.csv", (tmp_path / "ratings.csv").read_bytes()[:4000].rsplit(b"\n", 1)[0] + b"\n", "text/csv")).run()
    at.text_input(key="save_as").set_value("oddids").run()
    assert at.button(key="save_upload").disabled  # the name is taken: confirm first
    at.checkbox(key="replace").check().run()
    at.button(key="save_upload").click().run()
    assert_clean(at)
    assert any("Saved 'oddids' v2" in s.value for s in at.success)
    at.run()
    table = next(d.value for d in at.dataframe if list(d.value.columns)[:2] == ["version", "saved"])
    assert table["version"].tolist() == ["v1", "v2"]
    assert set(table["runs"][0].split(", ")) == {f"#{knn}", f"#{pop}"} and table["runs"][1] == "—"


def test_the_numbers_are_explained_where_they_are_shown(tmp_path):
    from recviz.eval.glossary import TERMS

    knn, _, _ = _two_runs(tmp_path)
    at = app()
    shown = lambda: " ".join(m.value for m in at.markdown)  # noqa: E731
    assert TERMS["HR@K"] in shown() and TERMS["protocol"] in shown()  # Home's recent scores
    at.switch_page("pages/results.py").run()
    assert all(text in shown() for text in TERMS.values())
    at.switch_page("pages/train.py")
    at.session_state["watch_run"] = knn
    at.run()
    assert_clean(at)
    assert TERMS["best epoch"] in shown() and TERMS["NDCG@K"] in shown()


def test_the_eta_sweep_chart_holds_exactly_the_swept_runs_of_one_model_dataset_and_protocol():
    """Every config stored before per-model options carried η (an ItemPop run "had" η 0.6): on
    the chart only EINMF runs count, one line per dataset, and a lone run is no line."""
    import json
    import sqlite3

    store = RunStore()

    def finished(model, dataset="synthetic", hr=0.5, legacy_eta=None, **options):
        run_id = store.create(RunConfig.build(dataset=dataset, model=model, **options))
        store.finish(run_id, {"metrics": {"HR@10": hr, "NDCG@10": hr / 2}})
        if legacy_eta is not None:  # what an earlier version stored: every option, flat
            with sqlite3.connect(store.path) as conn:
                config = json.loads(conn.execute("SELECT config FROM runs WHERE id = ?", (run_id,)).fetchone()[0])
                conn.execute("UPDATE runs SET config = ? WHERE id = ?",
                             (json.dumps({**config, "eta": legacy_eta}), run_id))
        return run_id

    for eta, hr in ((0.2, 0.50), (0.6, 0.56), (1.0, 0.52)):
        finished("einmf", eta=eta, hr=hr)
    finished("einmf", dataset="synthetic-implicit", eta=0.6, hr=0.9)  # another dataset, one run: no line
    finished("gmf", hr=0.8, legacy_eta=0.6)
    finished("itempop", hr=0.3, legacy_eta=0.6)
    at = app().switch_page("pages/results.py").run()
    at.selectbox(key="sweep_param").set_value("eta").run()
    assert_clean(at)
    figure = json.loads(at.get("plotly_chart")[-1].proto.spec)
    assert [(t["name"], _values(t["x"]), _values(t["y"])) for t in figure["data"]] == \
        [("einmf", [0.2, 0.6, 1.0], [0.5, 0.56, 0.52])]


def test_the_metric_bars_average_runs_that_differ_only_in_seed():
    """Results' bars: runs equal but for the seed are one bar, their mean with a std error bar,
    unless the person turns that off; a lone setting keeps its own bar."""
    import json

    store = RunStore()
    for seed, hr in ((0, 0.5), (1, 0.6), (2, 0.7)):
        store.finish(store.create(RunConfig.build(model="gmf", seed=seed)), {"metrics": {"HR@10": hr, "NDCG@10": hr / 2}})
    store.finish(store.create(RunConfig.build(model="gmf", emb_dim=8)), {"metrics": {"HR@10": 0.4, "NDCG@10": 0.2}})
    at = app().switch_page("pages/results.py").run()
    assert_clean(at)
    assert at.toggle(key="over_seeds").value is True

    def hr10():
        figure = json.loads(next(c for c in at.get("plotly_chart") if c.proto.id.endswith("metric_bars")).proto.spec)
        return next(t for t in figure["data"] if t["name"] == "HR@10")

    bars = hr10()
    assert bars["x"] == ["#4 gmf · emb_dim=8", "#1, #2, #3 gmf · emb_dim=64 · 3 seeds"]  # newest first
    assert np.allclose(_values(bars["y"]), [0.4, 0.6]) and np.allclose(np.array(_values(bars["error_y"]["array"]), dtype=float), [np.nan, 0.1], equal_nan=True)  # one run: no bar
    at.toggle(key="over_seeds").set_value(False).run()
    assert len(hr10()["x"]) == 4 and "error_y" not in hr10()


def _values(array) -> list:
    """A plotly JSON array: a list, or (plotly ≥ 6) a typed array {"dtype", "bdata": base64}."""
    import base64

    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def test_the_sweep_mode_runs_each_value_with_each_seed(monkeypatch):
    from recviz.experiments import launch

    monkeypatch.setattr(launch, "submit", lambda config, sweep_id=None, **_:
                        RunStore().create(config, sweep_id=sweep_id))  # queue only: nothing trains here
    at = sweep_form("8,16", "0,1,2")
    assert at.button(key="launch").label == "Launch 6 runs"
    at.button(key="launch").click().run()
    assert_clean(at)
    runs = RunStore().list()[::-1]
    assert [(r.config.option("emb_dim"), r.seed) for r in runs] == [(8, 0), (8, 1), (8, 2), (16, 0), (16, 1), (16, 2)]
    assert len({r.sweep_id for r in runs}) == 1
    at.text_input(key="sweep_seeds").set_value("0,-3").run()
    assert at.button(key="launch").disabled and any("seed must be" in e.value for e in at.error)
    for r in runs:
        RunStore().request_cancel(r.id)


def test_an_upload_whose_name_is_too_long_for_the_file_system_is_read_and_named_as_given(recviz_home):
    # 124 characters, 364 bytes in UTF-8: a valid name on a Mac (255 UTF-16 units), too long for Linux (255 bytes)
    long_name = "评分数据" * 30 + ".csv"
    at = app().switch_page("pages/data.py").run()
    data = (ROOT / "assets" / "example_ratings.csv").read_bytes()
    at.file_uploader(key="upload").set_value((long_name, data, "text/csv")).run()
    assert_clean(at)
    assert not any("internal error" in e.value for e in at.error), [e.value for e in at.error]
    at.text_input(key="save_as").set_value("longname").run()
    at.button(key="save_upload").click().run()
    assert_clean(at)
    assert any("Saved 'longname'" in s.value for s in at.success), [e.value for e in at.error]

    bad = b"user,item,rating\n1,10,4\n2,11,five\n"
    at.file_uploader(key="upload").set_value((long_name, bad, "text/csv")).run()
    at.text_input(key="save_as").set_value("longbad").run()
    at.button(key="save_upload").click().run()
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith(f"{long_name}, line 3"), errors
    assert not any((recviz_home / "incoming").rglob("*"))


def test_the_page_shows_a_user_whose_list_the_run_did_not_store(tmp_path, monkeypatch):
    """Past `topn.TOPN_USERS` a run stores some users' lists: the page makes another user's list
    from the run's model (both runs' in the comparison), and compares the runs over the users both
    stored."""
    from recviz.experiments import topn

    monkeypatch.setattr(topn, "TOPN_USERS", 10)
    knn, pop, _ = _two_runs(tmp_path)
    store = RunStore()
    stored = artifacts.load_topn(store.run_dir(knn))
    ids = artifacts.load_ids(store.run_dir(knn))["user_ids"]
    assert len(stored["users"]) == 10
    user = str(ids[np.setdiff1d(np.arange(len(ids)), stored["users"])[0]])
    at = app().switch_page("pages/recommendations.py").run()
    at.selectbox(key="rec_run").set_value(next(o for o in at.selectbox(key="rec_run").options
                                                if o.startswith(f"#{knn} "))).run()
    at.text_input(key="user_raw.oddids").set_value(user).run()
    assert_clean(at)
    table = next(d.value for d in at.dataframe if any(str(c).startswith("rank in") for c in d.value.columns))
    for run_id, name in ((knn, "itemknn"), (pop, "itempop")):
        expected = artifacts.recommend_for(store.run_dir(run_id), user, k=len(table))
        assert table[f"#{run_id} {name} item"].astype(str).tolist() == expected["item"].astype(str).tolist()
    at.radio(key="user_mode").set_value("where two runs disagree most").run()
    assert_clean(at)
    offered = at.selectbox(key="disagree_user").options
    assert offered and all(o.split(" ")[0] in set(ids[stored["users"]]) for o in offered)
