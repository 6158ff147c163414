"""The "What do these numbers mean?" popover shown beside numbers."""

from __future__ import annotations

import streamlit as st

from recviz.eval.glossary import explain as words


def explain(*terms: str, container=None) -> None:
    """The glossary's words for `terms` (HR@K, NDCG@K, the protocol, the best validation epoch;
    all of them when none are named) in a popover."""
    with (container or st).popover("What do these numbers mean?", icon=":material/help:"):
        st.markdown(words(*terms))
