"""Rough edges from the "Understanding" issue, each pinned by a test."""


import pytest

from recviz.config import RunConfig
from recviz.errors import DataError
from tests.helpers import write

RATINGS = "user,item,rating,timestamp\n" + "".join(f"u{u},i{(u * 3 + k) % 9},4,{k}\n" for u in range(6) for k in range(5))


# ---- a dataset referenced by a relative path --------------------------------------------------------
def test_a_relative_dataset_path_is_stored_absolute_and_two_spellings_are_one(tmp_path, monkeypatch):
    data = write(tmp_path / "data" / "ratings.csv", RATINGS)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    a = RunConfig.build(dataset="../data/ratings.csv", model="itempop")
    b = RunConfig.from_dict({"dataset": "./../data/../data/ratings.csv", "model": "itempop"})
    assert a.dataset == b.dataset == str(data.resolve())
    assert RunConfig.from_json(a.to_json()).dataset == a.dataset


def test_catalog_and_saved_names_are_kept_as_typed(tmp_path, monkeypatch):
    from recviz.data.load import save_named

    monkeypatch.chdir(tmp_path)
    save_named("mine", str(write(tmp_path / "r.csv", RATINGS)))
    assert RunConfig.build(dataset="mine").dataset == "mine"
    assert RunConfig.build(dataset="ml-100k").dataset == "ml-100k"
    assert RunConfig.build(dataset="synthetic:users=10,items=20,interactions=50").dataset.startswith("synthetic:")


def test_an_old_runs_relative_path_that_is_not_here_names_the_problem(tmp_path, monkeypatch):
    from recviz.data.load import load

    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as err:
        load("../shared/data/ml-100k")
    text = str(err.value)
    assert "relative path" in text and str(tmp_path) in text and "absolute" in text


# ---- page messages name the page's widgets, not CLI flags ---------------------------------------
def test_fixes_on_a_page_name_its_widgets_not_cli_flags():
    from recviz.analysis.messages import for_page
    from recviz.data.validate import DEDUP_FIX

    ray = for_page("start one with `ray start --head`, give its address with --address HOST:PORT, "
                   "or use --address local to start one in this process")
    assert "--address" not in ray.replace("`ray start --head`", "") and "“Ray address” set to local" in ray
    assert "`ray start --head`" in ray  # Ray's own command stays as it is
    assert for_page("check it with `ray status --address ...`") == "check it with `ray status --address ...`"
    dedup = for_page(f"2 rows for (u1, i1); {DEDUP_FIX}")
    assert "dedup=" not in dedup and "--dedup" not in dedup and "“Duplicate (user, item) rows”" in dedup
    assert for_page("ask for fewer candidates (e.g. --candidates 12)") == \
        "ask for fewer candidates (e.g. “Candidates per held-out item” set to 12)"


def test_a_duplicate_rows_upload_says_which_field_to_change(monkeypatch):
    from tests.test_app import ROOT, upload_and_save

    monkeypatch.chdir(ROOT)
    at = upload_and_save("dup.csv", b"user,item,rating\n1,10,4\n1,10,5\n2,11,3\n", "dup")
    errors = " ".join(e.value for e in at.error)
    assert "Duplicate (user, item) rows" in errors and "--dedup" not in errors and "dedup='" not in errors


# ---- "Launch 1 runs" --------------------------------------------------------------------------------
def test_the_launch_button_counts_one_run_in_the_singular(monkeypatch):
    from tests.test_app import ROOT, sweep_form

    monkeypatch.chdir(ROOT)
    at = sweep_form("8", "0")
    assert at.button(key="launch").label == "Launch 1 run"
    at.text_input(key="sweep_values.gmf.emb_dim").set_value("8,16").run()
    assert at.button(key="launch").label == "Launch 2 runs"


# ---- a protocol error names the user by their raw id ------------------------------------------------
def test_too_few_candidates_names_the_raw_user_id():
    import pandas as pd

    from recviz.data.interactions import Interactions
    from recviz.data.split import make_split
    from recviz.errors import ProtocolError

    rows = [(f"user-{u}", f"i{(u * 3 + k) % 12}", k) for u in range(5) for k in range(3 if u else 10)]
    data = Interactions.from_frame(pd.DataFrame(rows, columns=["user", "item", "timestamp"]), name="few")
    with pytest.raises(ProtocolError) as err:
        make_split(data, "loo", n_candidates=5)
    assert "user 'user-0' has only 2 items" in str(err.value) and "#" not in str(err.value)


# ---- the two-run table on Recommendations prints no "None" -------------------------------------------
def test_the_side_by_side_table_has_no_missing_cells():
    import numpy as np

    from recviz.analysis import toplists

    top_a = np.array([[0, 1, 2, -1]])  # A has only 3 items for this user (padding)
    top_b = np.array([[5, 0, 6, 7]])
    scores_a = np.array([[3.0, 2.0, 1.0, -np.inf]])
    scores_b = np.array([[4.0, 3.0, 2.0, 1.0]])
    ids, titles = [f"i{k}" for k in range(8)], [f"t{k}" for k in range(8)]
    df = toplists.side_by_side(top_a, scores_a, top_b, scores_b, 0, ids, titles, names=("A", "B"), k=4)
    assert not df.isna().any().any(), df  # Streamlit prints a missing cell as "None"
    assert df["rank in B"].tolist() == ["2", "", "", ""] and df["rank in A"].tolist() == ["", "1", "", ""]
    assert df["A score"].tolist()[:3] == [3.0, 2.0, 1.0] and df["A score"].tolist()[3] == ""


# ---- no select can be cleared to blank ----------------------------------------------------------------
def test_the_settings_select_and_every_other_cannot_be_cleared(monkeypatch):
    from tests.test_app import ROOT, app

    monkeypatch.chdir(ROOT)
    at = app().switch_page("pages/train.py").run()
    settings = next(s for s in at.selectbox if s.label == "Settings")
    assert settings.proto.required and settings.value is None  # None: the defaults, shown by name
    assert all(s.proto.required for s in at.selectbox), [s.label for s in at.selectbox if not s.proto.required]


# ---- "Run #1 is training" once it is done ----------------------------------------------------------
def test_the_launch_note_follows_the_runs_status(monkeypatch):
    from recviz.analysis.progress import launched_text
    from recviz.experiments import record
    from tests.test_app import ROOT, app, assert_clean

    monkeypatch.chdir(ROOT)
    run_id = record.train_here(RunConfig.build(dataset="synthetic:users=30,items=80,interactions=400",
                                               model="itempop", candidates=20))[0]
    at = app()
    at.session_state["just_launched"] = run_id
    at.switch_page("pages/train.py").run()
    assert_clean(at)
    shown = " ".join(str(e.value) for e in [*at.success, *at.info])
    assert f"Run #{run_id}" in shown and "is training" not in shown and "finished" in shown
    assert "is training" in launched_text(7, "running") and "queued" in launched_text(7, "queued")
    assert "failed" in launched_text(7, "failed")


# ---- the MLflow export keeps run names ------------------------------------------------------------------
def test_the_mlflow_export_uses_the_runs_name(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    from recviz.experiments import record, tracking
    from recviz.experiments.store import RunStore

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = RunConfig.build(dataset="synthetic:users=30,items=80,interactions=400", model="itempop", candidates=20)
    named, unnamed = record.train_here(config)[0], record.train_here(config.replace(seed=1))[0]
    store = RunStore()
    store.rename(named, "baseline")
    sent = tracking.export(store, [named, unnamed], uri)
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    assert client.get_run(sent[named]).data.tags["mlflow.runName"] == "baseline"
    assert client.get_run(sent[unnamed]).data.tags["mlflow.runName"] == f"#{unnamed} itempop on {config.dataset}"


# ---- the README's sweep values are accepted ----------------------------------------------------------
def test_sweep_values_take_a_range_and_the_readme_example_parses():
    import re

    from recviz.errors import RecvizError
    from recviz.experiments.sweep import parse_values
    from recviz.models import registry
    from tests.test_app import ROOT

    einmf, gmf = registry.get("einmf"), registry.get("gmf")
    assert parse_values(einmf, "eta", "0:1:0.2") == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert parse_values(gmf, "emb_dim", "8:32:8") == [8, 16, 24, 32]
    assert parse_values(gmf, "emb_dim", "4,8:16:4") == [4, 8, 12, 16]
    with pytest.raises(RecvizError, match="0:1:0.2"):
        parse_values(einmf, "eta", "0,0.2,...,1")  # the ellipsis is refused, saying what works
    with pytest.raises(RecvizError):
        parse_values(einmf, "eta", "1:0:0.2")
    readme = (ROOT / "README.md").read_text()
    shown = re.findall(r"--param (\w+) --values (\S+)", readme)
    assert shown
    for param, values in shown:
        if values.startswith("$"):
            continue
        param = "eta" if param == "OPTION" else param  # the command table's placeholder: a 0–1 option
        spec = next(s for s in registry.MODELS.values() if any(o.name == param for o in s.sweepable()))
        assert parse_values(spec, param, values)


# ---- the README says where the data lives, in its set-up ------------------------------------------------
def test_the_readme_names_the_data_directory_in_its_set_up():
    from recviz import paths
    from tests.test_app import ROOT

    readme = (ROOT / "README.md").read_text()
    set_up = readme[:readme.index("## The command line")]
    assert "RECVIZ_HOME" in set_up and "~/.recviz" in set_up
    assert paths.DEFAULT_HOME == "~/.recviz"


def test_an_old_run_with_a_relative_path_says_so_on_the_recommendations_page(tmp_path, monkeypatch):
    from recviz.experiments import record
    from tests.test_app import ROOT, app

    write(tmp_path / "data" / "ratings.csv", RATINGS * 1)
    monkeypatch.chdir(tmp_path)
    old = RunConfig(dataset="data/ratings.csv", model="itempop", candidates=2)  # as older versions stored it
    assert old.dataset == "data/ratings.csv"
    record.train_here(old)
    monkeypatch.chdir(ROOT)
    at = app().switch_page("pages/recommendations.py").run()
    shown = " ".join(e.value for e in at.error)
    assert "relative path" in shown and "internal error" not in shown, shown


# ---- "Save name" took two clicks ------------------------------------------------------------------------
def test_save_name_is_one_click_typing_and_saving_go_together(monkeypatch):
    """In a browser the button was disabled until the typed name was committed (on blur), so the
    first click only committed it. Now the field and the button are one form: the click sends both."""
    from recviz.experiments import record
    from recviz.experiments.store import RunStore
    from tests.test_app import ROOT, app, assert_clean

    monkeypatch.chdir(ROOT)
    run_id = record.train_here(RunConfig.build(dataset="synthetic:users=30,items=80,interactions=400",
                                               model="itempop", candidates=20))[0]
    at = app().switch_page("pages/results.py").run()
    field, button = at.text_input(key=f"name_{run_id}"), at.button(key="save_name")
    assert not button.disabled  # clickable before the field is committed
    assert field.proto.form_id and field.proto.form_id == button.proto.form_id  # one submit sends both
    field.set_value("baseline")
    at.button(key="save_name").click().run()
    assert_clean(at)
    assert RunStore().get(run_id).name == "baseline"
    at.button(key="save_name").click().run()  # the same name again: nothing to do, nothing breaks
    assert_clean(at)
    assert RunStore().get(run_id).name == "baseline"


# ---- after a sweep, "the run training now (or the latest)" showed the sweep's first run -------------
def test_after_a_sweep_the_live_panel_shows_its_latest_run(monkeypatch):
    import os

    from recviz.experiments import launch
    from recviz.experiments.store import RunStore
    from tests.test_app import ROOT, assert_clean, sweep_form

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(launch, "submit", lambda config, sweep_id=None, **_:
                        RunStore().create(config, sweep_id=sweep_id))  # queue only: nothing trains here
    at = sweep_form("8,16", "0")
    at.button(key="launch").click().run()
    store = RunStore()
    ids = sorted(r.id for r in store.list())
    for run_id in ids:  # the sweep ran and finished
        store.mark_running(run_id, os.getpid())
        store.finish(run_id, {"metrics": {"HR@10": 0.5, "NDCG@10": 0.3}, "best_epoch": 1})
    at.run()
    assert_clean(at)
    assert at.selectbox(key="watch_run").value == "follow"
    watched = [h.value for h in at.subheader if h.value.startswith("Run #")]
    assert watched and watched[0].startswith(f"Run #{ids[-1]} "), watched


# ---- a CSV quote error named the wrong line -----------------------------------------------------------
def test_an_unclosed_quote_names_the_line_it_opens_on(tmp_path):
    from recviz.data.load import load

    path = write(tmp_path / "q.csv", 'user,item,rating\n1,10,4\n2,11,3\n3,"12,5\n4,13,2\n5,14,1\n')
    with pytest.raises(DataError) as err:
        load(str(path))
    assert err.value.row == 4 and "line 4" in str(err.value) and "never closed" in str(err.value)


# ---- Results' run labels omit shared settings, and there was no settings column -----------------------
def test_the_runs_table_has_a_settings_column_with_what_runs_share():
    from recviz.analysis import results

    def row(i, **values):
        config = RunConfig.build(dataset="synthetic", **values)
        return {"id": i, "model": config.model, "dataset": "synthetic", "protocol": "loo", "status": "done",
                "config": config.to_dict()}

    df = results.runs_table([row(1, model="gmf", emb_dim=16, epochs=3, seed=0),
                             row(2, model="gmf", emb_dim=16, epochs=3, seed=1, split_seed=0),
                             row(3, model="itempop")])
    assert df["settings"].tolist() == ["emb_dim=16, epochs=3", "emb_dim=16, epochs=3, seed=1, split_seed=0",
                                       "defaults"]
    # the labels name what tells the runs apart (both splits drawn with seed 0); the column says the rest
    assert results.run_labels(df).tolist()[:2] == ["#1 gmf · seed=0", "#2 gmf · seed=1"]
    assert results.settings_text("gmf", {**row(4, model="gmf", preset="paper")["config"]}).startswith("preset paper")
    assert results.settings_text("gone-model", {}) == ""


# ---- the sidebar said "cluster at auto" ---------------------------------------------------------------
def test_the_sidebar_names_the_cluster_auto_resolves_to(monkeypatch, tmp_path):
    from recviz.experiments.executors.ray import RayExecutor

    monkeypatch.setenv("RECVIZ_HOME", str(tmp_path))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    where = RayExecutor.where("auto")
    assert "cluster at auto" not in where and "running on this machine" in where
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    assert "the cluster at 10.0.0.5:6379 (RAY_ADDRESS)" in RayExecutor.where("auto")
    assert "the cluster at 10.0.0.9:6379:" in RayExecutor.where("10.0.0.9:6379")


# ---- a reload reset the Train form --------------------------------------------------------------------
def test_a_reload_keeps_the_train_form(monkeypatch):
    """A reload is a new session: the form's settings travel in the address (?form=…) and come back."""
    import json

    from streamlit.testing.v1 import AppTest

    from recviz.config import from_link, link_text
    from tests.test_app import ROOT, app, assert_clean

    monkeypatch.chdir(ROOT)
    at = app().switch_page("pages/train.py").run()
    at.selectbox(key="model").set_value("gmf").run()
    at.number_input(key="seed").set_value(3).run()
    at.text_input(key="split_seed").set_value("0").run()
    link = at.query_params["form"]
    link = link[0] if isinstance(link, list) else link
    assert json.loads(link) == {"model": "gmf", "seed": 3, "split_seed": 0}

    reloaded = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    reloaded.query_params["form"] = link
    reloaded.switch_page("pages/train.py").run()
    assert_clean(reloaded)
    assert reloaded.selectbox(key="model.link").value == "gmf"
    assert reloaded.number_input(key="seed.link").value == 3 and reloaded.text_input(key="split_seed.link").value == "0"
    # an edited or stale link is ignored, never an error
    assert from_link('{"model": "nope"}') is None and from_link("{not json") is None and from_link(None) is None
    assert link_text(RunConfig()) == '{"model":"neumf"}'


# ---- deleting a run dropped another from a picker -----------------------------------------------------
def test_deleting_a_run_leaves_the_other_runs_picker_labels_as_they_were(monkeypatch):
    """A browser sends a picker's choice back as the label it showed; Results' pickers named a run
    by the settings that told it apart from the others, so deleting one run renamed another and the
    choice no longer matched. A run's picker label now depends on that run alone."""
    from recviz.experiments import record
    from recviz.experiments.store import RunStore
    from tests.test_app import ROOT, app, assert_clean

    monkeypatch.chdir(ROOT)
    tiny = "synthetic:users=30,items=80,interactions=400"
    for emb in (8, 16):
        record.train_here(RunConfig.build(dataset=tiny, model="gmf", emb_dim=emb, epochs=1, candidates=20))
    record.train_here(RunConfig.build(dataset=tiny, model="itempop", candidates=20))
    pickers = ("compare_a", "compare_b", "beyond_runs", "slice_runs", "curve_runs")

    def _options(at, key):
        widget = at.selectbox(key=key) if key.startswith("compare") else at.multiselect(key=key)
        return widget.options

    at = app().switch_page("pages/results.py").run()
    before = {key: [o for o in _options(at, key) if o.startswith("#1 ")] for key in pickers}
    assert all(len(v) == 1 for v in before.values()), before
    RunStore().delete(2)
    at.run()
    assert_clean(at)
    after = {key: [o for o in _options(at, key) if o.startswith("#1 ")] for key in pickers}
    assert after == before
    assert before["compare_a"] == ["#1 gmf · emb_dim=8, epochs=1"]  # the run's own settings


# ---- Data page: re-saving identical content; a failed download's bar ----------------------------------
def test_saving_identical_content_again_says_nothing_new_was_saved(monkeypatch):
    from tests.test_app import ROOT, app, upload_and_save

    monkeypatch.chdir(ROOT)
    content = b"user,item,rating\n1,10,4\n1,11,5\n2,11,3\n"
    upload_and_save("same.csv", content, "same")
    at = app().switch_page("pages/data.py").run()
    at.file_uploader(key="upload").set_value(("same.csv", content, "text/csv")).run()
    at.text_input(key="save_as").set_value("same").run()
    at.checkbox(key="replace").check().run()  # "'same' exists (v1 …): save this as v2"
    at.button(key="save_upload").click().run()
    said = " ".join(e.value for e in at.info)
    assert "'same' v1 already holds exactly this content" in said and "runs use v1" in said
    assert not [s.value for s in at.success if "Saved 'same'" in s.value]


def test_a_failed_download_leaves_no_progress_bar_above_its_error(monkeypatch):
    from recviz.data import catalog
    from recviz.errors import RecvizError
    from tests.test_app import ROOT, app

    monkeypatch.chdir(ROOT)
    name = next(e.name for e in catalog.entries() if e.downloadable and catalog.cached_path(e.name) is None)

    def offline(which, progress=None, **_):
        progress(1_000_000, 4_000_000)
        raise RecvizError(f"could not download {which}: the network is unreachable", fix="try again when online")

    monkeypatch.setattr(catalog, "download", offline)
    at = app().switch_page("pages/data.py").run()
    at.selectbox(key="catalog_name").set_value(name).run()
    at.button(key="download").click().run()
    assert "network is unreachable" in " ".join(e.value for e in at.error)
    assert not at.get("progress"), [p.proto for p in at.get("progress")]
