"""Runs end with the truth: a worker killed by a signal names it, a full disk says so, a clock jump
cannot fail a healthy run. Real SQLite, real worker processes."""

import contextlib
import errno
import os
import signal
import time

import pytest

from recviz.config import RunConfig
from recviz.experiments import artifacts, launch, liveness, worker
from recviz.experiments.store import RunStore
from recviz.experiments.executors.local import TEST_SLEEP_ENV, LocalExecutor
from tests.test_worker import KNN, stop_workers, wait_until_running  # noqa: F401 — the fixture

# real worker processes killed, stopped and timed: run with nothing beside them
pytestmark = pytest.mark.alone

ITEMPOP = RunConfig.build(dataset="synthetic", model="itempop")


# ---- liveness: judged on the monotonic clock ------------------------------------------------------
def test_a_wall_clock_jump_does_not_fail_a_healthy_run(monkeypatch):
    store = RunStore()
    run_id = store.create(ITEMPOP, claim=os.getpid())  # alive, beating now
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 86_400)  # the wall clock jumps a day ahead
    assert store.reap() == [] and store.get(run_id).status == "running"
    monkeypatch.setattr(time, "time", lambda: real() - 86_400)  # and a day back: beats look "future"
    store.heartbeat(run_id)
    monkeypatch.setattr(time, "time", real)
    assert store.reap() == [] and store.get(run_id).status == "running"


def test_a_silent_worker_is_judged_by_the_monotonic_clock(monkeypatch):
    store = RunStore()
    run_id = store.create(ITEMPOP, claim=os.getpid())
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + 200)  # 200 s of monotonic silence
    assert store.reap(heartbeat_timeout=120) == [run_id]
    assert "stopped answering (hung?): no heartbeat for 200 s" in store.get(run_id).error


def test_a_run_claimed_on_another_boot_is_dead_even_if_its_pid_exists():
    store = RunStore()
    run_id = store.create(ITEMPOP, claim=os.getpid())  # this pid exists (it is us)
    with store.transaction() as conn:
        conn.execute("UPDATE runs SET boot_id = 'an-earlier-boot' WHERE id = ?", (run_id,))
    assert store.reap() == [run_id]
    assert store.get(run_id).error.startswith(f"the machine restarted while worker process {os.getpid()}")


# ---- what ended it ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_sigkill_of_a_worker_is_named_in_the_reason(monkeypatch):
    monkeypatch.setenv(TEST_SLEEP_ENV, "30")
    run_id = launch.submit(KNN)
    pid = wait_until_running(run_id).pid
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while launch.recover() != [run_id]:  # what every reader of the store does first
        assert time.monotonic() < deadline, "never reaped"
        time.sleep(0.05)
    error = RunStore().get(run_id).error
    assert error.startswith(f"worker process {pid} was killed by signal 9 (SIGKILL)"), error


@pytest.mark.slow
def test_sigterm_of_a_worker_cancels_its_run_and_says_by_what(monkeypatch):
    monkeypatch.setenv(TEST_SLEEP_ENV, "30")
    run_id = launch.submit(KNN)
    pid = wait_until_running(run_id).pid
    os.kill(pid, signal.SIGTERM)
    run = launch.wait(run_id, timeout=10)
    assert run.status == "cancelled"
    assert run.error == f"stopped by signal 15 (SIGTERM) sent to worker process {pid}"


def test_an_oom_kill_is_told_from_other_kills(monkeypatch):
    store = RunStore()
    run_id = store.create(ITEMPOP, claim=os.getpid())
    run = store.get(run_id)
    monkeypatch.setattr(liveness, "oom_kills", lambda: (run.oom_kills or 0) + 1)  # the OOM killer struck
    if run.oom_kills is None:
        run.oom_kills = 0  # this machine has no memory cgroup to read: judge as if it had
    assert liveness.how_it_ended(run, -9).startswith("ran out of memory: was killed by signal 9 (SIGKILL)")
    assert "most likely ran out of memory" in liveness.how_it_ended(run, None)
    assert liveness.how_it_ended(run, -15) == "was killed by signal 15 (SIGTERM)"


def test_a_full_disk_while_saving_artifacts_fails_the_run_as_disk_full(monkeypatch):
    def no_space(run_dir, result):
        raise OSError(errno.ENOSPC, "No space left on device", str(run_dir / "model.npz"))

    monkeypatch.setattr(artifacts, "save", no_space)
    store = RunStore()
    run_id = store.create(ITEMPOP)
    assert worker.execute(run_id, store=store) == "failed"
    error = store.get(run_id).error
    assert error.startswith("disk full: no space left on the device while writing ") and "model.npz" in error
    assert str(store.path.parent) in error  # where to free space


def test_a_memory_error_fails_the_run_as_out_of_memory(monkeypatch):
    from recviz.experiments import experiment

    def too_big(config, **kw):
        raise MemoryError()

    monkeypatch.setattr(experiment, "run", too_big)
    store = RunStore()
    run_id = store.create(ITEMPOP)
    assert worker.execute(run_id, store=store) == "failed"
    assert store.get(run_id).error.startswith("out of memory (MemoryError)")


@pytest.mark.parametrize("exc, words", [
    (OSError(errno.EROFS, "Read-only file system", "/data/runs/3/model.npz"), "cannot write /data/runs/3/model.npz"),
    (__import__("sqlite3").OperationalError("database or disk is full"), "disk full: the run store"),
    (__import__("sqlite3").OperationalError("attempt to write a readonly database"), "is not writable"),
])
def test_other_known_causes_are_named(exc, words):
    from recviz.experiments.reasons import describe

    try:
        raise RuntimeError("while saving") from exc
    except RuntimeError as wrapped:
        assert words in describe(wrapped).splitlines()[0]


# ---- fault injection ----------------------------------------------------------------------------------
def stop_outside_a_write(pid: int, tries: int = 50) -> None:
    """SIGSTOP `pid` at a moment it holds no SQLite write lock. A process stopped inside a write
    transaction (its heartbeat commits every ~2 s) holds the store's write lock until it runs again:
    SQLite's own rule, which no reader can break — what this test checks is the drain lock."""
    import sqlite3

    path = RunStore().path  # opened before any stop: a RunStore's first read may wait on the lock itself
    for _ in range(tries):
        os.kill(pid, signal.SIGSTOP)
        conn = sqlite3.connect(path, timeout=0.5)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.rollback()
            # and what every new RunStore's first connection runs (a process stopped while it
            # checkpoints the WAL blocks that too, though not BEGIN IMMEDIATE above)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
            return
        except sqlite3.OperationalError:
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.05)
        finally:
            conn.close()
    raise AssertionError(f"process {pid} held the store's write lock at every one of {tries} tries")


def wait_until_training(run_id, timeout=30.0):
    """The run, once a worker has stored where it trains (a slot's worker process has started)."""
    from recviz.experiments.store import WAITING_FOR_SLOT

    store, deadline = RunStore(), time.monotonic() + timeout
    while (run := store.get(run_id)).device in (None, WAITING_FOR_SLOT):
        assert time.monotonic() < deadline and run.status == "running", (run.status, run.device, run.error)
        time.sleep(0.05)
    return run


@pytest.mark.slow
@pytest.mark.parametrize("slots", ["1", "2"])
def test_a_stopped_drain_worker_does_not_keep_the_queue(monkeypatch, slots):
    """SIGSTOP leaves a drain alive, its flock held: its beat in the lock file goes stale, and the
    next reader of the store starts a drain that takes the queue over and trains the queued runs.
    One slot: the stopped drain's own run is the reaper's, after its heartbeat limit. Two: the
    runs it holds train on in the worker processes it started (the store names the drain, their
    holder; their workers beat), and end done."""
    monkeypatch.setenv("RECVIZ_LOCAL_SLOTS", slots)
    monkeypatch.setenv(TEST_SLEEP_ENV, "30")
    held_ids = [launch.submit(ITEMPOP) for _ in range(int(slots))]  # all the stopped drain will hold
    first, second = held_ids[0], launch.submit(ITEMPOP)
    held = [wait_until_running(run_id) for run_id in held_ids]
    if slots != "1":  # each in its worker process (not waiting for a slot inside the drain)
        held = [wait_until_training(run_id) for run_id in held_ids]
    pid = launch.drain_pid()
    assert {run.pid for run in held} == {pid}
    stop_outside_a_write(pid)
    try:
        monkeypatch.setenv(launch.STALE_ENV, "3")  # 120 s in use
        monkeypatch.delenv(TEST_SLEEP_ENV)
        store, deadline = RunStore(), time.monotonic() + 120
        while store.get(second).status != "done":
            assert time.monotonic() < deadline, (store.get(second).status, launch.drain_pid())
            launch.recover()  # what every reader of the store does first
            time.sleep(0.2)
        assert launch.drain_pid() not in (pid, -1)  # the new drain holds the lock (or has finished)
        assert store.get(second).pid != pid
        if slots == "1":
            assert store.get(first).status == "running" and store.get(first).pid == pid  # until reaped
        else:
            runs = [launch.wait(run_id, timeout=90) for run_id in held_ids]
            assert [(run.status, run.pid) for run in runs] == [("done", pid)] * len(runs), [r.error for r in runs]
        os.kill(pid, signal.SIGCONT)  # woken up: it finds the lock taken and takes no further run
        third = launch.submit(ITEMPOP)
        while store.get(third).status != "done":
            assert time.monotonic() < deadline, (store.get(third).status, launch.drain_pid())
            launch.recover()
            time.sleep(0.2)
        assert store.get(third).pid != pid
    finally:
        for sig in (signal.SIGKILL, signal.SIGCONT):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)



@pytest.mark.slow
@pytest.mark.parametrize("slots", ["1", "2"])
def test_a_drain_stopped_inside_a_write_is_named_then_ended_and_the_queue_goes_on(tmp_path, monkeypatch, slots):
    """A real SIGSTOP inside a write transaction (the test hook stops the writer in its heartbeat's
    UPDATE): the store's write lock stays held. A writer that times out is a StoreError naming the
    stopped process and how to free it (was: 'database is locked'); once it is stale, the next
    reader ends it (its write rolls back) and its run fails. One slot: the writer is the drain
    itself, its run is reaped and a new drain trains the queue. Two: it is one of the drain's run
    workers (the store names the drain, which holds the run); the drain fails that run and trains
    the other."""
    from recviz.errors import StoreError
    from recviz.experiments import db, writers
    from recviz.experiments.writers import STOP_IN_WRITE_ENV

    flag = tmp_path / "stopped"
    monkeypatch.setenv("RECVIZ_LOCAL_SLOTS", slots)
    monkeypatch.setenv(STOP_IN_WRITE_ENV, str(flag))
    monkeypatch.setenv(TEST_SLEEP_ENV, "30")  # the first run beats (and so stops) before it trains
    first, second = launch.submit(ITEMPOP), launch.submit(ITEMPOP)
    store, deadline = RunStore(), time.monotonic() + 60
    while (pid := writers.stopped_writer(store.path)) is None:
        assert time.monotonic() < deadline, "the drain never stopped inside its heartbeat's write"
        time.sleep(0.1)
    try:
        drain = launch.drain_pid()
        stopped = first if slots == "1" else launch._queue_run_of(pid, drain)
        other = second if stopped == first else first
        assert flag.exists() and stopped in (first, second) and store.get(stopped).pid == drain
        assert pid == drain if slots == "1" else pid != drain
        monkeypatch.setattr(db, "BUSY_TIMEOUT_S", 0.5)
        with pytest.raises(StoreError, match=f"locked by process {pid}, which is stopped") as err:
            store.request_cancel(second)
        assert f"kill -CONT {pid}" in err.value.fix
        monkeypatch.setenv(launch.STALE_ENV, "3")  # 120 s in use
        monkeypatch.delenv(TEST_SLEEP_ENV)
        monkeypatch.setattr(db, "BUSY_TIMEOUT_S", 10.0)
        time.sleep(3.5)  # the stopped drain's beat in drain.lock goes stale
        deadline = time.monotonic() + 120
        while store.get(other).status != "done":
            assert time.monotonic() < deadline, (store.get(other).status, store.get(other).error)
            launch.recover()  # what every reader of the store does first
            time.sleep(0.2)
        assert not liveness.pid_alive(pid)
        gone = launch.wait(stopped, timeout=30)
        assert gone.status == "failed" and gone.error, (gone.status, gone.error)
        import sqlite3

        with sqlite3.connect(store.path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        for sig in (signal.SIGKILL, signal.SIGCONT):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


@pytest.mark.slow
def test_a_sweep_survives_its_worker_killed_five_times_at_random_points(monkeypatch):
    """10 runs queued as one sweep; the queue's worker is SIGKILLed 5 times at seeded random moments
    (while importing, training, saving or between runs) and restarted the way every reader of the
    store restarts it (`launch.recover`). Nothing is left queued or running, every failure has its
    reason, the database is intact, and no run was claimed (trained) twice."""
    import random
    import sqlite3

    rng = random.Random(15)
    monkeypatch.setenv(TEST_SLEEP_ENV, "0.8")  # every run takes 0.8 s more: the kills land mid-sweep
    tiny = "synthetic:users=60,items=300,interactions=1500"
    ids = [launch.submit(RunConfig.build(dataset=tiny, model="gmf", epochs=3, seed=s), threads=1, sweep_id="faults")
           for s in range(10)]
    store, start = RunStore(), time.monotonic()
    kills = []
    while len(kills) < 5 and time.monotonic() - start < 45:
        pid = launch.drain_pid()
        if pid is None or pid < 0:  # none yet, or one starting: restart as any reader would
            launch.recover()
            time.sleep(0.05)
            continue
        time.sleep(rng.uniform(0.2, 3.0))
        if launch.drain_pid() == pid:
            os.kill(pid, signal.SIGKILL)
            kills.append(pid)
            deadline = time.monotonic() + 5
            while liveness.pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
        if not store.has_queued():
            break
    deadline = time.monotonic() + 60
    while store.list(status=("queued", "running")):
        assert time.monotonic() < deadline, [(r.id, r.status) for r in store.list()]
        launch.recover()
        time.sleep(0.1)

    runs = [store.get(i) for i in ids]
    assert len(kills) >= 3, kills  # the queue outlived most of the kills (it may empty before the fifth)
    assert {r.status for r in runs} <= {"done", "failed", "cancelled"}
    for r in runs:
        assert r.status != "failed" or "was killed by signal 9 (SIGKILL)" in r.error, r.error
        assert r.claims == 1, (r.id, r.claims)  # taken by exactly one worker: never trained twice
        if r.status == "done":
            assert len(store.epochs(r.id)) == r.summary["epochs_run"] == 3
    held = LocalExecutor.slots()  # a killed drain worker held at most this many runs, all training
    assert sum(r.status == "failed" for r in runs) <= held * len(kills)
    assert sum(r.status == "done" for r in runs) >= 10 - held * len(kills)
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
