"""Errors on a page: the boundary no traceback crosses, and a RecvizError shown with its fix."""

from __future__ import annotations

import contextlib

import streamlit as st

from recviz import crashlog
from recviz.analysis.messages import for_page
from recviz.errors import RecvizError, StoreError
from recviz.experiments.reasons import cause


@contextlib.contextmanager
def error_boundary(where: str):
    """No traceback reaches the page: a RecvizError is shown with its fix; an unexpected error
    becomes one short message that names the log file holding its traceback (`recviz.crashlog`);
    a store that cannot be used
    (`StoreError`) is shown with how to recover and stops the page. Streamlit's own control flow
    (st.stop, st.rerun, st.switch_page) passes through: it is not an Exception."""
    try:
        yield
    except StoreError as exc:  # nothing works without the store: say how to recover, once, and stop
        log = crashlog.write(exc, where)
        show_error(exc)
        if log:
            st.caption(f"Details: {log}")
        st.stop()
    except RecvizError as exc:  # a problem a person can fix (damaged or swapped run files, bad data): its fix
        show_error(exc)
    except Exception as exc:  # noqa: BLE001 — the boundary
        log = crashlog.write(exc, where)
        known = cause(exc)  # a full disk, a directory that cannot be written: say so
        st.error(f"{known}  \nDetails: {log}" if known else crashlog.message(exc, log))


def show_error(err, rename: dict[str, str] | None = None) -> None:
    """A RecvizError on the page: the problem, then its fix on a line of its own; `rename` puts
    the names a person knows in place of server paths (an upload's temporary copy). CLI flags
    are said by the page's widget names (`recviz.analysis.messages.for_page`)."""
    problem, fix = for_page(str(err)), None
    if getattr(err, "fix", None):
        problem, _, fix = problem.partition("\n  Fix: ")
    for path, name in (rename or {}).items():
        problem = problem.replace(path, name)
    st.error(problem + (f"  \n**Fix:** {fix}" if fix else ""))
