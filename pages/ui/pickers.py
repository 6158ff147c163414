"""Pickers that stay small at any data size: an id search instead of a select box of a million
ids, and a pager instead of a table of a user's every row."""

from __future__ import annotations

import streamlit as st

from recviz.analysis.history import PAGE_SIZE, PAGE_SIZES, Page, page_bounds
from recviz.analysis.lookup import SHOWN, IdIndex


def search_id(label: str, index: IdIndex, key: str, default: str = "", noun: str = "user") -> int | None:
    """A raw id typed (or its beginning), then a pick among at most `lookup.SHOWN` matches; the
    internal id chosen, or None after saying that nothing matches. Nothing but the matches is sent
    to the browser, however many ids there are."""
    query = st.text_input(label, value=default, key=key,
                          help=f"The {noun} id as in your data: the whole id, or its first characters.")
    found = index.search(query, SHOWN)
    if found.total == 0:
        examples = ", ".join(index.ids[i] for i in index.search("", 3).ids)
        st.warning(f"No {noun} id is or starts with {query.strip()!r} (there are {len(index.ids):,}, "
                   f"e.g. {examples}). Type another.")
        return None
    if found.total == 1:
        st.caption(f"{noun.capitalize()} {index.ids[found.ids[0]]}" + ("" if found.exact else " (the only match)"))
        return int(found.ids[0])
    shown = len(found.ids)
    more = f", the first {shown} in text order" if found.total > shown else ""
    # one select box per query: the matches of an earlier query never linger as its options
    pick = st.selectbox(f"{found.total:,} {noun} ids start with {query.strip()!r}{more}", list(found.ids),
                        format_func=lambda i: str(index.ids[i]), key=f"{key}.match.{query.strip()}", required=True)
    return int(pick)


def _turn(key: str, step: int) -> None:
    st.session_state[key] = st.session_state.get(key, 0) + step


def pager(total: int, key: str, noun: str = "rows") -> Page:
    """Previous / next over `total` rows, a page size to choose, and where the page is; the page
    to show (`history.Page`). The page number lives in session_state[key]."""
    size = st.session_state.get(f"{key}.size", PAGE_SIZE)
    where = page_bounds(total, st.session_state.get(key, 0), size)
    st.session_state[key] = where.page  # a page past the end (a shorter history) moves back
    if where.pages == 1:
        return where
    prev_col, text_col, next_col, size_col = st.columns([1, 3, 1, 1.4])
    prev_col.button("Previous", key=f"{key}.prev", on_click=_turn, args=(key, -1), disabled=where.page == 0)
    next_col.button("Next", key=f"{key}.next", on_click=_turn, args=(key, 1), disabled=where.page >= where.pages - 1)
    text_col.caption(f"{noun} {where.start + 1:,}–{where.stop:,} of {total:,} · page {where.page + 1:,} of {where.pages:,}")
    size_col.selectbox("per page", PAGE_SIZES, index=PAGE_SIZES.index(size) if size in PAGE_SIZES else 0,
                       key=f"{key}.size", label_visibility="collapsed", format_func=lambda n: f"{n} per page")
    return where
