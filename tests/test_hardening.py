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
