"""Real worker processes against a real store: a run that finishes and whose artifacts reload, a
worker killed mid-run, cancel, a bad config, and the one-at-a-time queue. Plus the worker's
bookkeeping in-process (epochs reach the store, errors become readable text)."""

import os
import signal
import time

import numpy as np
import pytest

from recviz.training.report import EpochReport
from recviz.config import RunConfig
from recviz.data.interactions import Interactions
from recviz.errors import ModelError, RecvizError
from recviz.eval.protocols import recommend
from recviz.models import registry
from recviz.experiments import artifacts, launch, worker
from recviz.experiments.store import RunStore
from recviz.experiments import experiment
from recviz.experiments.executors.local import TEST_SLEEP_ENV
from tests.helpers import random_interactions

# real worker processes killed, stopped and timed: run with nothing beside them
pytestmark = pytest.mark.alone

KNN = RunConfig.build(dataset="synthetic", model="itemknn", neighbors=50)


@pytest.fixture(autouse=True)
def stop_workers():
    """Kill every worker this test started (they run in their own sessions: nothing else would)."""
    yield
    for proc in launch.children():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    launch.reap_children()


def wait_until_running(run_id, timeout=20.0):
    store, deadline = RunStore(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = store.get(run_id)
        if run.status == "running" and run.pid:
            return run
        assert not run.finished, f"run ended early: {run.status} {run.error}"
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} never started")


def test_submitted_run_finishes_and_its_artifacts_reload():
    run_id = launch.submit(KNN)
    run = launch.wait(run_id, timeout=60)
    assert run.status == "done", run.error
    assert run.device == "cpu" and run.summary["device"] == "cpu"
    assert set(run.summary["metrics"]) >= {"HR@10", "NDCG@10"} and run.summary["best_epoch"] == 1

    run_dir = RunStore().run_dir(run_id)
    topn = artifacts.load_topn(run_dir)
    model, meta, ids = artifacts.load_model(run_dir)
    assert topn["items"].shape == (meta["n_users"], 20) and len(ids["user_ids"]) == meta["n_users"]
    users = np.array([0, 7, 123, meta["n_users"] - 1])
    reloaded = np.take_along_axis(model.score_all(users), topn["items"][users], axis=1)
    np.testing.assert_allclose(reloaded, topn["scores"][users], rtol=1e-6)
    # the same run in this process ranks the same items, train and valid items excluded
    fresh = experiment.run(KNN)
    top, _ = recommend(fresh.model, users, fresh.split.known_before("test"), 20, seed=0, with_scores=True)
    np.testing.assert_array_equal(top, topn["items"][users])

    user = str(ids["user_ids"][7])
    table = artifacts.recommend_for(run_dir, user, k=5)
    assert list(table.columns[:4]) == ["rank", "item", "title", "score"] and list(table["rank"]) == [1, 2, 3, 4, 5]
    assert table["title"].str.startswith("Item ").all()  # synthetic items have titles
    assert table["score"].is_monotonic_decreasing
    with pytest.raises(RecvizError, match="'nobody' is not in this run's data"):
        artifacts.recommend_for(run_dir, "nobody")


@pytest.mark.slow
def test_a_killed_worker_leaves_a_failed_run_with_its_reason(monkeypatch):
    monkeypatch.setenv(TEST_SLEEP_ENV, "30")
    run_id = launch.submit(KNN)
    pid = wait_until_running(run_id).pid
    os.kill(pid, signal.SIGKILL)  # no wait(): a zombie child must count as dead too
    store, deadline = RunStore(), time.monotonic() + 5
    while store.reap() != [run_id]:
        assert time.monotonic() < deadline, "never reaped"
        time.sleep(0.05)
    run = store.get(run_id)
    assert run.status == "failed"
    assert run.error.startswith(f"worker process {pid} exited without finishing (killed or crashed) during epoch 1")
    assert [r.id for r in store.list()] == [run_id] and store.epochs(run_id).empty  # still readable


def test_cancel_stops_a_running_run_within_5_seconds(monkeypatch):
    monkeypatch.setenv(TEST_SLEEP_ENV, "60")
    run_id = launch.submit(KNN)
    wait_until_running(run_id)
    start = time.monotonic()
    assert RunStore().request_cancel(run_id) == "running"
    run = launch.wait(run_id, timeout=5)
    assert run.status == "cancelled" and time.monotonic() - start < 5
    assert not (RunStore().run_dir(run_id) / "meta.json").exists()


@pytest.mark.slow
def test_sigterm_counts_as_cancel(monkeypatch):
    monkeypatch.setenv(TEST_SLEEP_ENV, "60")
    run_id = launch.submit(KNN)
    os.kill(wait_until_running(run_id).pid, signal.SIGTERM)
    assert launch.wait(run_id, timeout=5).status == "cancelled"


@pytest.mark.skipif("gmf" not in registry.MODELS, reason="no neural models yet")
def test_a_neural_run_streams_epochs_and_cancels_between_batches():
    config = RunConfig.build(dataset="synthetic", model="gmf", epochs=500, batch_size=64)
    run_id = launch.submit(config, threads=1)
    store, deadline = RunStore(), time.monotonic() + 30
    while store.epochs(run_id).empty:  # epochs arrive while the run is still running
        assert time.monotonic() < deadline and not store.get(run_id).finished, store.get(run_id).error
        time.sleep(0.1)
    # the worker's thread count is this machine's business: the stored config is the one submitted
    assert store.get(run_id).status == "running" and store.get(run_id).config == config
    store.request_cancel(run_id)
    run = launch.wait(run_id, timeout=5)
    assert run.status == "cancelled" and run.device == "cpu"
    frame = store.epochs(run_id)
    assert len(frame) < 500 and frame["valid_NDCG@10"].notna().all()


def test_a_bad_config_fails_with_a_readable_message():
    bad_data = launch.submit(RunConfig.build(dataset="no-such-dataset", model="itempop"))
    run = launch.wait(bad_data, timeout=30)
    assert run.status == "failed" and "'no-such-dataset' is neither" in run.error and "Fix:" in run.error
    assert "Traceback" not in run.error
    with pytest.raises(ModelError, match="unknown model 'no-such-model'"):  # never reaches the queue
        RunConfig.build(dataset="synthetic", model="no-such-model")
    log = (RunStore().run_dir(bad_data) / "worker.log").read_text()
    assert "Traceback" in log and "no-such-dataset" in log


def test_the_queue_trains_one_run_at_a_time_with_one_slot(monkeypatch):
    monkeypatch.setenv("RECVIZ_LOCAL_SLOTS", "1")  # several at once: tests/test_pool.py
    ids = [launch.submit(RunConfig.build(dataset="synthetic", model="itempop", seed=s)) for s in (1, 2)]
    runs = [launch.wait(i, timeout=60) for i in ids]
    assert [r.status for r in runs] == ["done", "done"], [r.error for r in runs]
    assert runs[0].pid == runs[1].pid  # one drain worker took both
    assert runs[1].started_at >= runs[0].finished_at
    deadline = time.monotonic() + 10
    while launch.drain_pid() is not None:  # and it leaves once the queue is empty
        assert time.monotonic() < deadline, "the drain worker never exited"
        time.sleep(0.05)


def test_a_second_drain_steps_aside_while_one_holds_the_lock():
    fd = launch.try_lock()  # stands in for a live drain worker
    try:
        assert launch.drain_pid() is not None
        assert worker.drain() == 0 and launch.ensure_drain() is None
    finally:
        launch.unlock(fd)
    assert launch.drain_pid() is None


def test_epochs_reach_the_store_and_errors_become_readable_text(monkeypatch, recviz_home):
    """In-process: a fake iterative training that reports epochs, then one that crashes."""
    real_run = experiment.run

    def with_epochs(config, on_epoch=None, should_stop=None, **kw):
        history = [EpochReport.from_dict({"epoch": e, "train_loss": 1.0 / e, "valid": {"NDCG@10": 0.1 * e},
                                          "seconds": 0.1, "samples_per_second": 500.0 * e}) for e in (1, 2)]
        for report in history:
            on_epoch(report)
        result = real_run(config)
        result.history = history
        return result

    store = RunStore()
    monkeypatch.setattr(experiment, "run", with_epochs)
    ok = store.create(RunConfig.build(dataset="synthetic", model="itempop"))
    assert worker.execute(ok, store=store) == "done"
    assert store.epochs(ok)["valid_NDCG@10"].tolist() == pytest.approx([0.1, 0.2])
    assert store.get(ok).summary["samples_per_second"] == 750.0

    def crash(config, **kw):
        return {}["missing"]

    monkeypatch.setattr(experiment, "run", crash)
    bad = store.create(RunConfig.build(dataset="synthetic", model="itempop"))
    assert worker.execute(bad, store=store) == "failed"
    error = store.get(bad).error
    assert error.startswith("KeyError: 'missing'\n") and "in crash" in error and "worker.log" in error


def test_artifacts_without_titles_exclude_seen_items(recviz_home):
    data = random_interactions(n_users=30, n_items=60)
    Interactions.save(data, recviz_home / "uploads" / "tiny.npz")
    result = experiment.run(RunConfig.build(dataset="tiny", model="itempop", protocol="ratio"))
    run_dir = artifacts.save(recviz_home / "runs" / "x", result, top_n=10)
    topn = artifacts.load_topn(run_dir)
    seen = result.split.known_before("test")
    for u in range(data.n_users):
        row, item = seen.rows(np.array([u]))
        assert not set(item) & set(topn["items"][u][np.isfinite(topn["scores"][u])])
    table = artifacts.recommend_for(run_dir, data.user_ids[3], k=3)
    assert table["title"].tolist() == [f"item {i}" for i in table["item"]]
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(artifacts.FILES)  # no temp files left


@pytest.mark.slow
@pytest.mark.parametrize("slots", ["1", "2"])
def test_a_killed_queue_worker_strands_nothing_the_next_app_start_drains_the_queue(monkeypatch, slots):
    """One slot: the drain trains run 1 and holds 2 and 3 queued; killed, run 1 fails and the next
    drain trains 2 and 3. Two slots: runs 1 and 2 may both be in flight in the drain's worker
    processes when it is killed — those fail with it; what was still queued is trained. Either
    way every run ends."""
    from streamlit.testing.v1 import AppTest

    from tests.test_app import ROOT

    monkeypatch.setenv("RECVIZ_LOCAL_SLOTS", slots)
    store = RunStore()
    ids = [store.create(RunConfig.build(dataset="synthetic", model="itempop", seed=s)) for s in (1, 2, 3)]
    monkeypatch.setenv("RECVIZ_TEST_SLEEP_BEFORE_FIT", "60")  # the first run waits, cancellably
    launch.ensure_drain()  # one queue worker, as `submit` starts it
    first = wait_until_running(ids[0])
    os.kill(first.pid, signal.SIGKILL)  # the drain worker itself, with two runs still queued
    launch.reap_children()
    monkeypatch.delenv("RECVIZ_TEST_SLEEP_BEFORE_FIT")
    monkeypatch.chdir(ROOT)
    AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()  # the app starts again
    runs = [launch.wait(i, timeout=60) for i in ids]
    assert runs[0].status == "failed" and "was killed by signal 9 (SIGKILL)" in runs[0].error
    if slots == "1":
        assert [r.status for r in runs[1:]] == ["done", "done"]
    else:
        assert runs[1].status in ("failed", "done") and runs[2].status == "done"


@pytest.mark.slow
def test_recviz_runs_right_after_a_killed_cli_run_shows_it_failed():
    import subprocess
    import sys

    from tests.test_cli import last_json, recviz

    proc = subprocess.Popen([sys.executable, "-m", "recviz", "train", "--dataset", "synthetic", "--model", "gmf",
                             "--epochs", "500", "--patience", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store, deadline = RunStore(), time.monotonic() + 60
    while not store.list(status="running") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert store.list(status="running")[0].pid == proc.pid  # claimed as it was created: never queued
    proc.kill()
    proc.wait(10)
    runs = last_json(recviz("runs", "--json"))["runs"]
    assert runs[0]["status"] == "failed" and "exited without finishing" in runs[0]["error"]


def test_a_run_trained_in_the_cli_is_never_queued():
    store = RunStore()
    run_id = store.create(RunConfig.build(dataset="synthetic", model="itempop"), claim=os.getpid())
    run = store.get(run_id)
    assert run.status == "running" and run.pid == os.getpid() and store.next_queued(pid=123) is None
