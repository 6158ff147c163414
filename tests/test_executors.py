"""The executor seam: every caller (`recviz train`, `recviz sweep`, the app's worker) finds its
executor by name in the registry, so one class and one registry line make a new one usable
everywhere; and the local executor's outcomes — a run that fails or is cancelled is recorded and
the others train, a Ctrl-C is recorded and stops the batch. The Ray executor: tests/test_ray.py."""

import json
import os
from typing import ClassVar

import pytest

from recviz.config import RunConfig
from recviz.errors import RecvizError
from recviz.experiments import executors, worker
from recviz.experiments.executors.base import Executor
from recviz.experiments.executors.local import LocalExecutor
from recviz.experiments.store import RunStore

TINY = "synthetic:users=60,items=300,interactions=1500"


def test_the_registry_names_every_executor_and_an_unknown_name_is_a_readable_error():
    assert list(executors.REGISTRY)[0] == executors.EXECUTORS[0] == "local"
    assert set(executors.EXECUTORS) <= set(executors.REGISTRY)
    for cls in executors.REGISTRY.values():
        assert issubclass(cls, Executor) and cls.help and cls.label
    with pytest.raises(RecvizError, match="(?s)no executor 'slurm'.*choose one of local, ray"):
        executors.get("slurm")
    assert executors.chosen()["executor"] == "local"  # never chosen: the first
    with pytest.raises(RecvizError, match="(?s)no executor 'slurm'.*choose one of local, ray"):
        executors.choose("slurm")


class Recording(LocalExecutor):
    """An executor as a new module adds one (here: the local one, noting what it is asked)."""

    label = "a test double"
    help = "the local executor, noting its calls"
    calls: ClassVar[list] = []

    def execute(self, store, runs, **kwargs):
        Recording.calls.append({"runs": list(runs), "address": self.address, "threads": self.threads,
                                "more": kwargs.get("more") is not None})
        return super().execute(store, runs, **kwargs)


@pytest.fixture
def recording(monkeypatch):
    Recording.calls = []
    monkeypatch.setitem(executors.REGISTRY, "recording", Recording)  # the one registry line
    monkeypatch.setattr(executors, "EXECUTORS", (*executors.EXECUTORS, "recording"))  # offered to the app
    return Recording


def test_one_registry_line_makes_an_executor_usable_by_train_and_sweep(recording, capsys):
    from recviz.cli import main

    assert main(["train", "--dataset", TINY, "--model", "itempop", "--executor", "recording", "--address", "here",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert RunStore().get(out["run_id"]).status == "done" and out["metrics"]["HR@10"] >= 0
    assert main(["sweep", "--dataset", TINY, "--model", "itemknn", "--param", "neighbors", "--values", "5,10",
                 "--executor", "recording", "--json"]) == 0
    table = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["status"] for r in table["rows"]] == ["done", "done"] and table["executor"] == "recording"
    assert [len(c["runs"]) for c in recording.calls] == [1, 2]
    assert recording.calls[0]["address"] == "here"


def test_the_apps_worker_hands_the_queue_to_the_chosen_executor(recording):
    store = RunStore()
    executors.choose("recording")
    ids = [store.create(RunConfig.build(dataset=TINY, model="itempop", seed=s)) for s in range(3)]
    assert worker._execute_queue(store, store.next_queued(), 1, False) == 3
    assert [store.get(i).status for i in ids] == ["done"] * 3
    [call] = recording.calls  # the first run, then the others as it asked for more
    assert call["runs"] == [ids[0]] and call["more"] and call["threads"] == 1


@pytest.mark.usefixtures("one_torch_thread")
def test_a_failed_or_cancelled_run_is_an_outcome_and_the_others_train():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: a cuda run would not fail")
    store, executor = RunStore(), executors.get("local")()
    long = RunConfig.build(dataset=TINY, model="gmf", emb_dim=8, epochs=200, patience=0)
    configs = [long, long.replace(device="cuda"), RunConfig.build(dataset=TINY, model="itempop")]
    epochs = []

    def on_epoch(run_id, report):
        epochs.append(run_id)
        if report.epoch == 1:
            executor.cancel(store, run_id)  # as the app's Cancel: the flag in the store

    outcome = executor.train(store, configs, on_epoch=on_epoch)
    assert list(outcome.values()) == ["cancelled", "failed", "done"], outcome
    first, cuda, pop = (store.get(i) for i in outcome)
    assert 1 <= len(store.epochs(first.id)) < 200 and first.error is None
    assert "no CUDA GPU" in cuda.error and pop.summary["metrics"]


def test_ctrl_c_is_recorded_as_a_cancel_and_stops_the_batch(monkeypatch):
    monkeypatch.setenv("RECVIZ_LOCAL_SLOTS", "1")  # one by one, in this process (side by side: tests/test_pool.py)
    store = RunStore()

    def interrupt(run_id, report):
        raise KeyboardInterrupt

    configs = [RunConfig.build(dataset=TINY, model="gmf", emb_dim=8, epochs=3, seed=s) for s in (0, 1)]
    with pytest.raises(KeyboardInterrupt):
        executors.get("local")().train(store, configs, on_epoch=interrupt)
    [run] = store.list()  # the second run was never created
    assert run.status == "cancelled" and store.epochs(run.id)["epoch"].tolist() == [1]


def test_the_local_executor_keeps_every_core_busy_by_default(monkeypatch):
    """Unset, RECVIZ_LOCAL_SLOTS is 'cores': as many runs at once as this process may use cores;
    a number is that many, 1 one at a time."""
    monkeypatch.delenv("RECVIZ_LOCAL_SLOTS", raising=False)
    assert LocalExecutor.slots() == len(os.sched_getaffinity(0))
    for text, slots in (("cores", len(os.sched_getaffinity(0))), ("1", 1), (" 3 ", 3)):
        monkeypatch.setenv("RECVIZ_LOCAL_SLOTS", text)
        assert LocalExecutor.slots() == slots
