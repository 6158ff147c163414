"""The run store and the background worker, as the pages use them: the cached store, a run's
status badge, submitting a run, and giving orphaned runs a verdict."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from recviz import paths
from recviz.config import RunConfig
from recviz.experiments import launch
from recviz.experiments.store import WAITING_FOR_SLOT, RunStore

STATUS_BADGE = {"queued": ":grey[● queued]", "running": ":blue[● running]", "done": ":green[● done]",
                "failed": ":red[● failed]", "cancelled": ":orange[● cancelled]"}


def status_badge(run) -> str:
    """A run's status as a coloured badge; a run its driver holds that waits for a slot on a Ray
    cluster is not shown training."""
    if run.waiting:
        return f":grey[● {WAITING_FOR_SLOT}]"
    return STATUS_BADGE.get(run.status, run.status)


def run_store() -> RunStore:
    """The run store of the current data directory (cached per directory: RECVIZ_HOME may change
    between app sessions in one process, as it does between tests)."""
    return _store(str(paths.home()))


@st.cache_resource
def _store(home: str) -> RunStore:
    return RunStore(Path(home) / "runs.db")


def on_app_start() -> None:
    """Once per browser session: mark runs whose worker died as failed, so nothing shows
    'running' forever after a crash or a server restart, and give queued runs a worker if the
    one they waited for is gone."""
    if not st.session_state.get("_reaped"):
        recover()
        st.session_state["_reaped"] = True


def recover() -> None:
    """`recviz.experiments.launch.recover` with this app's worker threads (the Train page's poll calls it)."""
    launch.recover(worker_threads())


def worker_threads() -> int | None:
    """torch threads for workers started from the app: on a small machine leave a core for the
    server and the browser (RECVIZ_WORKER_THREADS overrides)."""
    if os.environ.get("RECVIZ_WORKER_THREADS"):
        return int(os.environ["RECVIZ_WORKER_THREADS"])
    return 1 if (os.cpu_count() or 1) <= 2 else None


def submit(config: RunConfig, sweep_id=None, mlflow: str | None = None) -> int:
    """Queue `config` for the background worker; its run id."""
    return launch.submit(config, threads=worker_threads(), sweep_id=sweep_id, mlflow=mlflow)
