"""The understanding views' stored results as the Results page reads them: each finished run's
per-user results loaded once per app process (a run's artifacts never change once it is done)."""

from __future__ import annotations

import streamlit as st

from pages.ui.runs import run_store
from recviz import paths
from recviz.analysis import peruser


def run_results(run_id: int, status: str) -> peruser.RunResults:
    """`recviz.analysis.peruser.load` for a run of this app's store, cached by its id and status
    (a run read before it finished is read again once it has)."""
    return _load(str(paths.home()), int(run_id), status)


@st.cache_resource(max_entries=64, show_spinner=False)
def _load(home: str, run_id: int, status: str) -> peruser.RunResults:
    return peruser.load(run_store(), run_id)
