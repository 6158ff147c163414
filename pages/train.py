"""Train: choose data, protocol, model and its options; launch in a background worker; watch it learn.

The form is generated from the declarations: the run settings from `RunConfig`, the model's options
from its `ModelSpec` (every option of the chosen model, and only those, with its declared default
or the chosen preset's value). Nothing on this page repeats a default."""

import streamlit as st

from pages.ui import frame
from pages.ui.datasets import choose_dataset, load_data_or_error
from pages.ui.errors import error_boundary, show_error
from pages.ui.executors import device_label, devices, executor_choice
from pages.ui.forms import mlflow_switch, option_input
from pages.ui.glossary import explain
from pages.ui.runs import recover, run_store, status_badge, submit
from recviz import charts
from recviz.analysis import progress
from recviz.analysis.estimate import check_memory, evaluation_cost, human
from recviz.analysis.messages import for_page
from recviz.analysis.results import metric_label
from recviz.config import PROTOCOLS, VALID_RULES, RunConfig, from_link, link_text, run_option
from recviz.errors import RecvizError
from recviz.models import registry
from recviz.options import DEVICE
from recviz.experiments import executors, sweep
from recviz.experiments.store import WAITING_FOR_SLOT

frame.run_in_app()  # Streamlit may run this file alone (legacy pages/ layout): then the frame runs it
st.title("Train")
store = run_store()
errors: list[str] = []

# A run re-opened here (from Results or the live panel below) fills the form with its settings.
# Its widgets get keys of their own (`form`), so they start from the run's values, not from what
# the form showed before; "Start from the defaults" goes back.
if "reopen" in st.session_state:
    reopened = store.get(int(st.session_state.pop("reopen")))
    st.session_state["train_form"] = {"suffix": f".r{reopened.id}", "run": reopened.id,
                                      "config": reopened.config.to_dict()}
    st.session_state["dataset"] = reopened.config.dataset
# A reload starts a new session: the form's settings live in the address too (?form=…, written below
# on every run) and are read back once per session, as a re-opened run's are.
if "form_link_read" not in st.session_state:
    st.session_state["form_link_read"] = True
    linked = from_link(st.query_params.get("form"))
    if linked is not None and "train_form" not in st.session_state:
        st.session_state["train_form"] = {"suffix": ".link", "run": None, "config": linked.to_dict()}
        st.session_state["dataset"] = linked.dataset
form = st.session_state.get("train_form") or {"suffix": "", "run": None, "config": None}
base = RunConfig.from_dict(form["config"]) if form["config"] else RunConfig()
if form["run"] is not None:
    note, reset = st.columns([4, 1])
    note.info(f"The form holds run #{form['run']}'s settings: change any and launch.")
    if reset.button("Start from the defaults", key="reset_form"):
        st.session_state.pop("train_form")
        st.query_params.pop("form", None)
        st.rerun()


def key(name: str) -> str:
    return name + form["suffix"]


launched = st.session_state.pop("just_launched", None)  # from Home's one-click button


@st.fragment(run_every=2)
def launched_note(run_id: int) -> None:
    """The launched run's note, redrawn as it goes: never "is training" once it is done."""
    with error_boundary("the Train page's launch note"):
        status = store.get(run_id).status
        (st.success if status in ("queued", "running", "done") else st.warning)(progress.launched_text(run_id, status))


if launched is not None:
    launched_note(launched)


# ---- what to train ----------------------------------------------------------------------------------
left, right = st.columns(2)
with left:
    ref = choose_dataset(key="train_dataset")
    data = load_data_or_error(ref)
    protocol = st.radio(run_option("protocol").title, list(PROTOCOLS), horizontal=True, key=key("protocol"),
                        index=list(PROTOCOLS).index(base.protocol), format_func=PROTOCOLS.get)
    # settings the form has no field for (k-core filters) stay as the re-opened run had them
    run_settings = {"dataset": ref, "protocol": protocol,
                    **{k: getattr(base, k) for k in ("min_user", "min_item", "min_rating")}}
    # for exploring a large log: a seeded sample of its users, and of the users judged
    sample_col, eval_col = st.columns(2)
    for name, col in (("sample_users", sample_col), ("eval_users", eval_col)):
        run_settings[name], _ = option_input(run_option(name), key(name), col, value=getattr(base, name))
    if protocol == "loo":
        run_settings["candidates"], _ = option_input(run_option("candidates"), key("candidates"),
                                                            value=base.candidates)
        run_settings["valid"] = st.radio(run_option("valid").title, list(VALID_RULES), horizontal=True,
                                         key=key("valid"), index=list(VALID_RULES).index(base.valid),
                                         format_func=VALID_RULES.get)
    if data is not None and data.behaviors:
        behaviors = list(data.behaviors)
        run_settings["target"] = st.selectbox(
            run_option("target").title, behaviors, key=key("target"),
            index=behaviors.index(base.target) if base.target in behaviors else len(behaviors) - 1, required=True)
with right:
    names = list(registry.MODELS)
    reasons = {n: (registry.get(n).unavailable_reason(data) if data is not None else None) for n in names}
    model = st.selectbox("Model", names, index=names.index(base.model if base.model in names else registry.DEFAULT_MODEL),
                         key=key("model"),
                         format_func=lambda n: registry.get(n).title + (" — unavailable" if reasons[n] else ""),
                         required=True)
    spec = registry.get(model)
    st.caption(f"{spec.summary} — {spec.paper}")
    if reasons[model]:
        st.warning(reasons[model])
    presets = [None, *spec.presets]
    preset = st.selectbox("Settings", presets, key=key(f"preset.{model}"),
                          index=presets.index(base.preset) if model == base.model and base.preset in presets else 0,
                          format_func=lambda p: "defaults (best known)" if p is None else f"preset: {p}",
                          help="Defaults are the best settings known, chosen on validation; a preset such as "
                               "`paper` is the model's paper's settings.", required=True)

with st.expander(f"{spec.title} options", expanded=launched is None):  # folded: the run is what to see
    same = model == base.model and preset == base.preset  # the re-opened run's own values apply
    values = spec.resolve(base.options if same else {}, preset)
    options = {}
    columns = st.columns(4)
    for k, option in enumerate(spec.options):
        options[option.name], error = option_input(option, key(f"opt.{model}.{preset}.{option.name}"),
                                                          columns[k % 4], values[option.name])
        if error:
            errors.append(f"{option.name}: {error}")
    c1, c2, c3 = st.columns(3)
    run_settings["seed"], _ = option_input(run_option("seed"), key("seed"), c1, value=base.seed)
    run_settings["split_seed"], error = option_input(run_option("split_seed"), key("split_seed"), c2,
                                                     value=base.split_seed)
    if error:
        errors.append(f"split_seed: {error}")
    if spec.uses_device:
        choices = devices()
        run_settings["device"] = c3.selectbox(DEVICE.title, choices, key=key("device"),
                                              index=choices.index(base.device) if base.device in choices else 0,
                                              help=f"auto = {device_label()}", required=True)

config = None
if not errors:
    try:
        config = RunConfig.build(**run_settings, model=model, preset=preset, **options)
    except RecvizError as err:
        errors.append(str(err))
        show_error(err)
if config is not None:
    st.query_params["form"] = link_text(config)  # a reload keeps the form

if protocol == "ratio" and data is not None and config is not None:
    judged = min(n for n in (data.n_users, config.sample_users, config.eval_users) if n)  # users ranked
    cost = evaluation_cost(model, config.options, judged, data.n_items)
    if cost is not None:
        say = st.warning if cost["seconds"] > 60 else st.caption
        say(f"Full ranking runs {spec.title}'s MLP on all {judged * data.n_items:,} user–item pairs "
            f"each evaluation (every epoch on validation, once on test): {human(cost)}.")
too_big = False  # a run that would not fit in this machine's memory is not launched here
if data is not None and config is not None:
    memory = check_memory(config, data, prepared=False)
    if memory.fits:
        st.caption(memory.line())
    elif executors.chosen()["executor"] == "local":
        too_big = True
        st.error(f"{memory.problem()[0].upper()}{memory.problem()[1:]}. Fix: "
                 + memory.fix(lambda option: f"{option.title} =") + ".")
    else:  # a Ray cluster's machines have memory of their own
        st.warning(f"On this machine: {memory.problem()}; the cluster's machines may have more.")

sweep_on = st.toggle("Sweep: one run per value", key="sweep_on")
sweep_param, sweep_values, sweep_seeds = None, [], []
if sweep_on:
    sweepable = [o.name for o in spec.sweepable()]
    s1, s2, s3 = st.columns([1, 2, 1])
    sweep_param = s1.selectbox("Option", sweepable, key=f"sweep_param.{model}", required=True) if sweepable else None
    if sweep_param:
        text = s2.text_input(f"Values (separated by '{sweep.separator(sweep_param, spec)}')",
                             sweep.suggested_values(spec, sweep_param), key=f"sweep_values.{model}.{sweep_param}",
                             help=f"Each value listed, or for a number a range START:STOP:STEP with the stop "
                                  f"included, e.g. {sweep.VALUES_EXAMPLE}.")
        try:
            sweep_values = sweep.parse_values(spec, sweep_param, text)
        except RecvizError as err:
            s2.error(err.problem)
            errors.append(err.problem)
        seeds_text = s3.text_input("Seeds", str(run_settings["seed"]), key="sweep_seeds",
                                   help="Each value runs once per seed (e.g. 0,1,2); Results then shows the mean "
                                        "with an error bar.")
        try:
            sweep_seeds = sweep.parse_seeds(seeds_text)
        except RecvizError as err:
            s3.error(err.problem)
            errors.append(err.problem)
    else:
        st.caption(f"{spec.title} declares no option that can be swept.")

mlflow = mlflow_switch()
with st.expander("Where runs train"):
    where = executor_choice()
st.caption(where)
label = sweep.launch_label(len(sweep_values) * len(sweep_seeds)) if sweep_on else "Launch"
if st.button(label, type="primary", key="launch", disabled=bool(reasons[model]) or data is None or config is None
             or bool(errors) or too_big or (sweep_on and not (sweep_values and sweep_seeds))):
    if sweep_on:
        sweep_id = sweep.new_sweep_id(sweep_param)
        ids = [submit(c, sweep_id=sweep_id, mlflow=mlflow) for c in sweep.plan(config, sweep_param, sweep_values, sweep_seeds)]
        st.session_state["active_run"] = ids[-1]  # the latest, as the live picker's "(or the latest)" says
        st.toast(f"Queued {len(ids)} runs (sweep {sweep_id})")
    else:
        st.session_state["active_run"] = submit(config, mlflow=mlflow)


# ---- live view ----------------------------------------------------------------------------------------
FOLLOW = "follow"  # the picker's first choice: whatever is training now (None would show as unset)
if "watch_run" not in st.session_state:  # a shared link (?run=12) opens that run
    st.session_state["watch_run"] = progress.parse_run_param(st.query_params.get("run")) or FOLLOW


def watched_changed() -> None:
    picked = st.session_state["watch_run"]
    if picked == FOLLOW:
        st.query_params.pop("run", None)
    else:
        st.query_params["run"] = str(picked)


@st.fragment(run_every=2)
def live() -> None:
    with error_boundary("the Train page's live panel"):  # a fragment reruns on its own
        _live()


def _live() -> None:
    recover()
    active = store.list(status=("queued", "running"), limit=50)
    if active:
        st.subheader("Queue")
        for run in active:
            a, b = st.columns([5, 1])
            a.markdown(f"{status_badge(run)} **#{run.id}** {run.model} on {run.dataset}"
                       + (f" · sweep {run.sweep_id}" if run.sweep_id else ""))
            if b.button("Cancel", key=f"cancel_{run.id}"):
                store.request_cancel(run.id)
    recent = store.list(limit=30)
    if not recent:
        st.info("Launch a run to watch it learn here.")
        return
    by_id = {r.id: r for r in recent}
    if st.session_state.get("watch_run") not in (FOLLOW, *by_id):
        st.session_state["watch_run"] = FOLLOW  # a link to a run that is gone, or an old pick
    def label(i) -> str:
        if i == FOLLOW:
            return "the run training now (or the latest)"
        r = by_id[i]
        return f"#{i} {r.model} on {r.dataset} · {WAITING_FOR_SLOT if r.waiting else r.status}"

    st.selectbox("Watch", [FOLLOW, *by_id], key="watch_run", on_change=watched_changed, format_func=label,
                 required=True)
    run_id = progress.run_to_watch(recent, st.session_state["watch_run"], st.session_state.get("active_run"))
    run = by_id[run_id]
    spec = registry.MODELS.get(run.model)
    st.subheader(f"Run #{run.id} · {spec.title if spec else run.model} on {run.dataset}", anchor="watched-run")
    protocol_text = run.config.protocol_detail
    if run.status in ("failed", "unreadable"):  # unreadable: the reason ("unreadable: <why>") is its error
        st.error(for_page(run.error) if run.error else "the run failed")
    if spec is not None and not spec.iterative:  # fitted in one pass: no epochs to draw
        seconds = (run.summary or {}).get("train_seconds")
        st.markdown(f"{status_badge(run)}"
                    + (f" · fitted in {seconds:.2f} s" if seconds is not None else ""))
    else:
        epochs = store.epochs(run.id)
        plan, reported = progress.RunProgress.of(run.model, run.config.options), list(epochs["phase"])
        st.markdown(f"{status_badge(run)} · "
                    + (f"{len(epochs)} epochs" + (f", best {run.summary['best_epoch']}" if run.summary else "")
                       if run.finished else plan.text(reported, list(epochs["seconds"].dropna()))))
        st.progress(plan.at(reported).fraction if run.status != "done" else 1.0)
        # a sweep's runs draw together, so the curves of every value can be compared as they come
        members = store.list(sweep_id=run.sweep_id, limit=200)[::-1] if run.sweep_id else [run]
        swept = sweep.param_of(run.sweep_id)
        several_seeds = len({r.seed for r in members}) > 1
        named = {f"#{r.id}" + (f" {swept}={r.config.option(swept)}" if swept else "")
                 + (f" seed {r.seed}" if several_seeds else ""): r for r in members}
        curves = progress.curves_long({label: store.epochs(r.id) for label, r in named.items()})
        best = {label: (r.summary or {}).get("best_epoch") for label, r in named.items()}
        st.plotly_chart(charts.learning_curves(curves, "NDCG@10", protocol_text, best=best), key="live_curves")
    if run.status == "done" and run.summary:
        metrics = run.summary.get("metrics", {})
        cols = st.columns(2)  # two wide columns: the protocol in each label stays readable
        for col, name in zip(cols * 2, ("HR@10", "NDCG@10", "HR@20", "NDCG@20")):
            if name in metrics:
                col.metric(metric_label(name, protocol_text), f"{metrics[name]:.4f}")
        explain()
        st.page_link("pages/recommendations.py", label="See its recommendations", icon=":material/recommend:")
    if st.button("Open its settings in the form", key=f"reopen_{run.id}",
                 help="Fill the form above with this run's dataset, protocol, model and options."):
        st.session_state["reopen"] = run.id
        st.rerun()


live()
