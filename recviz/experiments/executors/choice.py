"""The app's choice of executor: the Train page's "Where runs train" and `recviz executor`,
remembered in the data directory and read by the app's worker before each batch of queued runs;
and the line the sidebar shows for it."""

from __future__ import annotations

from recviz import paths
from recviz.files import read_json, write_json

SETTINGS = "executor.json"  # in the data directory: the app's choice of executor


def chosen() -> dict:
    """The executor the app's queue uses: {"executor": a registered name, "address": ...}; the
    first registered one (local) when never chosen, or when the one chosen is no longer there."""
    from recviz.experiments.executors.registry import REGISTRY

    try:
        got = read_json(paths.home() / SETTINGS)
    except (OSError, ValueError):
        got = {}
    got = got if isinstance(got, dict) else {}
    executor = got.get("executor") if got.get("executor") in REGISTRY else next(iter(REGISTRY))
    return {"executor": executor, "address": str(got.get("address") or "auto")}


def choose(executor: str, address: str = "auto") -> dict:
    """Remember the executor for the app's queue (the next run the worker takes uses it)."""
    from recviz.experiments.executors.registry import get

    get(executor).require()  # an unknown name, or one whose package is missing: a RecvizError
    write_json(paths.home() / SETTINGS, {"executor": executor, "address": address.strip() or "auto"})
    return chosen()


def where_runs_train(current: dict | None = None) -> str:
    """One line saying where the app's queue trains and what that offers — for the sidebar and
    `recviz executor`: "Runs train on this machine: 2 CPUs, 0 GPUs, one at a time", or a Ray
    cluster's CPUs and GPUs as last seen (a cluster is only asked when a run or `probe` joins it)."""
    from recviz.experiments.executors.registry import get

    current = current or chosen()
    return get(current["executor"]).where(current["address"])
