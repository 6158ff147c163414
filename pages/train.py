"""Train: choose data, protocol, model and knobs; launch in a background worker; watch it learn."""

import streamlit as st

from pages import common
from recviz import charts
from recviz.analysis import compare
from recviz.config import RunConfig
from recviz.errors import RecvizError
from recviz.models import registry
from recviz.runs import sweep

st.title("Train")
store = common.store()

# ---- what to train ----------------------------------------------------------------------------------
left, right = st.columns(2)
with left:
    ref = common.choose_dataset(key="train_dataset")
    data = common.load_data_or_error(ref)
    protocol = st.radio("Protocol", ["loo", "ratio"], horizontal=True, key="protocol",
                        format_func={"loo": "leave-one-out + sampled candidates",
                                     "ratio": "80/10/10 split + full ranking"}.get)
    candidates, valid = 100, "latest"
    if protocol == "loo":
        candidates = st.select_slider("Candidates per held-out item", [99, 100], value=100, key="candidates")
        valid = st.radio("Validation item", ["latest", "random"], horizontal=True, key="valid",
                         format_func={"latest": "the one before test",
                                      "random": "a random earlier one (NCF/DMF papers)"}.get)
    target = None
    if data is not None and data.behaviors:
        target = st.selectbox("Target behaviour (held out)", list(data.behaviors),
                              index=len(data.behaviors) - 1, key="target")
with right:
    names = list(registry.MODELS)
    reasons = {n: (registry.get(n).unavailable_reason(data) if data is not None else None) for n in names}
    default = names.index("neumf") if "neumf" in names else 0
    model = st.selectbox("Model", names, index=default, key="model",
                         format_func=lambda n: registry.get(n).title + (" — unavailable" if reasons[n] else ""))
    spec = registry.get(model)
    st.caption(spec.paper)
    if reasons[model]:
        st.warning(reasons[model])

opts = set(spec.options)
knobs = {}
with st.expander("Model and training settings", expanded=True):
    c1, c2, c3, c4 = st.columns(4)
    if "eta" in opts:
        knobs["eta"] = c1.slider("η (implicit loss weight)", 0.0, 1.0, 0.6, 0.05, key="eta")
    if "emb_dim" in opts:
        knobs["emb_dim"] = c1.select_slider("Embedding size", [8, 16, 32, 64, 128], value=32, key="emb_dim")
    if "layers" in opts:
        knobs["layers"] = c2.text_input("MLP layers", "64,32,16", key="layers")
    if "dropout" in opts:
        knobs["dropout"] = c2.slider("Dropout after hidden layers", 0.0, 0.5, 0.0, 0.05, key="dropout")
    if "pretrain" in opts:
        knobs["pretrain"] = c2.checkbox("Pre-train from GMF + MLP", key="pretrain")
    if "neighbors" in opts:
        knobs["neighbors"] = c1.number_input("Neighbours", 1, 2000, 100, key="neighbors")
    if spec.iterative:
        knobs["neg_ratio"] = c3.number_input("Negatives per positive", 1, 20, 4, key="neg_ratio")
        knobs["lr"] = c3.number_input("Learning rate", 1e-5, 1.0, 0.001, format="%.4f", key="lr")
        knobs["batch_size"] = c4.select_slider(
            "Batch size", [128, 256, 512, 1024, 2048, 4096], value=256, key="batch_size",
            help="Larger batches train faster (NeuMF on a 2-core CPU: 2.6 s per ml-100k epoch at 256, "
                 "1.3 s at 1024). Scale the learning rate with the batch: 4× batch with 4× lr kept "
                 "NeuMF's HR@10 on ml-100k (README, Benchmarks).")
        knobs["epochs"] = c4.number_input("Epochs", 1, 500, 20, key="epochs")
        knobs["patience"] = c4.number_input("Patience (0 = off)", 0, 100, 3, key="patience")
        knobs["device"] = c3.selectbox("Device", ["auto", "cpu", "cuda"], key="device",
                                       help=f"auto = {common.device_label()}")
    knobs["seed"] = c2.number_input("Seed", 0, 10**6, 0, key="seed")

config = RunConfig(dataset=ref, protocol=protocol, candidates=int(candidates), valid=valid, target=target,
                   model=model, **knobs)

if protocol == "ratio" and data is not None:
    from recviz.analysis.estimate import evaluation_cost, human

    cost = evaluation_cost(model, data.n_users, data.n_items, emb_dim=config.emb_dim, layers=config.layers)
    if cost is not None:
        say = st.warning if cost["seconds"] > 60 else st.caption
        say(f"Full ranking runs {spec.title}'s MLP on all {data.n_users * data.n_items:,} user–item pairs "
            f"each evaluation (every epoch on validation, once on test): {human(cost)}.")

sweep_on = st.toggle("Sweep: one run per value", key="sweep_on")
sweep_param, sweep_values = None, []
if sweep_on:
    sweepable = [p for p in sweep.SWEEPABLE if p in opts or (p in ("neg_ratio", "lr") and spec.iterative)]
    s1, s2 = st.columns([1, 3])
    sweep_param = s1.selectbox("Parameter", sweepable, key="sweep_param") if sweepable else None
    text = s2.text_input("Values (layers: separate by ';')", "0,0.2,0.4,0.6,0.8,1" if sweep_param == "eta"
                         else "1,2,4,8" if sweep_param == "neg_ratio" else "8,16,32,64", key="sweep_values")
    if sweep_param:
        try:
            sweep_values = sweep.parse_values(sweep_param, text)
        except RecvizError as err:
            st.error(str(err))

label = f"Launch {len(sweep_values)} runs" if sweep_on else "Launch"
if st.button(label, type="primary", key="launch", disabled=bool(reasons[model]) or data is None
             or (sweep_on and not sweep_values)):
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
    total = run.config.epochs if registry.get(run.model).iterative else 1
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
