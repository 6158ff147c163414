"""Where runs train: this machine (and its devices) or a Ray cluster — the Train page's choice
and every page's sidebar line."""

from __future__ import annotations

import streamlit as st

from recviz.errors import RecvizError
from recviz.experiments import executors
from recviz.analysis.messages import RAY_ADDRESS_LABEL
from recviz.options import DEVICES
from pages.ui.errors import show_error


@st.cache_resource
def devices() -> list[str]:
    """The device choices this machine has: cuda only where torch sees a GPU."""
    import torch  # here, not at the top: importing torch takes seconds, and only the Train form asks

    return [d for d in DEVICES if d != "cuda" or torch.cuda.is_available()]


@st.cache_resource
def device_label() -> str:
    """What "auto" trains on here, e.g. "CPU (2 threads)"."""
    from recviz.models.device import describe  # imports torch (seconds): only when a page shows it

    return describe()


def executor_choice() -> str:
    """The Train page's "Where runs train": every registered executor by its label (this machine,
    a one-thread run per core at once; a Ray cluster). Remembered in the data directory
    for the app's queue; choosing one with machines elsewhere (a cluster) joins it once from a
    short-lived process, to say at once whether it can be reached and what it offers. Returns a
    caption saying where the next run trains."""
    current = executors.chosen()
    left, right = st.columns([1, 2])
    picked = left.radio("Where runs train", executors.EXECUTORS, horizontal=True, key="executor",
                        index=executors.EXECUTORS.index(current["executor"]),
                        format_func=lambda e: executors.get(e).label,
                        captions=[executors.EXECUTOR_HELP[e] for e in executors.EXECUTORS])
    takes_address = executors.get(picked).takes_address
    address = right.text_input(RAY_ADDRESS_LABEL, current["address"], key="ray_address", disabled=not takes_address,
                               help=executors.ADDRESS_HELP[0].upper() + executors.ADDRESS_HELP[1:])
    check, address = False, address.strip() or "auto"  # as `choose` keeps it: not changed on every rerun
    if (picked, address) != (current["executor"], current["address"]):
        try:
            current = executors.choose(picked, address)
            check = takes_address
        except RecvizError as err:
            show_error(err)
    if executors.get(current["executor"]).takes_address:
        check |= right.button("Check the cluster", key="check_cluster",
                              help="Join it now and show how many CPUs and GPUs it offers.")
        if check:
            with st.spinner(f"Joining the Ray cluster at {current['address']}…"):
                try:
                    executors.get(current["executor"]).probe(current["address"])
                except RecvizError as err:
                    st.warning(f"{err} — runs you launch will fail with this until it is reachable.")
    return executors.where_runs_train(current) + "."


def executor_sidebar(slot) -> None:
    """Every page's sidebar (`slot`, a place in it): where runs train and what that offers."""
    slot.caption(executors.where_runs_train())
