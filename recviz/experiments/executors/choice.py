"""The app's choice of executor: the Train page's "Where runs train" and `recviz executor`,
remembered in the data directory and read by the app's worker before each batch of queued runs;
and the line the sidebar shows for it."""

from __future__ import annotations

import json

SETTINGS = "executor.json"  # in the data directory: the app's choice of executor


def chosen() -> dict:
    """The executor the app's queue uses: {"executor": one of `EXECUTORS`, "address": ...}; the
    first (local) when never chosen, or when the one chosen is no longer offered."""
    from recviz import paths
    from recviz.experiments import executors

    try:
        got = json.loads((paths.home() / SETTINGS).read_text())
    except (OSError, ValueError):
        got = {}
    got = got if isinstance(got, dict) else {}
    executor = got.get("executor") if got.get("executor") in executors.EXECUTORS else executors.EXECUTORS[0]
    return {"executor": executor, "address": str(got.get("address") or "auto")}


def choose(executor: str, address: str = "auto") -> dict:
    """Remember the executor for the app's queue (the next run the worker takes uses it)."""
    from recviz import paths
    from recviz.errors import RecvizError
    from recviz.experiments import executors
    from recviz.experiments.artifacts import write_atomically

    if executor not in executors.EXECUTORS:
        raise RecvizError(f"no executor {executor!r} for the app's queue",
                          fix=f"choose one of {', '.join(executors.EXECUTORS)}")
    executors.get(executor).require()  # one whose package is missing: a RecvizError saying what to install
    write_atomically(paths.home() / SETTINGS, json.dumps({"executor": executor, "address": address.strip() or "auto"}).encode())
    return chosen()


def where_runs_train(current: dict | None = None) -> str:
    """One line saying where the app's queue trains and what that offers — for the sidebar and
    `recviz executor`: "Runs train on this machine: 2 CPUs, 0 GPUs, one at a time", or a Ray
    cluster's CPUs and GPUs as last seen (a cluster is only asked when a run or `probe` joins it)."""
    from recviz.experiments.executors import get

    current = current or chosen()
    return get(current["executor"]).where(current["address"])
