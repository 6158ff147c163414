"""RecViz — the Streamlit app: navigation and the home page.

Run with `streamlit run app.py`. Training never happens in this process: pages submit runs to a
background worker (`recviz.experiments.worker`) and read what it stores.
"""

import streamlit as st

from pages import common
from recviz.data.split import protocol_label


def home() -> None:
    st.image("assets/logo.svg", width=180)
    st.markdown(
        "Train neural collaborative-filtering recommenders — **GMF, MLP, NeuMF, DMF, EINMF**, a "
        "multi-behaviour NeuMF — next to the baselines **ItemPop, ItemKNN, BPR-MF, eALS**, watch "
        "them learn, and see *why* they recommend what they do."
    )
    left, right = st.columns([3, 2])
    with left:
        st.subheader("Start here")
        quick = common.quick_start_config()
        label = f"Train {quick.spec.title} on the built-in dataset"
        if st.button(label, type="primary", key="quick_start",
                     help=f"{quick.dataset} data, leave-one-out, {quick.spec.title} with its default settings"):
            run_id = common.submit(quick)
            st.session_state["active_run"] = st.session_state["just_launched"] = run_id
            st.switch_page("pages/train.py")
        st.caption("Or pick your own data on **Data**, set every knob on **Train**, compare on **Results** "
                   "and look inside a model on **Recommendations**.")
        st.markdown(f"**Training device:** {common.device_label()}")
    with right:
        st.subheader("Recent runs")
        runs = common.store().list(limit=8)
        if not runs:
            st.info("No runs yet. The button on the left trains one in under a minute.")
        for run in runs:
            metric = (run.summary or {}).get("metrics", {}).get("HR@10")
            protocol = protocol_label(run.protocol, run.config.candidates, run.config.valid)
            score = f" · HR@10 {metric:.3f} ({protocol})" if metric is not None else ""
            st.markdown(f"{common.status_badge(run)} **#{run.id}** {run.name or run.model} on "
                        f"{run.dataset}{score}")
        if runs:
            common.explain("HR@K", "protocol")


def main() -> None:
    """The whole app: page config, start-up checks, navigation, the sidebar, the chosen page."""
    st.set_page_config(page_title="RecViz", page_icon=":material/hub:", layout="wide")
    with common.error_boundary("app start"):
        common.on_app_start()
    navigation = st.navigation([
        st.Page(home, title="Home", icon=":material/home:", default=True),
        st.Page("pages/data.py", title="Data", icon=":material/table:"),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/results.py", title="Results", icon=":material/leaderboard:"),
        st.Page("pages/recommendations.py", title="Recommendations", icon=":material/recommend:"),
    ])
    sidebar = st.sidebar.empty()
    with common.error_boundary("sidebar"):  # before the page: one that stops early (st.stop) keeps it
        common.executor_sidebar(sidebar)
    with common.error_boundary(f"page {navigation.title}"), common.inside_app():
        navigation.run()
    with common.error_boundary("sidebar"):  # and after: it says what the page may just have chosen
        common.executor_sidebar(sidebar)


if __name__ == "__main__":
    main()
