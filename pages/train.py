"""Train: choose data, protocol, model and its options; launch in a background worker; watch it learn.

The form is generated from the declarations: the run settings from `RunConfig`, the model's options
from its `ModelSpec` (every option of the chosen model, and only those, with its declared default
or the chosen preset's value). Nothing on this page repeats a default."""

import streamlit as st

from pages import common
from recviz import charts
from recviz.analysis import compare
from recviz.config import PROTOCOLS, VALID_RULES, RunConfig, run_option
from recviz.errors import RecvizError
from recviz.models import registry
from recviz.options import DEVICE, DEVICES
from recviz.runs import sweep

st.title("Train")
store = common.store()
errors: list[str] = []

# ---- what to train ----------------------------------------------------------------------------------
left, right = st.columns(2)
with left:
    ref = common.choose_dataset(key="train_dataset")
    data = common.load_data_or_error(ref)
    protocol = st.radio(run_option("protocol").title, list(PROTOCOLS), horizontal=True, key="protocol",
                        format_func=PROTOCOLS.get)
    run_settings = {"dataset": ref, "protocol": protocol}
    if protocol == "loo":
        run_settings["candidates"], _ = common.option_input(run_option("candidates"), "candidates")
        run_settings["valid"] = st.radio(run_option("valid").title, list(VALID_RULES), horizontal=True,
                                         key="valid", format_func=VALID_RULES.get)
    if data is not None and data.behaviors:
        run_settings["target"] = st.selectbox(run_option("target").title, list(data.behaviors),
                                              index=len(data.behaviors) - 1, key="target")
with right:
    names = list(registry.MODELS)
    reasons = {n: (registry.get(n).unavailable_reason(data) if data is not None else None) for n in names}
    model = st.selectbox("Model", names, index=names.index(registry.DEFAULT_MODEL), key="model",
                         format_func=lambda n: registry.get(n).title + (" — unavailable" if reasons[n] else ""))
    spec = registry.get(model)
    st.caption(f"{spec.summary} — {spec.paper}")
    if reasons[model]:
        st.warning(reasons[model])
    presets = [None, *spec.presets]
    preset = st.selectbox("Settings", presets, key=f"preset.{model}",
                          format_func=lambda p: "defaults (best known)" if p is None else f"preset: {p}",
                          help="Defaults are the best settings known, chosen on validation; a preset such as "
                               "`paper` is the model's paper's settings.")

with st.expander(f"{spec.title} options", expanded=True):
    values = spec.resolve({}, preset)
    options = {}
    columns = st.columns(4)
    for k, option in enumerate(spec.options):
        options[option.name], error = common.option_input(option, f"opt.{model}.{preset}.{option.name}",
                                                          columns[k % 4], values[option.name])
        if error:
            errors.append(f"{option.name}: {error}")
    c1, c2 = st.columns(2)
    run_settings["seed"], _ = common.option_input(run_option("seed"), "seed", c1)
    if spec.uses_device:
        run_settings["device"] = c2.selectbox(DEVICE.title, DEVICES, key="device",
                                              help=f"auto = {common.device_label()}")

config = None
if not errors:
    try:
        config = RunConfig.build(**run_settings, model=model, preset=preset, **options)
    except RecvizError as err:
        errors.append(str(err))
        st.error(str(err))

if protocol == "ratio" and data is not None and config is not None:
    from recviz.analysis.estimate import evaluation_cost, human

    cost = evaluation_cost(model, config.options, data.n_users, data.n_items)
    if cost is not None:
        say = st.warning if cost["seconds"] > 60 else st.caption
        say(f"Full ranking runs {spec.title}'s MLP on all {data.n_users * data.n_items:,} user–item pairs "
            f"each evaluation (every epoch on validation, once on test): {human(cost)}.")

sweep_on = st.toggle("Sweep: one run per value", key="sweep_on")
sweep_param, sweep_values = None, []
if sweep_on:
    sweepable = [o.name for o in spec.sweepable()]
    s1, s2 = st.columns([1, 3])
    sweep_param = s1.selectbox("Option", sweepable, key=f"sweep_param.{model}") if sweepable else None
    if sweep_param:
        text = s2.text_input(f"Values (separated by '{sweep.separator(sweep_param, spec)}')",
                             sweep.suggested_values(spec, sweep_param), key=f"sweep_values.{model}.{sweep_param}")
        try:
            sweep_values = sweep.parse_values(spec, sweep_param, text)
        except RecvizError as err:
            s2.error(err.problem)
            errors.append(err.problem)
    else:
        st.caption(f"{spec.title} declares no option that can be swept.")

label = f"Launch {len(sweep_values)} runs" if sweep_on else "Launch"
if st.button(label, type="primary", key="launch", disabled=bool(reasons[model]) or data is None or config is None
             or bool(errors) or (sweep_on and not sweep_values)):
    if sweep_on:
        sweep_id = sweep.new_sweep_id(sweep_param)
        ids = [common.submit(c, sweep_id=sweep_id) for c in sweep.plan(config, sweep_param, sweep_values)]
        st.session_state["active_run"] = ids[0]
        st.toast(f"Queued {len(ids)} runs (sweep {sweep_id})")
    else:
        st.session_state["active_run"] = common.submit(config)


# ---- live view ----------------------------------------------------------------------------------------
@st.fragment(run_every=2)
def live() -> None:
    store.reap()
    active = store.list(status=("queued", "running"), limit=50)
    if active:
        st.subheader("Queue")
        for run in active:
            a, b = st.columns([5, 1])
            a.markdown(f"{common.status_badge(run.status)} **#{run.id}** {run.model} on {run.dataset}")
            if b.button("Cancel", key=f"cancel_{run.id}"):
                store.request_cancel(run.id)
    run_id = st.session_state.get("active_run")
    if run_id is None:
        st.info("Launch a run to watch it learn here.")
        return
    try:
        run = store.get(run_id)
    except RecvizError:
        st.session_state.pop("active_run", None)
        return
    st.subheader(f"Run #{run.id} · {run.model} on {run.dataset}")
    epochs = store.epochs(run.id)
    total = run.config.option("epochs", 1)
    done = int((epochs["phase"] == epochs["phase"].iloc[-1]).sum()) if len(epochs) else 0
    st.markdown(f"{common.status_badge(run.status)} · "
                + compare.progress_text(done, total, list(epochs["seconds"].dropna())))
    st.progress(min(1.0, done / max(1, total)) if run.status != "done" else 1.0)
    if run.status == "failed":
        st.error(run.error or "the run failed")
    protocol_label = compare.protocol_label(run.protocol, run.config.candidates, run.config.valid)
    st.plotly_chart(charts.learning_curves(compare.curves_long({f"#{run.id}": epochs}), "NDCG@10",
                                           protocol_label), key="live_curves")
    if run.status == "done" and run.summary:
        metrics = run.summary.get("metrics", {})
        cols = st.columns(2)  # two wide columns: the protocol in each label stays readable
        for col, name in zip(cols * 2, ("HR@10", "NDCG@10", "HR@20", "NDCG@20")):
            if name in metrics:
                col.metric(compare.metric_label(name, protocol_label), f"{metrics[name]:.4f}")
        st.page_link("pages/recommendations.py", label="See its recommendations", icon=":material/recommend:")


live()
