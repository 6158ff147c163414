"""Run by tests/test_ray.py inside a network namespace (Ray may only start in one here): the
Train page set to the ray executor launches a run, the worker trains it as a Ray task, and the
page shows its live curve and final metrics as for a local run. Prints one JSON line."""

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from streamlit.testing.v1 import AppTest

    from recviz.experiments import launch
    from recviz.experiments.store import RunStore

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("pages/train.py").run()
    at.radio(key="executor").set_value("ray").run()
    at.text_input(key="ray_address").set_value("local").run()
    at.selectbox(key="train_dataset").set_value("synthetic").run()
    at.selectbox(key="model").set_value("gmf").run()
    at.number_input(key="opt.gmf.None.epochs").set_value(3).run()
    caption = [c.value for c in at.caption if "Ray tasks" in c.value]
    at.button(key="launch").click().run()
    run_id = at.session_state["active_run"]
    store, deadline = RunStore(), time.monotonic() + 240
    while not store.get(run_id).finished and time.monotonic() < deadline:
        time.sleep(0.5)
    at.run()  # the live fragment does not tick in AppTest: rerun to refresh
    run = store.get(run_id)
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    print(json.dumps({"caption": caption, "status": run.status, "device": run.device, "error": run.error,
                      "exceptions": [e.value for e in at.exception],
                      "traces": [t.get("name") for t in chart["data"]], "epochs": len(store.epochs(run_id)),
                      "metrics": [m.label for m in at.metric], "subheaders": [h.value for h in at.subheader]}))
    for proc in launch.children():
        proc.kill()


if __name__ == "__main__":
    main()
