"""The frame every page runs in: page config, start-up checks, navigation, the sidebar, and an
error boundary around the page. `app.py` (the entry script) runs `main`; pages hold only their
own content and import nothing from `app`.

Streamlit takes a `pages/` folder beside the entry script for its legacy multipage layout
(`PagesManager.uses_pages_directory`) until a script run calls `st.navigation`; while it does,
it runs a page opened at its own address (a reload or a bookmark of /train on a server that just
started, and every run of an `AppTest`) as that file alone — no navigation, no sidebar, no error
boundary. So each page starts with `run_in_app()`, which then runs the frame, and the frame runs
the page inside it.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from pages.ui.errors import error_boundary
from pages.ui.executors import executor_sidebar
from pages.ui.runs import on_app_start

ENTRY = Path(__file__).resolve().parents[2] / "app.py"  # the script `streamlit run` is given
PAGES = [  # (file, title, icon): the Streamlit address of each is its file name (/train)
    ("pages/home.py", "Home", ":material/home:"),
    ("pages/data.py", "Data", ":material/table:"),
    ("pages/train.py", "Train", ":material/model_training:"),
    ("pages/results.py", "Results", ":material/leaderboard:"),
    ("pages/recommendations.py", "Recommendations", ":material/recommend:"),
]

_run = threading.local()  # per script run: each session runs its script in a thread of its own


def main() -> None:
    """The whole app: page config, start-up checks, navigation, the sidebar, the chosen page."""
    st.set_page_config(page_title="RecViz", page_icon=":material/hub:", layout="wide")
    with error_boundary("app start"):
        on_app_start()
    navigation = st.navigation([st.Page(path, title=title, icon=icon, default=path == PAGES[0][0])
                                for path, title, icon in PAGES])
    sidebar = st.sidebar.empty()
    with error_boundary("sidebar"):  # before the page: one that stops early (st.stop) keeps it
        executor_sidebar(sidebar)
    with error_boundary(f"page {navigation.title}"), _framing():
        navigation.run()
    with error_boundary("sidebar"):  # and after: it says what the page may just have chosen
        executor_sidebar(sidebar)


@contextlib.contextmanager
def _framing():
    _run.framed = True
    try:
        yield
    finally:
        _run.framed = False


def run_in_app() -> None:
    """The first call of every page: when Streamlit runs the page alone (its legacy `pages/`
    layout, above), run the frame instead — which runs this page inside it — and stop. Inside the
    frame, or with the page itself the main script (as a test may run it), nothing happens."""
    ctx = get_script_run_ctx()
    if getattr(_run, "framed", False) or ctx is None or Path(ctx.main_script_path).resolve() != ENTRY:
        return
    main()
    st.stop()
