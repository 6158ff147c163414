"""Rough edges from the "Understanding" issue seen on the app's pages, each pinned by a test that
drives the page (streamlit AppTest, helpers from tests/test_app.py); the library-side ones are in
tests/test_rough_edges.py."""

from recviz.config import RunConfig
from tests.helpers import write
from tests.test_rough_edges import RATINGS


# ---- page messages name the page's widgets, not CLI flags ---------------------------------------
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


# ---- a dataset referenced by a relative path --------------------------------------------------------
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
