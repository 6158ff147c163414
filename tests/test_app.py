"""Every page driven by Streamlit's AppTest, on an empty store and on a store with runs; the train
form launching a real worker; bad uploads; a killed worker and a cancel seen on the page."""

import os
import signal
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from recviz.config import RunConfig
from recviz.models import registry
from recviz.experiments import launch
from recviz.experiments.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["pages/data.py", "pages/train.py", "pages/results.py", "pages/recommendations.py"]
TINY = "synthetic:users=60,items=400,interactions=1500"


@pytest.fixture(autouse=True)
def app_env(monkeypatch):
    monkeypatch.chdir(ROOT)  # app.py reads assets/ and pages/ relative to the repo
    monkeypatch.setenv("RECVIZ_WORKER_THREADS", "1")
    yield
    for proc in launch.children():  # never leave a worker behind
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def app() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def test_home_and_every_page_render_on_an_empty_store():
    at = app()
    assert_clean(at)
    assert any("Recent runs" in h.value for h in at.subheader)
    for page in PAGES:
        at.switch_page(page).run()
        assert_clean(at)


def test_every_page_renders_with_runs_of_every_status():
    done = launch.submit(RunConfig.build(dataset=TINY, model="itemknn"))
    assert launch.wait(done, timeout=60).status == "done"
    store = RunStore()
    failed = store.create(RunConfig.build(dataset=TINY, model="itempop"))
    store.fail(failed, "worker process 123 exited without finishing")
    queued = store.create(RunConfig.build(dataset=TINY, model="itempop"))
    store.request_cancel(queued)  # a queued run is cancelled at once
    at = app()
    assert_clean(at)
    for page in PAGES:
        at.switch_page(page).run()
        assert_clean(at)
    at.switch_page("pages/results.py").run()
    assert len(at.get("plotly_chart")) >= 2, at.main


def test_train_form_launches_a_run_and_its_results_and_recommendations_show():
    at = app().switch_page("pages/train.py").run()
    at.selectbox(key="train_dataset").set_value("synthetic").run()
    at.selectbox(key="model").set_value("itemknn").run()
    at.radio(key="valid").set_value("random").run()
    at.button(key="launch").click().run()
    assert_clean(at)
    run_id = at.session_state["active_run"]
    assert launch.wait(run_id, timeout=90).status == "done"
    assert RunStore().get(run_id).config.valid == "random"
    at.run()  # the live fragment does not tick in AppTest: rerun to refresh
    assert_clean(at)
    assert any("HR@10" in m.label for m in at.metric)

    at.switch_page("pages/results.py").run()
    assert_clean(at)
    assert "itemknn" in at.dataframe[0].value["model"].tolist()

    at.switch_page("pages/recommendations.py").run()
    assert_clean(at)
    assert any(h.value.startswith("User ") for h in at.subheader)
    assert len(at.dataframe) >= 3  # history, held-out, top list


def upload_and_save(name: str, content: bytes, save_as: str) -> AppTest:
    """The Data page with `content` uploaded as `name` and the Save button pressed."""
    at = app().switch_page("pages/data.py").run()
    at.file_uploader(key="upload").set_value((name, content, "text/csv"))
    at.run()
    at.text_input(key="save_as").set_value(save_as).run()
    at.button(key="save_upload").click().run()
    assert_clean(at)
    return at


def sweep_form(values: str, seeds: str) -> AppTest:
    """The Train page set to sweep GMF's emb_dim over `values` and `seeds`."""
    at = app().switch_page("pages/train.py").run()
    at.selectbox(key="model").set_value("gmf").run()
    at.toggle(key="sweep_on").set_value(True).run()
    at.selectbox(key="sweep_param.gmf").set_value("emb_dim").run()
    at.text_input(key="sweep_values.gmf.emb_dim").set_value(values).run()
    at.text_input(key="sweep_seeds").set_value(seeds).run()
    return at


def test_an_invalid_upload_shows_the_error_with_its_line():
    at = upload_and_save("bad.csv", b"user,item,rating\n1,10,4\n2,11,five\n", "bad")
    errors = " ".join(e.value for e in at.error)
    assert "bad.csv" in errors and "line 3" in errors and "Fix" in errors


def test_a_good_upload_is_saved_and_becomes_the_current_dataset():
    at = app().switch_page("pages/data.py").run()
    data = (ROOT / "assets" / "example_ratings.csv").read_bytes()
    at.file_uploader(key="upload").set_value(("example_ratings.csv", data, "text/csv")).run()
    at.text_input(key="save_as").set_value("example").run()
    at.button(key="save_upload").click().run()
    assert_clean(at)
    assert any("Saved 'example'" in s.value for s in at.success)
    assert at.session_state["dataset"] == "example"


def _slow_run(monkeypatch) -> int:
    monkeypatch.setenv("RECVIZ_TEST_SLEEP_BEFORE_FIT", "30")  # test hook: the worker waits, cancellably
    run_id = launch.submit(RunConfig.build(dataset=TINY, model="itempop"))
    store = RunStore()
    deadline = time.time() + 30
    while store.get(run_id).status != "running" and time.time() < deadline:
        time.sleep(0.1)
    return run_id


@pytest.mark.slow
def test_a_killed_worker_shows_as_failed_on_the_page(monkeypatch):
    run_id = _slow_run(monkeypatch)
    at = app().switch_page("pages/train.py").run()
    at.session_state["active_run"] = run_id
    os.kill(RunStore().get(run_id).pid, signal.SIGKILL)
    time.sleep(0.5)
    at.run()
    assert_clean(at)
    assert RunStore().get(run_id).status == "failed"
    assert any("was killed by signal 9 (SIGKILL)" in e.value for e in at.error)


def test_cancel_from_the_page_is_cancelled_within_5_seconds(monkeypatch):
    run_id = _slow_run(monkeypatch)
    at = app().switch_page("pages/train.py").run()
    at.button(key=f"cancel_{run_id}").click().run()
    start = time.time()
    while RunStore().get(run_id).status != "cancelled" and time.time() - start < 5:
        time.sleep(0.1)
    assert RunStore().get(run_id).status == "cancelled"


def test_full_ranking_of_an_mlp_model_shows_its_cost_first():
    at = app().switch_page("pages/train.py").run()
    at.selectbox(key="model").set_value("neumf").run()
    at.radio(key="protocol").set_value("ratio").run()
    assert_clean(at)
    assert any("Full ranking runs NeuMF" in c.value for c in [*at.caption, *at.warning])


def test_one_click_and_the_untouched_form_train_what_the_cli_trains():
    """Home's button, the Train page's Launch with nothing changed, and `recviz train --dataset
    synthetic --model neumf` describe the very same run."""
    from recviz.cli import build_parser
    from recviz.commands.common import config_from_args

    cli = config_from_args(build_parser("neumf").parse_args(["train", "--dataset", "synthetic", "--model", "neumf"]))
    at = app()
    at.button(key="quick_start").click().run()
    home_run = at.session_state["active_run"]
    # the button went to the Train page, which points to the run at the top
    note = at.success[0].value  # as the run stands: queued, then training
    assert any(f"Run #{home_run} is {s}" in note for s in ("queued", "training")) and "(#watched-run)" in note
    assert any(h.value.startswith(f"Run #{home_run} ") for h in at.subheader)
    at = app().switch_page("pages/train.py").run()
    at.button(key="launch").click().run()
    assert_clean(at)
    form_run = at.session_state["active_run"]
    store = RunStore()
    for run_id in (home_run, form_run):
        store.request_cancel(run_id)  # the configs are what this test is about, not the training
    assert store.get(home_run).config == cli
    assert store.get(form_run).config == cli
    assert cli.options == registry.get("neumf").defaults()


LEGACY = ROOT / "tests" / "fixtures" / "store-7c9db7b"


def test_runs_stored_before_per_model_declarations_still_open(recviz_home):
    """A store written by the code before this change (tests/fixtures/store-7c9db7b/MAKE.py ran at
    7c9db7b): flat configs with old option names. Every run loads with its own options, its saved
    weights score exactly as stored, and Results and Recommendations open on it."""
    import shutil

    import numpy as np

    from recviz.experiments import artifacts

    shutil.copytree(LEGACY, recviz_home, dirs_exist_ok=True)
    store = RunStore()
    runs = {r.model: r for r in store.list()}
    assert set(runs) == {"itemknn", "gmf", "neumf", "dmf", "einmf", "eals", "mbnmf"}
    assert runs["neumf"].config.options["mlp_layers"] == "16,8" and runs["neumf"].config.options["lr"] == 0.01
    assert runs["dmf"].config.options["tower_layers"] == "16,8" and runs["dmf"].config.options["loss"] == "ce"
    assert runs["einmf"].config.options["hidden_layers"] == "8,4" and runs["einmf"].config.options["eta"] == 0.3
    assert runs["eals"].config.options["l2"] == 2.0 and runs["eals"].config.options["c0"] == 64.0
    assert runs["gmf"].config.options["l2"] == 1e-6 and runs["itemknn"].config.options["neighbors"] == 20
    for run in runs.values():
        run_dir = store.run_dir(run.id)
        model, _, _ = artifacts.load_model(run_dir)
        top = artifacts.load_topn(run_dir)
        users = np.arange(len(top["items"]))
        scores = np.take_along_axis(model.score_all(users), top["items"], axis=1)
        keep = np.isfinite(top["scores"])
        np.testing.assert_allclose(scores[keep], top["scores"][keep], rtol=1e-5, atol=1e-6, err_msg=run.model)

    at = app().switch_page("pages/results.py").run()
    assert_clean(at)
    assert set(at.dataframe[0].value["model"]) == set(runs)
    at.switch_page("pages/recommendations.py").run()
    for label in at.selectbox(key="rec_run").options:
        at.selectbox(key="rec_run").set_value(label).run()
        assert_clean(at)
        assert len(at.dataframe) >= 3, label


@pytest.mark.slow  # joins (tries to) a Ray cluster
def test_the_sidebar_says_where_runs_train_and_a_cluster_that_cannot_be_joined_is_said_at_once():
    """"Where runs train" on the Train page: choosing a Ray cluster joins it once (from a short-lived
    process); one where nothing answers is a warning there and then, and the choice is kept (the
    cluster may come up later). The sidebar of every page says where runs train — the choice just
    made, not the one before it — even on a page opened at its own address."""
    pytest.importorskip("ray")
    at = app()
    assert any(c.value.startswith("Runs train on this machine: ") for c in at.sidebar.caption)
    at.switch_page("pages/train.py").run()
    at.radio(key="executor").set_value("ray").run()
    at.text_input(key="ray_address").set_value("127.0.0.1:1").run()
    assert_clean(at)
    assert any("nothing answers at 127.0.0.1:1" in w.value for w in at.warning)
    assert any("cluster at 127.0.0.1:1: not joined yet" in c.value for c in at.caption)
    assert any("cluster at 127.0.0.1:1: not joined yet" in c.value for c in at.sidebar.caption)
    at.radio(key="executor").set_value("local").run()
    assert [c.value for c in at.sidebar.caption if c.value.startswith("Runs train")] == \
           [c.value for c in app().sidebar.caption if c.value.startswith("Runs train")]
    assert at.sidebar.caption[-1].value.startswith("Runs train on this machine: ")
    # Streamlit takes pages/ beside app.py for its legacy layout and runs a page opened at its own
    # address alone (no navigation, no sidebar): the page runs the app's frame instead
    alone = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    alone.switch_page("pages/results.py").run()
    assert_clean(alone)
    assert alone.sidebar.caption[-1].value.startswith("Runs train on this machine: ")


def test_no_page_imports_the_entry_script():
    """app.py runs the pages (by file); a module under pages/ that imported app, itself or through
    another module under pages/, would tie the two in an import cycle."""
    import ast

    imported = {}
    for path in (ROOT / "pages").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        imported[module] = names
    assert {"pages.data", "pages.train", "pages.ui.frame"} <= set(imported)
    for module in imported:
        seen, todo = {module}, [module]
        while todo:
            for name in imported[todo.pop()]:
                assert name.split(".")[0] != "app", f"{module} imports {name}"
                if name in imported and name not in seen:
                    seen.add(name)
                    todo.append(name)
