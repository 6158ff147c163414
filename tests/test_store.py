"""The run store on a real SQLite file: lifecycle, concurrent readers, atomic claims, reaping dead
workers, and crashes mid-write."""

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from recviz.config import RunConfig
from recviz.errors import RecvizError
from recviz.experiments.db import SCHEMA_VERSION
from recviz.experiments.liveness import pid_alive
from recviz.experiments.store import EPOCH_COLUMNS, WAITING_FOR_SLOT, RunStore


@pytest.fixture
def store(recviz_home):
    return RunStore()


def report(epoch, loss=0.5):
    return {"epoch": epoch, "train_loss": loss, "valid": {"HR@10": 0.1 * epoch, "NDCG@10": 0.05 * epoch},
            "seconds": 1.5, "samples_per_second": 1000.0, "eval_seconds": 0.25}


def test_lifecycle_create_list_get_epochs_finish(store, recviz_home):
    assert store.path == recviz_home / "runs.db"
    a = store.create(RunConfig.build(model="itempop", dataset="synthetic"))
    b = store.create(RunConfig.build(model="itemknn", dataset="other", seed=3), sweep_id=7)
    run = store.get(a)
    assert (run.status, run.model, run.dataset, run.protocol, run.seed) == ("queued", "itempop", "synthetic", "loo", 0)
    assert run.config == RunConfig.build(model="itempop", dataset="synthetic")
    assert run.log_path == str(recviz_home / "runs" / str(a) / "worker.log")
    assert [r.id for r in store.list()] == [b, a]  # newest first
    assert [r.id for r in store.list(model="itemknn")] == [b]
    assert [r.id for r in store.list(dataset="synthetic", status="queued")] == [a]
    assert [r.id for r in store.list(sweep_id=7)] == [b] and store.get(b).sweep_id == 7

    assert store.mark_running(a, pid=os.getpid(), device="cpu")
    assert store.get(a).status == "running" and store.get(a).device == "cpu"
    store.add_epoch(a, report(1, loss=1.0))
    store.add_epochs(a, [report(2, loss=0.5), report(3, loss=1 / 3)])  # a batch, as a Ray driver stores them
    store.add_epoch(a, report(3, loss=0.2))  # re-sent epoch replaces the row
    frame = store.epochs(a)
    assert list(frame["epoch"]) == [1, 2, 3] and list(frame["phase"]) == ["train"] * 3
    assert frame["train_loss"].iloc[-1] == 0.2
    assert frame["valid_HR@10"].tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert frame["valid"].iloc[0] == {"HR@10": 0.1, "NDCG@10": 0.05}
    assert frame["eval_seconds"].tolist() == [0.25] * 3  # the report's other keys are kept

    assert store.finish(a, {"metrics": {"HR@10": 0.7}, "best_epoch": 2})
    run = store.get(a)
    assert run.status == "done" and run.summary["metrics"]["HR@10"] == 0.7 and run.finished_at >= run.started_at
    assert [r.id for r in store.list(status=["done", "failed"])] == [a]
    # a terminal status is final: a late write from a worker cannot change it
    assert not store.fail(a, "late") and not store.mark_running(a, os.getpid())
    assert store.get(a).status == "done"
    with pytest.raises(RecvizError, match="no run 999"):
        store.get(999)


def test_epochs_of_a_run_without_rows_is_an_empty_frame(store):
    run_id = store.create(RunConfig())
    frame = store.epochs(run_id)
    assert frame.empty and list(frame.columns) == EPOCH_COLUMNS


def test_reader_keeps_reading_while_a_writer_writes(store):
    """WAL: an open read transaction neither blocks the writer nor sees half of its writes."""
    run_id = store.create(RunConfig())
    store.mark_running(run_id, os.getpid())
    reader = sqlite3.connect(store.path, timeout=10, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT COUNT(*) FROM epochs").fetchone()[0] == 0  # snapshot taken

    errors, seen = [], []

    def write():
        try:
            for e in range(1, 61):
                store.add_epoch(run_id, report(e))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    while writer.is_alive():  # a second reader polling like the app's page does
        seen.append(len(store.epochs(run_id)))
        store.list()
    writer.join()
    assert not errors
    assert reader.execute("SELECT COUNT(*) FROM epochs").fetchone()[0] == 0  # still its snapshot
    reader.execute("COMMIT")
    assert reader.execute("SELECT COUNT(*) FROM epochs").fetchone()[0] == 60
    assert seen == sorted(seen) and len(store.epochs(run_id)) == 60
    reader.close()


def test_reap_marks_a_run_with_a_dead_pid_failed(store):
    sleeper = subprocess.Popen(["sleep", "30"])
    dead = store.create(RunConfig())
    alive = store.create(RunConfig())
    store.mark_running(dead, sleeper.pid)
    store.mark_running(alive, os.getpid())
    store.add_epoch(dead, report(1))
    store.add_epoch(dead, report(2))
    sleeper.kill()
    time.sleep(0.1)
    assert not pid_alive(sleeper.pid)  # a killed child nobody waited for is a zombie: dead too
    assert store.reap() == [dead]
    run = store.get(dead)
    assert run.status == "failed"
    assert run.error.startswith(f"worker process {sleeper.pid} exited without finishing (killed or crashed) "
                                "during epoch 3")
    assert store.get(alive).status == "running"
    assert store.reap() == [] and store.get(dead).error == run.error  # idempotent
    sleeper.wait()


def test_reap_marks_a_run_without_heartbeat_failed(store):
    run_id = store.create(RunConfig())
    store.mark_running(run_id, os.getpid())  # alive, but silent
    assert store.reap(heartbeat_timeout=60) == []
    time.sleep(0.05)
    assert store.reap(heartbeat_timeout=0.01) == [run_id]
    assert "no heartbeat for" in store.get(run_id).error


def test_next_queued_never_hands_the_same_run_twice(store):
    ids = [store.create(RunConfig.build(seed=i)) for i in range(40)]
    claimed, lock = [], threading.Lock()

    def claim(pid):
        mine = RunStore()  # its own connections, like another worker
        while (run := mine.next_queued(pid=pid)) is not None:
            assert run.status == "running" and run.pid == pid
            with lock:
                claimed.append(run.id)

    threads = [threading.Thread(target=claim, args=(1000 + i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == ids  # every run once, none twice
    assert store.next_queued() is None


def test_a_crash_mid_transaction_leaves_earlier_runs_intact(store):
    first = store.create(RunConfig.build(model="itempop"))
    with pytest.raises(RuntimeError):
        with store.transaction() as conn:
            conn.execute("UPDATE runs SET status = 'failed' WHERE id = ?", (first,))
            conn.execute("DELETE FROM runs")
            raise RuntimeError("crash")
    assert [r.id for r in store.list()] == [first] and store.get(first).status == "queued"

    # A process killed while it holds the write lock mid-transaction: SQLite rolls it back.
    code = ("import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None);"
            "c.execute('BEGIN IMMEDIATE'); c.execute('DELETE FROM runs');"
            "print('in', flush=True); time.sleep(30)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(store.path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "in"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert [r.id for r in store.list()] == [first]
    second = store.create(RunConfig())  # and the store takes writes again
    assert [r.id for r in RunStore().list()] == [second, first]


def test_cancel_a_queued_run_at_once_and_flag_a_running_one(store):
    queued, running = store.create(RunConfig()), store.create(RunConfig())
    store.mark_running(running, os.getpid())
    assert not store.cancel_requested(running)
    assert store.request_cancel(queued) == "cancelled"
    assert store.request_cancel(running) == "running" and store.cancel_requested(running)
    assert not store.mark_running(queued, os.getpid())  # a worker arriving late does nothing
    assert store.mark_cancelled(running) and store.get(running).status == "cancelled"


def test_a_run_waiting_for_a_slot_on_a_cluster_is_held_but_not_training_and_ends_without_a_device(store):
    run_id = store.create(RunConfig(), claim=os.getpid(), device=WAITING_FOR_SLOT)  # `recviz sweep --executor ray`
    run = store.get(run_id)
    assert (run.status, run.waiting, run.pid) == ("running", True, os.getpid())
    assert store.mark_running(run_id, os.getpid(), "ray: cpu, pid 7 on node ab", started_at=run.started_at + 5)
    run = store.get(run_id)
    assert not run.waiting and run.started_at > run.created_at + 4  # its task's start, not the claim
    other = store.create(RunConfig(), claim=os.getpid(), device=WAITING_FOR_SLOT)
    assert store.mark_cancelled(other)  # cancelled before a slot came free: it trained nowhere
    assert (store.get(other).status, store.get(other).device) == ("cancelled", None)
    assert store.finish(run_id, {}) and store.get(run_id).device == "ray: cpu, pid 7 on node ab"


def test_delete_removes_rows_and_artifacts_but_not_a_running_run(store):
    run_id = store.create(RunConfig())
    assert (store.run_dir(run_id) / "config.json").exists()  # its settings, kept from the start
    (store.run_dir(run_id) / "model.pt").write_bytes(b"x")
    store.mark_running(run_id, os.getpid())
    store.add_epoch(run_id, report(1))
    with pytest.raises(RecvizError, match="cancel it first"):
        store.delete(run_id)
    store.fail(run_id, "boom")
    store.delete(run_id)
    assert store.list() == [] and store.epochs(run_id).empty and not store.run_dir(run_id).exists()
    assert store.create(RunConfig()) != run_id  # ids are never reused (run dirs are named by id)


def test_schema_is_versioned_and_old_configs_stay_readable(store):
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        run_id = store.create(RunConfig.build(model="itemknn"))
        conn.execute("UPDATE runs SET config = ? WHERE id = ?",
                     ('{"model": "itemknn", "a_key_from_an_old_version": 1}', run_id))
    assert store.get(run_id).config.model == "itemknn"
    with sqlite3.connect(store.path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RecvizError, match="newer RecViz"):
        RunStore()


def test_a_store_created_anew_never_reuses_the_ids_of_run_directories_left_behind(recviz_home):
    store = RunStore()
    old = [store.create(RunConfig()) for _ in range(3)]
    for run_id in old:
        store.run_dir(run_id).mkdir(parents=True, exist_ok=True)
        (store.run_dir(run_id) / "model.pt").write_bytes(b"a dead run's weights")
    store.path.unlink()  # runs.db deleted; the run directories stay
    for suffix in ("-wal", "-shm"):
        store.path.with_name(store.path.name + suffix).unlink(missing_ok=True)
    fresh = RunStore()
    new = fresh.create(RunConfig())
    assert new > max(old) and [p.name for p in fresh.run_dir(new).iterdir()] == ["config.json"]
