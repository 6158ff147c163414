"""The local executor with several slots: one-thread worker processes side by side
(`recviz.experiments.executors.pool`). The same sweep stores the same numbers as trained one run at
a time with one thread; no more runs train at once than there are slots; cancel, a killed worker
process and a dead driver end runs as the one-by-one worker's would; the app's queue goes through
it when RECVIZ_LOCAL_SLOTS says so."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recviz.config import RunConfig
from recviz.experiments import executors, launch, worker
from recviz.experiments.store import RunStore

# real worker processes per run, killed and cancelled: the slow tier (fault injection)
pytestmark = [pytest.mark.slow, pytest.mark.alone]

TINY = "synthetic:users=60,items=300,interactions=1500"


@pytest.fixture(autouse=True)
def two_slots(monkeypatch):
    monkeypatch.setenv("RECVIZ_LOCAL_SLOTS", "2")
    yield
    for proc in launch.children():  # never leave a worker process behind
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    launch.reap_children()


def recviz(*args, background=False):
    cmd = [sys.executable, "-m", "recviz", *args]
    if background:
        log = open(Path(os.environ["RECVIZ_HOME"]).parent / "sweep.log", "w+")  # noqa: SIM115 — the process keeps it
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)


def sweep_args(*extra):
    return ("sweep", "--dataset", TINY, "--model", "gmf", "--param", "emb_dim", *extra)


def test_a_sweep_side_by_side_stores_what_the_same_runs_store_trained_one_at_a_time(tmp_path, monkeypatch):
    stored = {}
    for name, slots, extra in (("pool", "2", ()), ("local", "1", ("--threads", "1"))):
        monkeypatch.setenv("RECVIZ_HOME", str(tmp_path / name))
        monkeypatch.setenv("RECVIZ_LOCAL_SLOTS", slots)
        proc = recviz(*sweep_args("--values", "8,16", "--seeds", "0,1", "--epochs", "3", "--json", *extra))
        assert proc.returncode == 0, proc.stderr[-3000:]
        store = RunStore()
        stored[name] = {(r["emb_dim"], r["seed"]): (store.get(r["run_id"]).summary["metrics"],
                                                     store.get(r["run_id"]).summary["best_epoch"],
                                                     store.epochs(r["run_id"])[["epoch", "train_loss"]].values.tolist())
                        for r in json.loads(proc.stdout.strip().splitlines()[-1])["rows"]}
        if name == "pool":  # two slots: two worker processes, each trained two of the four runs
            by = _trained_by(store)
            assert len(by) == 2 and sorted(sum(by.values(), [])) == sorted(r.id for r in store.list()), by
    assert len(stored["pool"]) == 4 and stored["pool"] == stored["local"]


def _trained_by(store: RunStore) -> dict[int, list[int]]:
    """worker pid → the runs it trained, from the runs' logs ("worker PID: run N started")."""
    found: dict[int, list[int]] = {}
    for run in store.list():
        log = store.run_dir(run.id) / "worker.log"
        for line in log.read_text().splitlines() if log.exists() else ():
            if line.startswith("worker ") and line.endswith(f": run {run.id} started"):
                found.setdefault(int(line.split()[1].rstrip(":")), []).append(run.id)
    return found


def _children_of(pid: int) -> dict[int, int]:
    """run id → pid of the pool's worker processes under `pid`."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            args = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if b"recviz.experiments.worker" in args:
                found[int(args[args.index(b"recviz.experiments.worker") + 1])] = int(child)
    return found


def _wait_for(condition, proc, timeout=90.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, (Path(os.environ["RECVIZ_HOME"]).parent / "sweep.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_two_slots_train_two_runs_a_cancel_and_a_killed_process_end_runs_as_the_local_workers_would():
    proc = recviz(*sweep_args("--values", "8,16,32", "--epochs", "1000", "--patience", "0",),
                  background=True)
    store, most = RunStore(), [0]

    def training():
        now = [r for r in store.list() if r.status == "running" and not r.waiting]
        most[0] = max(most[0], len(now))
        return now

    try:
        _wait_for(lambda: len(store.list()) == 3 and len(training()) == 2
                  and all(len(store.epochs(r.id)) >= 1 for r in training()), proc)
        [waiting] = [r for r in store.list() if r.waiting]
        assert waiting.id == max(r.id for r in store.list())  # in order: the third waits
        assert {r.pid for r in store.list()} == {proc.pid}  # held by the driver, as a Ray driver holds them
        store.request_cancel(waiting.id)  # nothing started: it ends at once
        _wait_for(lambda: store.get(waiting.id).finished, proc, timeout=5)
        first, second = sorted(r.id for r in training())
        victim = _children_of(proc.pid)[first]
        os.kill(victim, signal.SIGKILL)
        store.request_cancel(second)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1  # not every run of the sweep is done
    assert most[0] == 2  # never more runs training than slots
    gone = store.get(waiting.id)
    assert (gone.status, gone.error, gone.device, len(store.epochs(gone.id))) == ("cancelled", None, None, 0)
    killed = store.get(first)
    assert killed.status == "failed" and killed.error.startswith(f"worker process {victim} was killed by signal 9")
    cancelled = store.get(second)
    assert cancelled.status == "cancelled" and 1 <= len(store.epochs(second)) < 1000 and cancelled.device == "cpu"


def test_a_slots_process_takes_its_next_run_after_a_cancel_and_a_killed_one_is_replaced():
    """Four long runs on two slots: cancelling the first lets its process train the third; killing
    the second's process fails that run only, and the fourth trains in a fresh process."""
    proc = recviz(*sweep_args("--values", "8,16,32,64", "--epochs", "1000", "--patience", "0"), background=True)
    store = RunStore()

    def trains(run_id):
        return lambda: store.get(run_id).status == "running" and len(store.epochs(run_id)) >= 1

    try:
        _wait_for(lambda: len(store.list()) == 4, proc)
        first, second, third, fourth = sorted(r.id for r in store.list())
        _wait_for(lambda: trains(first)() and trains(second)(), proc)
        store.request_cancel(first)
        _wait_for(trains(third), proc)
        victim = next(pid for pid, runs in _trained_by(store).items() if second in runs)
        os.kill(victim, signal.SIGKILL)
        _wait_for(trains(fourth), proc)
        for run_id in (third, fourth):
            store.request_cancel(run_id)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    by = {run: pid for pid, runs in _trained_by(store).items() for run in runs}
    assert by[third] == by[first] and by[fourth] not in (by[first], victim), by
    assert [store.get(r).status for r in (first, second, third, fourth)] == ["cancelled", "failed", "cancelled",
                                                                             "cancelled"]
    assert store.get(second).error.startswith(f"worker process {victim} was killed by signal 9")


def test_a_dead_driver_leaves_its_runs_failed_and_its_worker_processes_stop():
    proc = recviz(*sweep_args("--values", "8,16", "--epochs", "1000", "--patience", "0",),
                  background=True)
    store = RunStore()
    try:
        _wait_for(lambda: len(store.list()) == 2 and all(len(store.epochs(r.id)) >= 1 for r in store.list()), proc)
        pids = list(_children_of(proc.pid).values())
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{p}").exists() and "Z" not in Path(f"/proc/{p}/stat").read_text().split(") ")[1][:1]
              for p in pids):
        assert time.monotonic() < deadline, "the worker processes outlived their driver"
        time.sleep(0.1)
    assert sorted(store.reap()) == sorted(r.id for r in store.list())  # what the app and `recviz runs` do
    assert all(r.status == "failed" and r.error.startswith(f"worker process {proc.pid} ") for r in store.list())


def test_the_apps_queue_trains_side_by_side_with_two_slots():
    assert executors.chosen()["executor"] == "local"
    assert executors.where_runs_train().endswith("2 at a time, one thread each")
    store = RunStore()
    ids = [store.create(RunConfig.build(dataset=TINY, model="itempop", seed=s)) for s in range(3)]
    assert worker._execute_queue(store, store.next_queued(), None, False) == 3
    assert [store.get(i).status for i in ids] == ["done"] * 3


def test_a_bad_slot_count_is_a_readable_error(monkeypatch):
    from recviz.errors import RecvizError

    monkeypatch.setenv("RECVIZ_LOCAL_SLOTS", "many")
    with pytest.raises(RecvizError, match="RECVIZ_LOCAL_SLOTS='many' is not a number"):
        executors.get("local")().train(RunStore(), [RunConfig.build(dataset=TINY, model="itempop")])
    assert RunStore().list() == []  # refused before any run was created


@pytest.mark.parametrize("stopped_by, status, words", [
    (KeyboardInterrupt("stopped by signal 15 (SIGTERM) sent to worker process 1"), "cancelled", "signal 15"),
    (OSError(28, "No space left on device"), "failed", "disk"),
])
def test_a_stopped_driver_ends_a_run_its_worker_could_not_record_as_what_stopped_it(stopped_by, status, words):
    """A drain SIGTERMed while a run's worker process is still importing (no handler yet: the
    signal kills it before it can record anything): the run ends cancelled, as a SIGTERMed
    one-by-one drain's does — not failed as a killed worker. An error stops the driver: failed,
    with that error's reason. (Stood in for by a process that dies of SIGTERM as it is.)"""
    from recviz.experiments.executors import pool

    store = RunStore()
    run_id = store.create(RunConfig.build(dataset=TINY, model="itempop"), claim=os.getpid())
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    pool._stop(store, [pool._Slot(run_id, proc)], stopped_by)
    run = store.get(run_id)
    assert proc.returncode == -signal.SIGTERM
    assert run.status == status and words in run.error.lower(), (run.status, run.error)


def test_runs_that_ask_for_several_threads_keep_them_and_take_as_many_slots(monkeypatch):
    """A sweep's `--threads 2` is never silently made one thread: on 4 slots two such runs train at
    once with two threads each; on 2 slots one at a time, in this process, with two threads."""
    from recviz.experiments.executors import local, pool

    calls = []
    monkeypatch.setattr(pool, "execute", lambda ex, slots, store, runs, **kw: calls.append(("pool", slots)) or {})
    monkeypatch.setattr(local.LocalExecutor, "one_by_one", lambda self, store, runs, **kw: calls.append(("here", 1)) or {})
    runs = [RunConfig.build(dataset=TINY, model="itempop", threads=2, seed=s) for s in range(3)]
    for slots, expected in (("4", ("pool", 2)), ("2", ("here", 1)), ("3", ("here", 1))):
        monkeypatch.setenv("RECVIZ_LOCAL_SLOTS", slots)
        local.LocalExecutor().execute(RunStore(), runs)
        assert calls.pop() == expected, slots
    monkeypatch.setenv("RECVIZ_LOCAL_SLOTS", "2")
    local.LocalExecutor().execute(RunStore(), [RunConfig.build(dataset=TINY, model="itempop", seed=s) for s in (0, 1)])
    assert calls.pop() == ("pool", 2)  # threads unset: one each, every slot
    started = []
    monkeypatch.setattr(launch, "launch", lambda run_id, threads=None, holder=None, serve=None: started.append(threads))
    pool._start(7, os.getpid(), 2), pool._start(8, os.getpid(), 0)
    assert started == [2, 1]


def test_the_driver_wakes_when_a_worker_speaks_not_at_the_end_of_its_wait():
    """`pool._wait` returns as soon as a worker's reply pipe has a line (select), long before its
    timeout; with nothing said it waits the timeout out."""
    import threading

    from recviz.experiments.executors import pool

    read, write = os.pipe()
    try:
        slot = pool._Slot(1, proc=None, replies=read)
        threading.Timer(0.2, lambda: os.write(write, b"1 done\n")).start()
        start = time.monotonic()
        pool._wait([slot], 30.0)
        assert 0.15 < time.monotonic() - start < 10.0
        start = time.monotonic()
        pool._wait([pool._Slot(2, proc=None, replies=None)], 0.3)  # no pipe: it sleeps the timeout
        assert time.monotonic() - start >= 0.3
    finally:
        os.close(read)
        os.close(write)
