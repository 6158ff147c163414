"""Results: every stored run, compared — metric bars, beyond-accuracy metrics and popularity bias,
two runs compared user by user, who a model fails, learning curves, sweep plots, export."""

import json

import streamlit as st

from pages.ui import frame
from pages.ui.errors import show_error
from pages.ui.glossary import explain
from pages.ui.runs import run_store
from pages.ui.understanding import run_results
from recviz import charts
from recviz.analysis import exposure, paired, progress, results, slices
from recviz.analysis.peruser import NotAvailable, metric_names
from recviz.errors import RecvizError
from recviz.eval.metrics import DEFAULT_KS, PRIMARY
from recviz.experiments import sweep
from recviz.experiments.store import MAX_NAME

frame.run_in_app()  # Streamlit may run this file alone (legacy pages/ layout): then the frame runs it
st.title("Results")
store = run_store()
runs = store.list(limit=1000)
if not runs:
    st.info("No runs yet — launch one on the Train page.")
    st.stop()

table = results.runs_table([r.to_row() for r in runs])
f1, f2, f3 = st.columns(3)
pick_data = f1.multiselect("Dataset", sorted(table["dataset"].unique()), key="filter_dataset")
pick_model = f2.multiselect("Model", sorted(table["model"].unique()), key="filter_model")
pick_status = f3.multiselect("Status", sorted(table["status"].unique()), key="filter_status")
shown = results.filter_runs(table, dataset=pick_data or None, model=pick_model or None,
                            status=pick_status or None)
st.dataframe(shown.drop(columns=["config", "protocol_key"]), hide_index=True, key="runs_table")
for r in runs:  # a stored row that cannot be read back: say why, beside the runs that list
    if r.status == "unreadable" and r.id in set(shown["id"]):
        st.caption(f"Run #{r.id} ({r.model}) is {r.error}")

with st.expander("Name, re-open or delete a run"):
    by_id = {r.id: r for r in runs}
    picked = st.selectbox("Run", list(shown["id"]), key="manage_run",
                          format_func=lambda i: f"#{i} {by_id[i].name or by_id[i].model} on {by_id[i].dataset} "
                                                f"· {by_id[i].status}", required=True)
    if picked is not None:
        run = by_id[int(picked)]
        # a form: typing a name and clicking "Save name" is one click (a disabled button until the field
        # was committed took two), and Enter saves too
        with st.form(f"name_form_{run.id}", border=False):
            n1, n2 = st.columns([3, 1], vertical_alignment="bottom")
            new_name = n1.text_input("Name", run.name, key=f"name_{run.id}", max_chars=MAX_NAME,
                                     placeholder="e.g. baseline, big embeddings")
            if n2.form_submit_button("Save name", key="save_name") and new_name != run.name:
                store.rename(run.id, new_name)
                st.rerun()
        a, b = st.columns(2)
        if a.button("Open its settings in the Train form", key="reopen_button"):
            st.session_state["reopen"] = run.id
            st.switch_page("pages/train.py")
        if b.button(f"Delete run #{run.id}…", key="delete", disabled=run.status == "running",
                    help="A running run must be cancelled first (Train page)." if run.status == "running" else None):
            st.session_state["confirm_delete"] = run.id
        if st.session_state.get("confirm_delete") == run.id:
            st.warning(f"Delete run #{run.id} ({run.name or run.model} on {run.dataset}) with its epochs, weights "
                       "and recommendation lists? This cannot be undone.")
            yes, no = st.columns(2)
            if yes.button(f"Yes, delete #{run.id}", type="primary", key="delete_yes"):
                store.delete(run.id)
                st.session_state.pop("confirm_delete")
                st.toast(f"Deleted run #{run.id}")
                st.rerun()
            if no.button("Keep it", key="delete_no"):
                st.session_state.pop("confirm_delete")
                st.rerun()

done = shown[shown["status"] == "done"]
if done.empty:
    st.info("No finished runs among these yet.")
    st.stop()
if results.mixed_protocols(done):
    st.warning("These runs use different protocols: their numbers are not comparable, so the charts "
               "keep them in separate panels.")

st.subheader("HR@K and NDCG@K on test")
explain()
repeated = results.seed_groups(done).duplicated().any()
over_seeds = st.toggle("Average runs that differ only in seed", value=bool(repeated), key="over_seeds",
                       disabled=not repeated,
                       help="One bar per setting: the mean over its runs, with an error bar of their standard "
                            "deviation. Runs count as repeats when they differ only in seed, split seed, threads or device."
                       if repeated else "No two of these runs differ only in their seed.")
st.plotly_chart(charts.metric_bars(results.metric_long(done, over_seeds=over_seeds)), key="metric_bars")

# ---- understanding: beyond accuracy, two runs user by user, who a model fails ----------------------
run_label = dict(zip(done["id"], results.picker_labels(done)))  # stable when another run is deleted
status_of = dict(zip(done["id"], done["status"]))


def stored(run_id):
    return run_results(run_id, status_of[run_id])


st.subheader("Beyond accuracy")
explain("beyond accuracy")
b1, b2 = st.columns([1, 3])
k = b1.selectbox("List length K", DEFAULT_KS, index=DEFAULT_KS.index(10), key="beyond_k", required=True)
beyond_ids = b2.multiselect("Runs", list(done["id"]), default=list(done["id"])[:6], key="beyond_runs",
                            format_func=run_label.get)
try:
    beyond_runs = [stored(i) for i in beyond_ids]
    st.dataframe(exposure.shown(exposure.table(beyond_runs, k=k)), hide_index=True, key="beyond_table")
    if notes := exposure.sample_notes(beyond_runs):
        st.caption(" · ".join(notes))
    st.plotly_chart(charts.popularity_bias(slices.popularity_bias([r for r in beyond_runs if r.available], k=k), k=k),
                    key="popularity_bias")
except RecvizError as err:
    show_error(err)

st.subheader("Compare two runs")
explain("paired comparison")
ids = list(done["id"])
c1, c2, c3 = st.columns([2, 2, 1])
run_a = c1.selectbox("A", ids, key="compare_a", format_func=run_label.get, required=True)
run_b = c2.selectbox("B", ids, index=min(1, len(ids) - 1), key="compare_b", format_func=run_label.get, required=True)
group_a, group_b = paired.seed_group(done, run_a), paired.seed_group(done, run_b)
with_seeds = st.toggle(f"With their other seeds ({len(group_a)} and {len(group_b)} runs)", key="compare_seeds",
                       disabled=len(group_a) < 2 and len(group_b) < 2,
                       help="Compare the two settings seed by seed: each run of A with the run of B on its split, "
                            "each user's value the mean over the seeds.")
side_a, side_b = (group_a, group_b) if with_seeds else ([run_a], [run_b])
try:
    loaded_a, loaded_b = [stored(i) for i in side_a], [stored(i) for i in side_b]
    choices = metric_names(loaded_a + loaded_b)
    compare_metric = c3.selectbox("Metric", choices, index=choices.index(PRIMARY) if PRIMARY in choices else 0,
                                  key="compare_metric", required=True)
    if run_a == run_b and not with_seeds:
        st.info("Pick two different runs.")
    else:
        comparison = paired.compare(loaded_a, loaded_b, metric=compare_metric)
        st.markdown(comparison.verdict)
        st.dataframe(paired.summary_table(comparison), hide_index=True, key="compare_table")
        if len(comparison.per_seed) > 1:
            st.dataframe(paired.seed_table(comparison), hide_index=True, key="compare_seeds_table")
        st.plotly_chart(charts.paired_differences(comparison.differences, comparison.a, comparison.b,
                                                  comparison.metric, comparison.protocol), key="compare_hist")
except (paired.NotPaired, NotAvailable) as why:
    st.warning(str(why).replace("\n  Fix: ", "  \n**Fix:** "))
except RecvizError as err:
    show_error(err)

st.subheader("Who the model fails")
s1, s2, s3 = st.columns([3, 2, 1])
slice_ids = s1.multiselect("Runs (one, or two side by side)", ids, default=ids[:1], max_selections=2,
                           key="slice_runs", format_func=run_label.get)
by = s2.radio("Users by", list(slices.SLICES), format_func=lambda key: slices.SLICES[key].title, horizontal=True,
              key="slice_by")
try:
    slice_runs = [stored(i) for i in slice_ids]
    choices = metric_names(slice_runs)
    slice_metric = s3.selectbox("Metric", choices, index=choices.index(PRIMARY) if PRIMARY in choices else 0,
                                key="slice_metric", required=True)
    ready = [r for r in slice_runs if r.available]
    for r in slice_runs:
        if not r.available:
            st.caption(r.why_not)
    if ready:
        table = slices.sliced(ready, slice_metric, by)
        bucketing = slices.SLICES[by]
        st.plotly_chart(charts.sliced_bars(table, slice_metric, bucketing.title, ready[0].protocol), key="slice_chart")
        st.caption(f"Users in {len(bucketing.names)} buckets of about equal size by {bucketing.measure}; error "
                   "bars: standard error of each bucket's mean.")
        st.dataframe(table, hide_index=True, key="slice_table")
except RecvizError as err:
    show_error(err)

st.subheader("Learning curves")
labels = {run_label[rid]: rid for rid in done["id"]}
with_curves = [label for label, rid in labels.items() if progress.has_epochs(done.set_index("id").at[rid, "model"])]
chosen = st.multiselect("Runs", list(labels), default=with_curves[:3], key="curve_runs",
                        help="ItemPop, ItemKNN and other one-pass models have no epochs to draw.")
metric = st.selectbox("Validation metric", ["NDCG@10", "HR@10", "NDCG@5", "HR@5", "NDCG@20", "HR@20"],
                      key="curve_metric", required=True)
curves = progress.curves_long({label: store.epochs(labels[label]) for label in chosen})
best = {label: (by_id[labels[label]].summary or {}).get("best_epoch") for label in chosen}
panels = done.set_index("id").loc[[labels[c] for c in chosen]] if chosen else done.iloc[:0]
protocols = [results.panel_label(d, p) for d, p in
             dict.fromkeys(zip(panels["dataset"], panels["protocol"]))]
st.plotly_chart(charts.learning_curves(curves, metric, " / ".join(protocols), best=best), key="curves")

st.subheader("Sweeps")
params = results.sweep_params()
latest = next((p for p in (sweep.param_of(r.sweep_id) for r in runs if r.sweep_id) if p in params), params[0])
param = st.selectbox("Parameter", params, index=params.index(latest), key="sweep_param",
                     help="Starts at the option of the latest sweep.", required=True)
sweep_metric = st.selectbox("Metric", ["HR@10", "NDCG@10"], key="sweep_metric", required=True)
sweeps = results.swept_lines(results.sweep_table(done, param), param)
if not sweeps.empty:
    st.plotly_chart(charts.sweep(sweeps, param, sweep_metric), key="sweep_plot")
else:
    st.caption(f"No model that declares {param} has finished runs at more than one value of it on one "
               "dataset yet (launch a sweep on Train).")

st.subheader("Export")
run_id = st.selectbox("Run", list(done["id"]), key="export_run", format_func=lambda i: f"#{i}", required=True)
run = store.get(int(run_id))
e1, e2 = st.columns(2)
e1.download_button("Config and metrics (JSON)", json.dumps(run.to_row(), indent=2, default=str),
                   file_name=f"recviz-run-{run.id}.json", mime="application/json", key="export_json")
e2.download_button("Per-epoch metrics (CSV)", store.epochs(run.id).drop(columns=["valid"]).to_csv(index=False),
                   file_name=f"recviz-run-{run.id}-epochs.csv", mime="text/csv", key="export_csv")
