"""Home: what RecViz does, a one-click first run, and the latest runs."""

import streamlit as st

from pages.ui import frame
from pages.ui.executors import device_label
from pages.ui.glossary import explain
from pages.ui.runs import run_store, status_badge, submit
from recviz.config import RunConfig

frame.run_in_app()  # Streamlit may run this file alone (legacy pages/ layout): then the frame runs it

st.image("assets/logo.svg", width=180)
st.markdown(
    "Train neural collaborative-filtering recommenders — **GMF, MLP, NeuMF, DMF, EINMF**, a "
    "multi-behaviour NeuMF — next to the baselines **ItemPop, ItemKNN, BPR-MF, eALS**, watch "
    "them learn, and see *why* they recommend what they do."
)
left, right = st.columns([3, 2])
with left:
    st.subheader("Start here")
    quick = RunConfig()  # the default model with its defaults on the built-in dataset: what `recviz train` trains
    label = f"Train {quick.spec.title} on the built-in dataset"
    if st.button(label, type="primary", key="quick_start",
                 help=f"{quick.dataset} data, leave-one-out, {quick.spec.title} with its default settings"):
        run_id = submit(quick)
        st.session_state["active_run"] = st.session_state["just_launched"] = run_id
        st.switch_page("pages/train.py")
    st.caption("Or pick your own data on **Data**, set every knob on **Train**, compare on **Results** "
               "and look inside a model on **Recommendations**.")
    st.markdown(f"**Training device:** {device_label()}")
with right:
    st.subheader("Recent runs")
    runs = run_store().list(limit=8)
    if not runs:
        st.info("No runs yet. The button on the left trains one in under a minute.")
    for run in runs:
        metric = (run.summary or {}).get("metrics", {}).get("HR@10")
        protocol = run.config.protocol_detail
        score = f" · HR@10 {metric:.3f} ({protocol})" if metric is not None else ""
        st.markdown(f"{status_badge(run)} **#{run.id}** {run.name or run.model} on "
                    f"{run.dataset}{score}")
    if runs:
        explain("HR@K", "protocol")
