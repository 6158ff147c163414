"""Pickers that stay small at any data size: an id search instead of a select box of a million
ids, and a pager instead of a table of a user's every row."""

from __future__ import annotations

import streamlit as st

from recviz.analysis.history import PAGE_SIZE, PAGE_SIZES, Page, page_bounds
from recviz.analysis.lookup import SHOWN, IdIndex


def search_id(label: str, index: IdIndex, key: str, default: str = "", noun: str = "user", where: str = "",
              suggestions=(), suggestions_label: str = "", suggestions_key: str = "") -> int | None:
    """A raw id typed (or its beginning), then a pick among at most `lookup.SHOWN` matches; the
    internal id chosen. When nothing matches, the page says so and offers the first `SHOWN` of
    `suggestions` (internal ids, e.g. the run's evaluated users; else the first ids in text order)
    to pick from instead; None only when there are no ids at all. Nothing but these few ids is
    sent to the browser, however many there are."""
    query = st.text_input(label, value=default, key=key,
                          help=f"The {noun} id as in your data: the whole id, or its first characters.")
    q = query.strip()
    found = index.search(q, SHOWN)
    if found.total == 0:
        offered = [int(i) for i in list(suggestions)[:SHOWN]] or [int(i) for i in index.search("", SHOWN).ids]
        if not offered:
            st.warning(f"There are no {noun}s in {where or 'this data'}.")
            return None
        st.warning(f"No {noun} {q!r} in {where or 'this data'}, and no {noun} id starts with it. Pick one of "
                   f"these instead, or type another id or its beginning:")
        return int(st.selectbox(suggestions_label or f"{noun.capitalize()}s (the first {len(offered)})", offered,
                                format_func=lambda i: str(index.ids[i]), key=suggestions_key or f"{key}.pick",
                                required=True))
    if found.total == 1:
        st.caption(f"{noun.capitalize()} {index.ids[found.ids[0]]}" + ("" if found.exact else " (the only match)"))
        return int(found.ids[0])
    shown = len(found.ids)
    more = f", the first {shown} in text order" if found.total > shown else ""
    # one select box per query: the matches of an earlier query never linger as its options
    pick = st.selectbox(f"{found.total:,} {noun} ids start with {q!r}{more}", list(found.ids),
                        format_func=lambda i: str(index.ids[i]), key=f"{key}.match.{q}", required=True)
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
    prev_col, next_col, size_col = st.columns([1, 1, 2.5])  # fits half a page's width
    prev_col.button(":material/chevron_left:", key=f"{key}.prev", on_click=_turn, args=(key, -1), help="Previous page",
                    disabled=where.page == 0)
    next_col.button(":material/chevron_right:", key=f"{key}.next", on_click=_turn, args=(key, 1), help="Next page",
                    disabled=where.page >= where.pages - 1)
    size_col.selectbox("per page", PAGE_SIZES, index=PAGE_SIZES.index(size) if size in PAGE_SIZES else 0,
                       key=f"{key}.size", label_visibility="collapsed", format_func=lambda n: f"{n} a page")
    st.caption(f"{noun} {where.start + 1:,}–{where.stop:,} of {total:,} · page {where.page + 1:,} of {where.pages:,}")
    return where
