"""Hardening: bad stored rows, API errors, bounded reads, MLflow that cannot hang, the drain lock
and Ray requests a cluster can never satisfy."""

import json
import sqlite3

import pytest

from recviz.config import RunConfig
from recviz.errors import RecvizError
from recviz.experiments.store import RunStore


# ---- 5. one bad stored row never hides the others ------------------------------------------------
def _raw(store, run_id, **values):
    conn = sqlite3.connect(store.path)
    with conn:
        for k, v in values.items():
            conn.execute(f"UPDATE runs SET {k} = ? WHERE id = ?", (v, run_id))
    conn.close()


def test_bad_rows_are_listed_unreadable_and_the_rest_still_list(capsys):
    import recviz
    from recviz.cli import main

    store = RunStore()
    good = store.create(RunConfig.build(model="itempop", dataset="synthetic"))
    bad_json = store.create(RunConfig.build(model="itempop", dataset="synthetic"))
    unknown = store.create(RunConfig.build(model="itempop", dataset="synthetic"))
    bad_summary = store.create(RunConfig.build(model="itempop", dataset="synthetic"))
    _raw(store, bad_json, config="{not json")
    _raw(store, unknown, model="toy", config=json.dumps({"model": "toy", "options": {"factors": 8},
                                                          "dataset": "synthetic"}))
    _raw(store, bad_summary, status="done", summary="[1, 2")

    runs = {r.id: r for r in store.list()}
    assert set(runs) == {good, bad_json, unknown, bad_summary}
    assert runs[good].status == "queued"
    for rid in (bad_json, unknown, bad_summary):
        assert runs[rid].status == "unreadable" and runs[rid].error.startswith("unreadable: ")
    assert "toy" in runs[unknown].error

    frame = recviz.runs()
    assert sorted(frame["id"]) == sorted(runs) and set(frame.loc[frame["id"] == unknown, "status"]) == {"unreadable"}
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert "unreadable: " in out and str(good) in out
    assert main(["runs", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["runs"]) == 4
    with pytest.raises(RecvizError, match="unreadable"):
        recviz.open_run(unknown)


def test_an_unreadable_queued_run_is_failed_not_trained():
    store = RunStore()
    bad = store.create(RunConfig.build(model="itempop", dataset="synthetic"))
    good = store.create(RunConfig.build(model="itempop", dataset="synthetic"))
    _raw(store, bad, config="{")
    claimed = store.next_queued()
    assert claimed.id == good
    with sqlite3.connect(store.path) as conn:
        status, error = conn.execute("SELECT status, error FROM runs WHERE id = ?", (bad,)).fetchone()
    assert status == "failed" and error.startswith("unreadable: ")


# ---- 6. the API raises RecvizErrors only ---------------------------------------------------------
def test_api_bad_inputs_are_recviz_errors():
    import pandas as pd

    import recviz

    frame = pd.DataFrame([[1, 2, 3], [2, 3, 4]], columns=["user", "item", "user"])
    with pytest.raises(RecvizError, match="more than one column named 'user'"):
        recviz.load(frame)
    with pytest.raises(RecvizError, match="no run"):
        recviz.open_run(2 ** 70)
    with pytest.raises(RecvizError, match="whole number"):
        recviz.open_run("seven")
    with pytest.raises(RecvizError, match="cannot read"):
        recviz.load("/proc/self/mem")
    with pytest.raises(RecvizError, match="text, not int"):
        recviz.train("synthetic", model="itempop", mlflow=123)


def test_a_damaged_model_pt_is_a_recviz_error_on_recommend():
    import recviz

    run = recviz.train(recviz.load("synthetic"), model="itempop")
    run_id = run.save()
    user = run.recommend(run._result.split.data.user_ids[0])  # noqa: F841 — it works before
    weights = RunStore().run_dir(run_id) / "model.pt"
    data = weights.read_bytes()
    for damaged in (data[: len(data) // 2], b"garbage"):
        weights.write_bytes(damaged)
        with pytest.raises(RecvizError, match="model.pt is damaged"):
            recviz.open_run(run_id).recommend(run._result.split.data.user_ids[0])


# ---- 4. stored files are read within bounds --------------------------------------------------------
def test_parquet_with_too_many_row_groups_is_refused_from_its_footer(tmp_path, monkeypatch):
    import pandas as pd

    from recviz.data.load import load
    from recviz.errors import DataError

    path = tmp_path / "many.parquet"
    pd.DataFrame({"user": range(200), "item": range(200)}).to_parquet(path, row_group_size=1)
    monkeypatch.setenv("RECVIZ_MAX_ROW_GROUPS", "50")
    with pytest.raises(DataError, match="200 row groups, more than 50"):
        load(str(path))
    monkeypatch.setenv("RECVIZ_MAX_ROW_GROUPS", "500")
    assert load(str(path)).n_users == 200


def _npz_with(path, name, header_shape, payload):
    import io
    import zipfile

    import numpy as np

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": header_shape})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, buf.getvalue() + payload)


def test_npz_bombs_are_refused_from_the_zip_directory_before_loading(tmp_path):
    from recviz.experiments.artifacts import _npz

    bomb = tmp_path / "topn.npz"
    _npz_with(bomb, "items.npy", (4 << 20,), bytes(32 << 20))  # 32 MiB of zeros packs to ~32 KiB
    assert bomb.stat().st_size < 100_000
    with pytest.raises(RecvizError, match="topn.npz is damaged.*unpacks to 33,554,5"):
        _npz(bomb)
    liar = tmp_path / "ids.npz"
    _npz_with(liar, "user_ids.npy", (1 << 31,), bytes(80))  # a header claiming 16 GiB
    with pytest.raises(RecvizError, match="ids.npz is damaged.*claims 17,179,869,184 bytes"):
        _npz(liar)


def test_json_is_size_checked_before_it_is_read(tmp_path, monkeypatch):
    from recviz.experiments.artifacts import load_meta
    from recviz.files import read_json

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "meta.json").write_text('{"n_users": 1, "n_items": 1}' + " " * 100_000)
    monkeypatch.setenv("RECVIZ_MAX_JSON_BYTES", "10000")
    with pytest.raises(RecvizError, match="meta.json is damaged.*more than the 10,000"):
        load_meta(run_dir)
    sparse = tmp_path / "sparse.json"
    with open(sparse, "wb") as fh:  # 1.6 GB on paper, nothing on disk
        fh.truncate(1_600_000_000)
    monkeypatch.delenv("RECVIZ_MAX_JSON_BYTES")
    with pytest.raises(ValueError, match="more than the 67,108,864"):
        read_json(sparse)


# ---- 1. MLflow never hangs, and says which store ---------------------------------------------------
def _done_run(store):
    import os

    run_id = store.create(RunConfig.build(model="itempop", dataset="synthetic"), claim=os.getpid())
    store.finish(run_id, {"metrics": {"HR@10": 0.5}, "epochs_run": 1})
    return run_id


@pytest.mark.parametrize("uri, says", [("bogus://x", "scheme 'bogus'"), ("ftp://host/x", "scheme 'ftp'"),
                                       ("   ", "blank"), (123, "text, not int")])
def test_mlflow_uris_mlflow_cannot_use_are_refused_before_training(uri, says, capsys):
    from recviz.cli import main
    from recviz.experiments import tracking

    with pytest.raises(RecvizError, match=says):
        tracking.check(uri)
    if isinstance(uri, str):
        assert main(["train", "--dataset", "synthetic", "--model", "itempop", "--mlflow", uri]) == 2
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err and "Fix:" in err
        assert RunStore().list() == []  # nothing trained, nothing stored


def test_a_bad_mlflow_tracking_uri_variable_and_unusable_sqlite_stores_are_refused(tmp_path, monkeypatch):
    from recviz.experiments import tracking

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "bogus://y")
    with pytest.raises(RecvizError, match="bogus://y.*MLFLOW_TRACKING_URI"):
        tracking.check(None)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    with pytest.raises(RecvizError, match=f"sqlite:///{tmp_path} is a folder"):
        tracking.check(f"sqlite:///{tmp_path}")
    with pytest.raises(RecvizError, match="does not exist"):
        tracking.check(f"sqlite:///{tmp_path}/nowhere/mlflow.db")

    def read_only(*a, **k):  # root may write a chmod-ed folder: a read-only mount is what refuses it
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr("os.open", read_only)
    with pytest.raises(RecvizError, match="mlflow.db cannot be written.*Read-only"):
        tracking.check(f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(__import__("sys").modules, "mlflow", raising=False)
    with pytest.raises(RecvizError, match=f"sqlite:///{tmp_path}/mlflow.db cannot be written"):
        tracking.check(None)  # MLflow's default store, ./mlflow.db


def test_an_export_to_a_dead_or_silent_server_fails_fast_naming_the_uri(monkeypatch, capsys):
    import socket
    import time

    pytest.importorskip("mlflow")
    from recviz.experiments import tracking

    store = RunStore()
    run_id = _done_run(store)
    start = time.monotonic()
    with pytest.raises(RecvizError, match=r"MLflow at http://127.0.0.1:9: nothing answers"):
        tracking.export(store, [run_id], "http://127.0.0.1:9")
    silent = socket.socket()  # accepts connections (the backlog) and never answers a request
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    monkeypatch.setattr(tracking, "HTTP_TIMEOUT_S", 1)
    uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
    try:
        with pytest.raises(RecvizError, match=f"could not log to MLflow at {uri}") as err:
            tracking.export(store, [run_id], uri)
        assert "runs.db" not in str(err.value) and "recviz export --mlflow" in str(err.value)
        # a run that asked for it: one line on stderr, no traceback, the run stays done
        tracking.request(store.run_dir(run_id), uri)
        assert tracking.export_requested(store, run_id) is None
    finally:
        silent.close()
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1 and uri in err
    assert store.get(run_id).status == "done"
    assert time.monotonic() - start < 60  # MLflow's own retries took minutes
    import os

    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ  # set for the export only


@pytest.mark.slow  # creates a real MLflow SQLite store (~9 s)
def test_a_failed_export_ends_its_mlflow_run_failed(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    from recviz.experiments import tracking

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    store = RunStore()
    run_id = _done_run(store)
    (store.run_dir(run_id) / "meta.json").write_text("{}")

    def broken(self, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mlflow.tracking.MlflowClient, "log_artifact", broken)
    with pytest.raises(RecvizError, match=f"could not log to MLflow at {uri}: .*No space left"):
        tracking.export(store, [run_id], uri)
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    [logged] = client.search_runs([client.get_experiment_by_name("recviz").experiment_id])
    assert logged.info.status == "FAILED"


# ---- 2. Ray refuses what the cluster can never satisfy ----------------------------------------------
def test_ray_refuses_a_run_asking_for_more_than_the_cluster_has(monkeypatch):
    from recviz.experiments.executors import ray as ray_executor

    class TwoCpuCluster:
        def cluster_resources(self):
            return {"CPU": 2.0, "memory": 1e9}

    monkeypatch.setattr(ray_executor, "connect", lambda address: TwoCpuCluster())
    executor = ray_executor.RayExecutor(address="127.0.0.1:6379")
    store = RunStore()
    with pytest.raises(RecvizError, match="asks for more than the cluster has: 64 CPUs .* has 2 in all"):
        executor.execute(store, [RunConfig.build(model="gmf", dataset="synthetic", threads=64)])
    with pytest.raises(RecvizError, match="a GPU .* has none"):
        executor.execute(store, [RunConfig.build(model="gmf", dataset="synthetic", threads=1, device="cuda")])
    assert store.list() == []  # refused before any run was stored
