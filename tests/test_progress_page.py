"""The Train page's live progress of the one-click run (NeuMF with pre-training: three phases),
driven by AppTest over a run whose epochs are stored as a worker stores them: it names each phase,
counts every phase's epochs, never passes 100 % and never promises "< 1 s left" with most of the
run to go."""

import os

import pytest
from streamlit.testing.v1 import AppTest

from recviz.config import RunConfig
from recviz.experiments.store import RunStore
from tests.test_app import ROOT

pytestmark = pytest.mark.usefixtures("app_env")


@pytest.fixture
def app_env(monkeypatch):
    monkeypatch.chdir(ROOT)


def one_click_config() -> RunConfig:
    return RunConfig()  # what Home's one-click button trains (pages/home.py)


def epoch(n: int, phase: str) -> dict:
    return {"epoch": n, "phase": phase, "train_loss": 0.3, "valid": {"HR@10": 0.5, "NDCG@10": 0.3},
            "seconds": 0.4, "eval_seconds": 0.1, "samples": 1000, "samples_per_second": 2500.0,
            "best_epoch_so_far": n}


def page(run_id: int) -> tuple[str, float]:
    """The watched run's status line and its progress bar (0–1)."""
    at = AppTest.from_file(str(ROOT / "pages" / "train.py"), default_timeout=60)
    at.session_state["active_run"] = run_id
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    text = " ".join(m.value for m in at.markdown if "epoch" in m.value)
    bar = at.get("progress")[0].proto.value / 100
    return text, bar


def test_the_one_click_runs_progress_names_each_phase_and_counts_them_all():
    config = one_click_config()
    assert config.model == "neumf" and config.option("pretrain")
    epochs = config.option("epochs")
    store = RunStore()
    run_id = store.create(config, claim=os.getpid())
    store.mark_running(run_id, os.getpid(), "cpu")
    reported = []

    def report(phase: str, n: int) -> None:
        for _ in range(n):
            reported.append(epoch(len(reported) + 1, phase))
        store.add_epochs(run_id, reported[-n:])

    report("gmf", epochs - 3)  # late in the first phase: two thirds of the run still to go
    text, bar = page(run_id)
    assert f"epoch {epochs - 3}/{epochs} of gmf (phase 1 of 3)" in text
    assert bar == pytest.approx((epochs - 3) / (3 * epochs), abs=0.01)
    assert "< 1 s" not in text and "left" in text

    report("gmf", 3)
    report("mlp", 2)
    text, bar = page(run_id)
    assert f"epoch 2/{epochs} of mlp (phase 2 of 3)" in text
    assert bar == pytest.approx((epochs + 2) / (3 * epochs), abs=0.01)

    report("mlp", epochs - 2)
    report("neumf", epochs)  # every epoch of every phase: the bar is full, never more
    text, bar = page(run_id)
    assert f"epoch {epochs}/{epochs} of neumf (phase 3 of 3)" in text and bar <= 1.0
