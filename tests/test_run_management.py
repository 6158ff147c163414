"""Looking after runs: naming, deleting (asked first, files and all) and re-opening a run's settings
in the Train form — on the Results page and as `recviz` commands."""

import json
import subprocess
import sys

import pytest

from recviz.config import RunConfig
from recviz.experiments import record
from recviz.experiments.store import RunStore
from tests.test_app import app, app_env, assert_clean  # noqa: F401  (app_env: the fixture)

TINY = "synthetic:users=60,items=400,interactions=1500"


def _cli(*args, stdin=subprocess.DEVNULL):
    return subprocess.run([sys.executable, "-m", "recviz", *args], capture_output=True, text=True, stdin=stdin,
                          timeout=120)


def _results_with(run_id):
    at = app().switch_page("pages/results.py").run()
    at.selectbox(key="manage_run").set_value(run_id).run()
    return at


def test_a_run_named_on_results_is_named_everywhere():
    run_id = record.train_here(RunConfig.build(dataset=TINY, model="itempop"))[0]
    at = _results_with(run_id)
    at.text_input(key=f"name_{run_id}").set_value("  popularity   baseline ")  # typed, then one click: a form
    at.button(key="save_name").click().run()
    assert_clean(at)
    assert RunStore().get(run_id).name == "popularity baseline"
    assert any(o.startswith(f"#{run_id} popularity baseline") for o in at.multiselect(key="curve_runs").options)
    listed = json.loads(_cli("runs", "--json").stdout)["runs"]
    assert [r["name"] for r in listed if r["id"] == run_id] == ["popularity baseline"]


def test_deleting_a_run_asks_first_then_removes_it_with_its_files():
    keep = record.train_here(RunConfig.build(dataset=TINY, model="itempop"))[0]
    gone = record.train_here(RunConfig.build(dataset=TINY, model="itemknn"))[0]
    store = RunStore()
    assert store.run_dir(gone).exists()
    at = _results_with(gone)
    at.button(key="delete").click().run()
    assert store.get(gone).status == "done"  # nothing happens before the confirmation
    assert any(f"Delete run #{gone}" in w.value for w in at.warning)
    at.button(key="delete_no").click().run()
    assert store.get(gone).status == "done" and not at.warning
    at.button(key="delete").click().run()
    at.button(key="delete_yes").click().run()
    assert_clean(at)
    assert [r.id for r in store.list()] == [keep]
    assert not store.run_dir(gone).exists() and store.run_dir(keep).exists()


def test_reopening_a_run_fills_the_train_form_with_its_settings():
    run_id = RunStore().create(RunConfig.build(dataset=TINY, model="gmf", protocol="ratio", seed=7,
                                               emb_dim=24, lr=0.003, epochs=4))
    at = _results_with(run_id)
    at.button(key="reopen_button").click().run()
    at.switch_page("pages/train.py").run()  # what st.switch_page does in the browser
    assert_clean(at)
    suffix = f".r{run_id}"
    assert at.selectbox(key="model" + suffix).value == "gmf"
    assert at.radio(key="protocol" + suffix).value == "ratio"
    assert at.number_input(key="opt.gmf.None.emb_dim" + suffix).value == 24
    assert at.text_input(key="opt.gmf.None.lr" + suffix).value == "0.003"
    assert at.number_input(key="seed" + suffix).value == 7
    assert any(f"run #{run_id}'s settings" in i.value for i in at.info)
    at.button(key="reset_form").click().run()
    assert at.selectbox(key="model").value == "neumf"  # back to the defaults


@pytest.mark.slow  # six commands end to end
def test_cli_rename_cancel_and_delete():
    store = RunStore()
    done = record.train_here(RunConfig.build(dataset=TINY, model="itempop"))[0]
    queued = store.create(RunConfig.build(dataset=TINY, model="gmf"))
    assert _cli("rename", str(done), "first try").returncode == 0
    assert store.get(done).name == "first try"
    out = _cli("cancel", str(queued))
    assert out.returncode == 0 and "cancelled" in out.stdout and store.get(queued).status == "cancelled"
    refused = _cli("delete", str(done))  # no terminal to ask on, no --yes
    assert refused.returncode == 2 and "--yes" in refused.stderr and store.get(done).status == "done"
    assert _cli("delete", str(done), str(queued), "--yes").returncode == 0
    assert store.list() == [] and not store.run_dir(done).exists()
    missing = _cli("delete", "999", "--yes")
    assert missing.returncode == 2 and "no run 999" in missing.stderr and "Traceback" not in missing.stderr


def test_a_run_name_is_bounded():
    run_id = RunStore().create(RunConfig.build(dataset=TINY, model="itempop"))
    out = _cli("rename", str(run_id), "x" * 101)
    assert out.returncode == 2 and "at most 100 characters" in out.stderr
