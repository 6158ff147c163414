"""The ray executor, against a real Ray cluster started by the command under test
(`--address local`). On these machines Ray may only run inside its own network namespace, bound
to loopback (../shared/notes/ray-and-mlflow-here.md), so every command that starts Ray runs under
`unshare -n`. Skipped when Ray is not installed or a network namespace cannot be made."""

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recviz.experiments.store import RunStore

ray = pytest.importorskip("ray")
TINY = "synthetic:users=60,items=300,interactions=1500"
NETNS = ["unshare", "-n", "sh", "-c", 'ip link set lo up; exec "$@"', "sh"]  # a namespace with only loopback


def _netns_ok() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    return probe.returncode == 0


pytestmark = [pytest.mark.slow, pytest.mark.alone,  # a real cluster, timed
              pytest.mark.skipif(not _netns_ok(), reason="cannot make a network namespace (unshare -n) here")]


def recviz(*args, netns: bool = False, background: bool = False):
    """`python -m recviz ARGS`; with `netns`, inside a fresh network namespace with only loopback."""
    cmd = [sys.executable, "-m", "recviz", *args]
    if netns:
        cmd = [*NETNS, *cmd]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    if background:  # output to a file: a pipe nobody reads would fill and stop the command
        log = open(os.path.join(os.environ["RECVIZ_HOME"], "sweep.log"), "w+")
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def last_json(proc) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def sweep_args(*extra):
    return ("sweep", "--dataset", TINY, "--model", "gmf", "--param", "emb_dim", "--threads", "1", *extra)


def test_a_sweep_through_ray_stores_what_the_same_sweep_stores_locally(tmp_path, monkeypatch):
    """4 runs (2 values × 2 seeds): the same metrics to the last digit, the same epochs stored,
    artifacts that give the same recommendations — a page cannot tell the two apart."""
    tables = {}
    for executor in ("local", "ray"):
        monkeypatch.setenv("RECVIZ_HOME", str(tmp_path / executor))
        extra = ("--executor", "ray", "--address", "local") if executor == "ray" else ()
        tables[executor] = last_json(recviz(*sweep_args("--values", "8,16", "--seeds", "0,1", "--epochs", "3",
                                                        "--json", *extra), netns=executor == "ray"))
    key = lambda r: (r["emb_dim"], r["seed"])  # noqa: E731
    local = {key(r): r for r in tables["local"]["rows"]}
    remote = {key(r): r for r in tables["ray"]["rows"]}
    assert sorted(local) == sorted(remote) and len(local) == 4
    for k in local:
        assert (remote[k]["HR@10"], remote[k]["NDCG@10"], remote[k]["best_epoch"]) == \
               (local[k]["HR@10"], local[k]["NDCG@10"], local[k]["best_epoch"]), k
    from recviz.experiments import artifacts

    for k in local:
        stored = {}
        for executor, row in (("local", local[k]), ("ray", remote[k])):
            monkeypatch.setenv("RECVIZ_HOME", str(tmp_path / executor))
            store = RunStore()
            run = store.get(row["run_id"])
            stored[executor] = (run.status, run.summary["metrics"], len(store.epochs(run.id)),
                                artifacts.recommend_for(store.run_dir(run.id), "u0001", k=5)["item"].tolist())
        assert stored["ray"] == stored["local"], k
    monkeypatch.setenv("RECVIZ_HOME", str(tmp_path / "ray"))
    assert all(r.device.startswith("ray: cpu, pid ") for r in RunStore().list())


LONG_EPOCHS = 600  # `_start_long_sweep`'s runs: 150 took ~2 s once GMF's step was compiled


def _start_long_sweep(tmp_path, monkeypatch, values="8,16,32"):
    """A Ray sweep whose runs take several seconds each (`LONG_EPOCHS` epochs of a tiny model), and
    its store: long enough that a cancel sent after two epochs finds its run still training."""
    monkeypatch.setenv("RECVIZ_HOME", str(tmp_path))
    proc = recviz(*sweep_args("--values", values, "--epochs", str(LONG_EPOCHS), "--patience", "0", "--executor", "ray",
                              "--address", "local"), netns=True, background=True)
    return proc, RunStore()


def _wait_for(condition, proc, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail("the sweep ended early: " + open(os.path.join(os.environ["RECVIZ_HOME"], "sweep.log")).read()[-3000:])
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_cancelling_one_run_of_a_ray_sweep_stops_it_and_the_others_finish(tmp_path, monkeypatch):
    proc, store = _start_long_sweep(tmp_path, monkeypatch)
    try:
        _wait_for(lambda: len(store.list()) == 3 and len(store.epochs(store.list()[-1].id)) >= 2, proc)
        first = store.list()[-1].id
        store.request_cancel(first)  # what the app's Cancel and `recviz cancel` do
        proc.wait(timeout=300)
    finally:
        proc.kill()
    runs = {r.id: r for r in store.list()}
    assert runs[first].status == "cancelled"
    assert 2 <= len(store.epochs(first)) < LONG_EPOCHS  # its finished epochs are kept
    assert [r.status for i, r in sorted(runs.items()) if i != first] == ["done", "done"]
    assert proc.returncode == 1  # not every run of the sweep is done


def test_a_ray_task_whose_process_dies_fails_its_run_with_the_reason_and_the_others_finish(tmp_path, monkeypatch):
    proc, store = _start_long_sweep(tmp_path, monkeypatch)
    try:
        _wait_for(lambda: len(store.list()) == 3 and (store.list()[-1].device or "").startswith("ray:")
                  and len(store.epochs(store.list()[-1].id)) >= 1, proc)
        victim = store.list()[-1]
        pid = int(victim.device.split("pid ")[1].split()[0])  # the Ray worker process training it
        os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=300)
    finally:
        proc.kill()
    runs = {r.id: r for r in store.list()}
    assert runs[victim.id].status == "failed"
    assert "Ray worker training it died" in runs[victim.id].error and f"pid {pid}" in runs[victim.id].error
    assert [r.status for i, r in sorted(runs.items()) if i != victim.id] == ["done", "done"]


def test_an_address_where_nothing_answers_is_a_clear_error_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("RECVIZ_HOME", str(tmp_path))
    start = time.monotonic()
    proc = recviz(*sweep_args("--values", "8", "--executor", "ray", "--address", "127.0.0.1:1"), netns=True)
    assert time.monotonic() - start < 30
    assert proc.returncode == 2 and "nothing answers at 127.0.0.1:1" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert RunStore().list() == []  # no run left behind


def test_a_run_asking_for_more_cpus_than_the_cluster_has_is_refused_not_left_waiting():
    """`--threads` above the cluster's CPUs would be a Ray task pending for ever: refused at once,
    nothing stored."""
    threads = str((os.cpu_count() or 1) * 4 + 60)
    proc = recviz("train", "--dataset", TINY, "--model", "gmf", "--epochs", "1", "--threads", threads,
                  "--executor", "ray", "--address", "local", netns=True)
    assert proc.returncode == 2, (proc.stdout[-2000:], proc.stderr[-2000:])
    assert "asks for more than the cluster has" in proc.stderr and f"{threads} CPUs" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert RunStore().list() == []


def test_recviz_train_runs_one_run_on_ray_and_prints_what_a_local_run_prints(tmp_path, monkeypatch):
    monkeypatch.setenv("RECVIZ_HOME", str(tmp_path))
    args = ("train", "--dataset", TINY, "--model", "mf", "--epochs", "2", "--threads", "1", "--json")
    remote = last_json(recviz(*args, "--executor", "ray", "--address", "local", netns=True))
    local = last_json(recviz(*args))
    assert remote["metrics"] == local["metrics"] and remote["epochs_run"] == local["epochs_run"] == 2
    run = RunStore().get(remote["run_id"])
    assert run.status == "done" and run.device.startswith("ray: cpu") and len(RunStore().epochs(run.id)) == 2


def in_namespace(script: str, home, monkeypatch) -> dict:
    """Run tests/SCRIPT (it drives the app and Ray, then prints what it saw as one JSON line) in a
    network namespace, with `home` as the data directory; return what it printed."""
    monkeypatch.setenv("RECVIZ_HOME", str(home))
    monkeypatch.setenv("RECVIZ_WORKER_THREADS", "1")
    cmd = [*NETNS, sys.executable, str(Path(__file__).with_name(script))]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=500,
                          cwd=Path(__file__).resolve().parents[1])
    got = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
    assert got, proc.stderr[-3000:]
    print(json.dumps(got, indent=1))  # shown with -s, and on failure
    return got


def test_the_train_page_set_to_ray_shows_the_live_curve_and_metrics_of_a_ray_run(tmp_path, monkeypatch):
    """The app's queue through Ray: the Train page's "Where runs train" set to a Ray cluster, Launch,
    and the worker (the runs' driver) trains the run as a Ray task; the page shows it as any run."""
    got = in_namespace("ray_page.py", tmp_path, monkeypatch)
    assert got["caption"] and not got["exceptions"], got
    assert got["status"] == "done" and got["device"].startswith("ray: cpu"), got
    assert got["epochs"] == 3 and any(t for t in got["traces"]), got
    assert any("HR@10" in m for m in got["metrics"]), got


def test_a_separate_cluster_from_the_app_and_a_driver_that_dies(tmp_path, monkeypatch):
    """Against a `ray start --head` cluster (tests/ray_cluster.py, in the namespace): the sidebar
    says what the chosen cluster offers; a run launched while another trains on Ray joins the batch;
    the page's Cancel stops a Ray run; a SIGKILLed driver's tasks are ended by Ray and its runs
    reaped; a sweep whose cluster is killed under it ends with each run failed and why."""
    got = in_namespace("ray_cluster.py", tmp_path, monkeypatch)
    assert any("Ray tasks on the cluster at 127.0.0.1:" in c and "2 CPUs, 0 GPUs" in c for c in got["sidebar"]), got
    assert not got["warnings"] and not got["exceptions"], got
    assert got["short"]["status"] == "done" and got["short"]["device"].startswith("ray:"), got
    assert got["short"]["long_status_then"] == "running", got  # it did not wait for the long run
    assert got["long"]["status"] == "cancelled" and 2 <= got["long"]["epochs"] < 1000, got
    assert got["tasks_ended_after_s"] < 60, got
    assert sorted(got["reaped"]) == sorted(r["id"] for r in got["driver_runs"]), got
    assert all(r["status"] == "failed" and r["error"] for r in got["driver_runs"]), got
    gone = got["cluster_gone"]  # the cluster killed under a running sweep: a clear end, never a hang
    assert gone["exit"] == 1 and gone["after_s"] < 60, got
    assert all(r["status"] == "failed" and "Ray" in r["error"] and "Error: " in r["error"] for r in gone["runs"]), got


def test_a_sweep_of_many_more_runs_than_cpus_finishes_every_run(tmp_path, monkeypatch):
    """12 runs on 2 CPUs: the runs wait their turn, and the driver's mailbox may wait for a worker
    process on a busy machine; waiting is not an outage, so every run must end done."""
    monkeypatch.setenv("RECVIZ_HOME", str(tmp_path))
    table = last_json(recviz(*sweep_args("--values", "8,16,32", "--seeds", "0,1,2,3", "--epochs", "2", "--json",
                                         "--executor", "ray", "--address", "local"), netns=True))
    assert [r["status"] for r in table["rows"]] == ["done"] * 12, [r["error"] for r in table["rows"]]


def test_runs_that_each_ask_for_every_cpu_train_one_after_another(tmp_path, monkeypatch):
    """A run holds the CPUs it asked for while it trains. Ray lends a task's CPUs to other tasks
    while its main thread blocks in `ray.get`; when a task sent its epochs that way, a 2-CPU
    cluster trained 4 one-thread runs of the EINMF sweep at once. Each run's start is when its task
    began (not when it was queued), so no two of these may overlap by more than the driver's lag
    in noticing the end of one; meanwhile the runs that wait for the CPUs say so, and one of them
    cancelled ends at once, without having trained."""
    monkeypatch.setenv("RECVIZ_HOME", str(tmp_path))
    cpus = os.cpu_count()  # what `--address local` gives the cluster
    # 1000 epochs: each run trains for well over the 2 s asserted below (150 epochs took 1.7–2.1 s
    # once sampling got faster, and ~1 s once GMF's step was compiled: the assertion failed on runs
    # that had not overlapped)
    proc = recviz(*sweep_args("--values", "8,16,32,64", "--epochs", "1000", "--patience", "0", "--threads", str(cpus),
                              "--executor", "ray", "--address", "local"), netns=True, background=True)
    store, seen, cancelled = RunStore(), [], None
    try:
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            runs = store.list()
            seen.append(sorted(("waiting" if r.waiting else r.status) for r in runs if r.status == "running"))
            if cancelled is None and "running" in seen[-1] and "waiting" in seen[-1]:
                cancelled = max(r.id for r in runs if r.waiting)
                store.request_cancel(cancelled)  # what the app's Cancel and `recviz cancel` do
            time.sleep(0.2)
        assert proc.wait(timeout=1) == 1, open(os.path.join(os.environ["RECVIZ_HOME"], "sweep.log")).read()[-3000:]
    finally:
        proc.kill()
    states = [(k, len(list(g))) for k, g in itertools.groupby(seen)]  # what the store said, in turn
    assert cancelled is not None, states  # a run trained while others waited
    assert not any(s == ["running"] * 4 for s in seen), states  # sent runs wait: they do not "train"
    gone = store.get(cancelled)
    trained = sorted((r for r in store.list() if r.id != cancelled), key=lambda r: r.started_at)
    assert (gone.status, gone.error, gone.device, len(store.epochs(cancelled))) == ("cancelled", None, None, 0)
    assert gone.finished_at < trained[0].finished_at  # at once, not when a slot came free
    assert [r.status for r in trained] == ["done"] * 3
    assert all(r.finished_at - r.started_at > 2.0 for r in trained), [(r.started_at, r.finished_at) for r in trained]
    for before, after in zip(trained, trained[1:]):
        assert before.finished_at - after.started_at < 2.5, [(r.started_at, r.finished_at) for r in trained]


def _process_table() -> dict[int, tuple[int, str, str]]:
    """pid → (parent pid, start time, name) of every live (non-zombie) process."""
    table = {}
    for name in os.listdir("/proc"):
        try:
            stat = open(f"/proc/{name}/stat").read() if name.isdigit() else None
        except OSError:
            continue
        if stat:
            fields = stat[stat.rindex(")") + 2:].split()
            if fields[0] != "Z":
                table[int(name)] = (int(fields[1]), fields[19], stat[stat.index("(") + 1:stat.rindex(")")])
    return table


def _tree(root: int) -> dict[int, tuple[str, str]]:
    table, found = _process_table(), {root}
    while more := {p for p, (pp, _, _) in table.items() if pp in found and p not in found}:
        found |= more
    return {p: table[p][1:] for p in found if p in table}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_sigkilled_drivers_ray_helpers_end_with_it(tmp_path, monkeypatch):
    """kill -9 of a driver that started its cluster (`--address local`): within 10 s no process of
    its cluster is left — GCS, raylet, monitors, task workers, and the dashboard and runtime-env
    agents, which Ray left running for 20–35 s, reparented to pid 1."""
    monkeypatch.setenv("RECVIZ_HOME", str(tmp_path))
    code = ("import sys, time; from recviz.experiments.executors.ray_cluster import connect; ray = connect('local'); "
            "print(ray.get(ray.remote(lambda: 1).remote()), flush=True); time.sleep(600)")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "HOME": str(tmp_path)}
    driver = subprocess.Popen([*NETNS, sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert driver.stdout.readline().strip() == "1"  # the cluster runs a task
        deadline = time.monotonic() + 60
        while not {"ray::DashboardA", "ray::RuntimeEnv"} <= {n for _, n in _tree(driver.pid).values()}:
            assert time.monotonic() < deadline, _tree(driver.pid)
            time.sleep(0.5)
        time.sleep(2)  # the watcher notes the tree every second
        started = _tree(driver.pid)
        assert {"raylet", "gcs_server"} <= {n for _, n in started.values()}, started
    finally:
        driver.kill()
        driver.wait()
    deadline = time.monotonic() + 10
    while left := {p: n for p, (st, n) in started.items() if _process_table().get(p, (0, None))[1] == st}:
        assert time.monotonic() < deadline, f"still running 10 s after the driver was killed: {left}"
        time.sleep(0.5)
