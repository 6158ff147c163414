"""MLflow tracking against a real local MLflow store (SQLite in a temporary directory): a run and
a 3-value sweep logged by the CLI, read back with `mlflow.search_runs` and `MlflowClient`."""

import json

import pytest

from recviz.cli import main
from recviz.experiments import tracking
from recviz.experiments.store import RunStore

mlflow = pytest.importorskip("mlflow")
TINY = "synthetic:users=60,items=300,interactions=1500"


@pytest.fixture
def uri(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def cli_json(capsys, *argv) -> dict:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.slow  # trains and logs to a real MLflow store
def test_a_trained_run_is_logged_with_its_config_epochs_metrics_and_weights(uri, capsys, tmp_path):
    summary = cli_json(capsys, "train", "--dataset", TINY, "--model", "gmf", "--epochs", "3", "--patience", "5",
                       "--threads", "1", "--mlflow", uri, "--json")
    run = RunStore().get(summary["run_id"])
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    found = client.search_runs([client.get_experiment_by_name("recviz").experiment_id],
                               filter_string=f"tags.`recviz.run_id` = '{run.id}'")
    assert len(found) == 1
    logged = found[0]
    params = logged.data.params
    assert params == tracking.params_of(run.config)
    assert params["model"] == "gmf" and params["seed"] == str(run.config.seed)
    assert params["emb_dim"] == str(run.config.options["emb_dim"]) and params["epochs"] == "3"
    assert logged.data.tags["protocol"] == "loo"
    history = client.get_metric_history(logged.info.run_id, "train_loss")
    assert [m.step for m in history] == [1, 2, 3]
    assert len(client.get_metric_history(logged.info.run_id, "valid_NDCG_at_10")) == 3
    assert logged.data.metrics["HR_at_10"] == pytest.approx(summary["metrics"]["HR@10"])
    names = {a.path for a in client.list_artifacts(logged.info.run_id, "recviz")}
    assert {"recviz/model.pt", "recviz/topn.npz", "recviz/ids.npz"} <= names
    assert logged.info.artifact_uri.startswith((tmp_path / "mlruns").as_uri())  # beside the database


@pytest.mark.slow  # trains and logs to a real MLflow store
def test_a_sweep_is_a_parent_run_with_a_child_per_value(uri, capsys):
    table = cli_json(capsys, "sweep", "--dataset", TINY, "--model", "gmf", "--epochs", "2", "--threads", "1",
                     "--param", "emb_dim", "--values", "4,8,16", "--mlflow", uri, "--json")
    mlflow.set_tracking_uri(uri)
    try:
        frame = mlflow.search_runs(experiment_names=["recviz"])  # a pandas DataFrame
    finally:
        mlflow.set_tracking_uri(None)
    parents = frame[frame["tags.recviz.role"] == "sweep"]
    assert len(parents) == 1 and parents["tags.recviz.sweep_id"].iloc[0] == table["sweep_id"]
    children = frame[frame["tags.mlflow.parentRunId"] == parents["run_id"].iloc[0]]
    assert sorted(children["params.emb_dim"].astype(int)) == [4, 8, 16]
    assert set(children["tags.recviz.run_id"].astype(int)) == {r["run_id"] for r in table["rows"]}


@pytest.mark.slow  # trains and logs to a real MLflow store
def test_export_sends_stored_runs_later_and_refuses_unfinished_ones(uri, capsys):
    first = cli_json(capsys, "train", "--dataset", TINY, "--model", "itempop", "--json")["run_id"]
    sent = cli_json(capsys, "export", "--mlflow", uri, str(first), "--json")
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    logged = client.get_run(sent["runs"][str(first)])
    assert logged.data.tags["recviz.run_id"] == str(first) and "HR_at_10" in logged.data.metrics
    queued = RunStore().create(RunStore().get(first).config)
    assert main(["export", "--mlflow", uri, str(queued)]) == 2
    assert "only finished runs" in capsys.readouterr().err


@pytest.mark.slow  # trains and logs to a real MLflow store
def test_the_api_logs_a_run_it_saves(uri):
    import recviz

    run = recviz.train(TINY, model="itempop", mlflow=uri)
    assert run.id is not None
    logged = mlflow.tracking.MlflowClient(tracking_uri=uri).get_run(run.mlflow_run_id)
    assert logged.data.params == tracking.params_of(RunStore().get(run.id).config)


def test_metric_names_lose_their_at_sign():
    assert tracking.metric_name("HR@10") == "HR_at_10"
    assert tracking.metric_name("valid_NDCG@5") == "valid_NDCG_at_5"


def test_without_mlflow_the_flag_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setattr(tracking, "installed", lambda: False)
    assert main(["train", "--dataset", TINY, "--model", "itempop", "--mlflow"]) == 2
    err = capsys.readouterr().err
    assert "MLflow is not installed" in err and "pip install" in err
    assert RunStore().list() == []  # refused before anything was trained or stored
    import recviz
    from recviz.errors import RecvizError

    with pytest.raises(RecvizError, match="(?s)not installed.*pip install"):
        recviz.train(TINY, model="itempop", mlflow=True)


@pytest.mark.slow  # trains and logs to a real MLflow store
def test_the_train_page_switch_logs_the_run_the_worker_trains(uri, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from recviz.experiments import launch
    from tests.test_app import ROOT

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("RECVIZ_WORKER_THREADS", "1")
    try:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
        at.switch_page("pages/train.py").run()
        at.selectbox(key="model").set_value("itemknn").run()
        at.toggle(key="mlflow_on").set_value(True).run()
        at.text_input(key="mlflow_uri").set_value(uri).run()
        at.button(key="launch").click().run()
        assert not at.exception, [e.value for e in at.exception]
        run_id = at.session_state["active_run"]
        assert launch.wait(run_id, timeout=90).status == "done"
        for proc in launch.children():  # the worker logs the run right after marking it done
            proc.wait(60)
        client = mlflow.tracking.MlflowClient(tracking_uri=uri)
        found = client.search_runs([client.get_experiment_by_name("recviz").experiment_id],
                                   f"tags.`recviz.run_id` = '{run_id}'")
        assert found, (RunStore().run_dir(run_id) / "worker.log").read_text()
        assert found[0].data.params["model"] == "itemknn"
    finally:
        for proc in launch.children():
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)


@pytest.mark.slow  # trains and logs to a real MLflow store
def test_without_a_uri_mlflow_picks_its_own_default_store(uri, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # MLflow's own way to name its default
    run_id = cli_json(capsys, "train", "--dataset", TINY, "--model", "itempop", "--json")["run_id"]
    sent = cli_json(capsys, "export", "--mlflow", str(run_id), "--json")  # a bare number is a run id
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    assert client.get_run(sent["runs"][str(run_id)]).data.tags["recviz.run_id"] == str(run_id)


@pytest.mark.slow  # three processes exporting to a real MLflow store at once
def test_a_sweeps_runs_exported_at_once_by_three_processes_all_land_under_one_parent(uri, capsys, tmp_path):
    """Runs trained side by side finish (and export) together. Three `recviz export`s started at
    once into a new SQLite store: each creates MLflow's tables, the experiment and the sweep's parent
    unless exports take turns (was: "duplicate column name", a lost run, or two parents)."""
    import os
    import subprocess
    import sys

    table = cli_json(capsys, "sweep", "--dataset", TINY, "--model", "gmf", "--epochs", "1", "--threads", "1",
                     "--param", "emb_dim", "--values", "4,8,16", "--json")  # no MLflow yet: the exports below make the store
    ids = [str(row["run_id"]) for row in table["rows"]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    procs = [subprocess.Popen([sys.executable, "-m", "recviz", "export", "--mlflow", uri, run_id], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for run_id in ids]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-2000:] for _, err in outs]
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("recviz").experiment_id])
    parents = [r for r in runs if r.data.tags.get("recviz.role") == "sweep"]
    assert len(parents) == 1
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert sorted(r.data.tags["recviz.run_id"] for r in children) == sorted(ids)
