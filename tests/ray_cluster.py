"""Run by tests/test_ray.py inside a network namespace (Ray may only start in one here), against a
cluster started as a separate `ray start --head`, so that it outlives the processes that drive it:

1. the Train page set to that cluster checks it, and the sidebar says what it offers;
2. a run launched while another trains on Ray joins the batch and finishes first;
3. the page's Cancel stops the Ray run that is still training;
4. `recviz sweep --executor ray` is SIGKILLed while its tasks train: Ray ends their processes and
   the store reaps the runs as any dead worker's;
5. the cluster is killed while a sweep trains on it: the sweep ends at once (no hang), each run
   failed with the reason.

Prints one JSON line of what it saw; the test judges it."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TINY = "synthetic:users=60,items=300,interactions=1500"
PORT = 6391


def wait_for(condition, timeout=120.0, what="a condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.2)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead too
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


def _answers(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def task_pid(run) -> int | None:
    device = run.device or ""
    return int(device.split("pid ")[1].split()[0]) if device.startswith("ray:") else None


def main() -> None:
    from streamlit.testing.v1 import AppTest

    from recviz.experiments import launch
    from recviz.experiments.store import RunStore

    address = f"127.0.0.1:{PORT}"
    ray_bin = str(Path(sys.executable).with_name("ray"))
    home = Path(os.environ["RECVIZ_HOME"])
    # --block: the head lives as long as this process group, which the end kills (never `ray stop`,
    # which would stop every Ray on the machine)
    head = subprocess.Popen([ray_bin, "start", "--head", "--block", f"--port={PORT}", "--num-cpus=2", "--num-gpus=0",
                             "--include-dashboard=false", "--disable-usage-stats"],
                            stdout=open(home / "head.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    seen: dict = {}
    try:
        wait_for(lambda: _answers(PORT) or head.poll() is not None, timeout=60, what="the head to listen")
        store = RunStore()
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90).run()
        at.switch_page("pages/train.py").run()
        at.radio(key="executor").set_value("ray").run()
        at.text_input(key="ray_address").set_value(address).run()  # joins it once, from a short-lived process
        seen["sidebar"] = [c.value for c in at.sidebar.caption]  # what the sidebar says right after the choice
        seen["warnings"] = [w.value for w in at.warning]

        # 2. a long run trains on Ray; a short one launched meanwhile joins the batch
        at.selectbox(key="train_dataset").set_value("synthetic").run()
        at.selectbox(key="model").set_value("gmf").run()
        at.number_input(key="opt.gmf.None.epochs").set_value(1000).run()
        at.number_input(key="opt.gmf.None.patience").set_value(0).run()
        at.button(key="launch").click().run()
        long_id = at.session_state["active_run"]
        wait_for(lambda: len(store.epochs(long_id)) >= 2, what="the long run's first epochs")
        at.number_input(key="opt.gmf.None.epochs").set_value(2).run()
        at.button(key="launch").click().run()
        short_id = at.session_state["active_run"]
        wait_for(lambda: store.get(short_id).finished, what="the short run")
        seen["short"] = {"status": store.get(short_id).status, "device": store.get(short_id).device,
                         "long_status_then": store.get(long_id).status}

        # 3. the page's Cancel (the live fragment does not tick in AppTest: rerun to refresh it)
        at.run()
        at.button(key=f"cancel_{long_id}").click().run()
        wait_for(lambda: store.get(long_id).finished, what="the cancelled run to stop")
        long_run = store.get(long_id)
        seen["long"] = {"status": long_run.status, "epochs": len(store.epochs(long_id)), "error": long_run.error}
        seen["exceptions"] = [e.value for e in at.exception]
        for proc in launch.children():
            proc.wait(timeout=60)

        # 4. the driver of a Ray sweep dies
        log = open(Path(os.environ["RECVIZ_HOME"]) / "driver.log", "w")
        driver = subprocess.Popen([sys.executable, "-m", "recviz", "sweep", "--dataset", TINY, "--model", "gmf",
                                   "--param", "emb_dim", "--values", "8,16", "--epochs", "1000", "--patience", "0",
                                   "--threads", "1", "--executor", "ray", "--address", address],
                                  stdout=log, stderr=subprocess.STDOUT)
        swept = lambda: [r for r in store.list() if r.sweep_id]  # noqa: E731
        wait_for(lambda: len(swept()) == 2 and all(task_pid(r) and store.epochs(r.id).shape[0] >= 1
                                                   for r in swept()), what="both tasks to train")
        pids = [task_pid(r) for r in swept()]
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        start = time.monotonic()
        wait_for(lambda: not any(alive(p) for p in pids), timeout=60, what="Ray to end the dead driver's tasks")
        seen["tasks_ended_after_s"] = round(time.monotonic() - start, 1)
        reaped = store.reap()  # what the app and the worker do on their next look
        seen["driver_runs"] = [{"id": r.id, "status": r.status, "error": r.error} for r in swept()]
        seen["reaped"] = reaped

        # 5. the cluster itself goes away while a sweep trains on it
        before = {r.id for r in store.list()}
        driver = subprocess.Popen([sys.executable, "-m", "recviz", "sweep", "--dataset", TINY, "--model", "gmf",
                                   "--param", "emb_dim", "--values", "8,16", "--epochs", "1000", "--patience", "0",
                                   "--threads", "1", "--executor", "ray", "--address", address],
                                  stdout=log, stderr=subprocess.STDOUT)
        lost = lambda: [r for r in store.list() if r.id not in before]  # noqa: E731
        wait_for(lambda: len(lost()) == 2 and all(store.epochs(r.id).shape[0] >= 1 for r in lost()),
                 what="the second sweep's tasks to train")
        os.killpg(head.pid, signal.SIGKILL)
        start = time.monotonic()
        driver.wait(timeout=120)
        seen["cluster_gone"] = {"exit": driver.returncode, "after_s": round(time.monotonic() - start, 1),
                                "runs": [{"status": r.status, "error": r.error} for r in lost()]}
    finally:
        for proc in launch.children():
            proc.kill()
        try:
            os.killpg(head.pid, signal.SIGTERM)
            head.wait(timeout=30)
        except ProcessLookupError:  # already gone (step 5 kills it)
            pass
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
    print(json.dumps(seen, default=str))


if __name__ == "__main__":
    main()
