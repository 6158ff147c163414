"""Comparing runs by their numbers, for the Results page: the results table, grouped metric bars,
sweeps, and how a chart names a run. Watching one run train (its curves and progress) is
`recviz.analysis.progress`; comparing two runs' recommendation lists is `recviz.analysis.toplists`.

Every metric shown comes with its protocol label (`recviz.data.split.protocol_label`): HR@10 under
leave-one-out with 100 sampled candidates and HR@10 under full ranking are different quantities
(the first is often 5–10× larger), so `mixed_protocols` lets a page warn before putting both on
one axis, and charts facet by dataset and protocol (`panel_label`).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from recviz.config import REPEAT_FIELDS, RUN_NAMES, RunConfig
from recviz.data.split import protocol_label, same_scale
from recviz.errors import RecvizError
from recviz.models import registry

RUN_COLUMNS = ["id", "name", "model", "settings", "dataset", "protocol", "protocol_key", "status", "created_at"]
# run settings the table shows in columns of their own (dataset, protocol) or never needs to
_NOT_IN_SETTINGS = ("dataset", "data_version", "protocol", "candidates", "valid", "eval_users", "sample_users")
MAX_SETTINGS_IN_LABEL = 3  # a run label names at most this many of its distinguishing settings
MAX_IDS_IN_LABEL = 4  # a bar averaged over runs names at most this many of their ids
_METRIC = re.compile(r"^([A-Za-z]+)@(\d+)$")


def sweep_params() -> list[str]:
    """Every option some registered model declares sweepable, in declaration order."""
    return list(dict.fromkeys(o.name for spec in registry.MODELS.values() for o in spec.sweepable()))


def metric_label(metric: str, protocol: str) -> str:
    """'HR@10 · leave-one-out, 100 candidates'."""
    return f"{metric} · {protocol}" if protocol else metric


def mixed_protocols(runs_df: pd.DataFrame) -> bool:
    """True when the runs were judged under more than one protocol (their numbers do not share
    a scale)."""
    return "protocol" in runs_df and runs_df["protocol"].dropna().map(same_scale).nunique() > 1


def runs_table(runs: list[dict]) -> pd.DataFrame:
    """One row per run: id, name, model, settings (`settings_text`), dataset, protocol (label),
    protocol_key ("loo"/"ratio"),
    status, created_at (datetime), one column per metric ("HR@5", "HR@10", … ordered by metric
    then K) and `config` (the dict, for sweeps; drop it before showing the table).

    The protocol label is the run's `protocol_detail` when stored (the split's own description,
    right even for data that ships its own negatives), else built from protocol + candidates."""
    rows = []
    for r in runs:
        config = dict(r.get("config") or {})
        key = r.get("protocol", config.get("protocol"))
        detail = r.get("protocol_detail") or protocol_label(key, config.get("candidates") if key == "loo" else None,
                                                               config.get("valid"), eval_users=config.get("eval_users"),
                                                               sample_users=config.get("sample_users"))
        model = r.get("model", config.get("model"))
        rows.append({"id": r.get("id"), "name": r.get("name") or "", "model": model,
                     "settings": settings_text(model, config),
                     "dataset": r.get("dataset", config.get("dataset")), "protocol": detail,
                     "protocol_key": key, "status": r.get("status"), "created_at": r.get("created_at"),
                     **(r.get("metrics") or {}), "config": config})
    df = pd.DataFrame(rows, columns=None if rows else RUN_COLUMNS + ["config"])
    metrics = sorted((c for c in df.columns if _METRIC.match(str(c))), key=_metric_key)
    df = df[RUN_COLUMNS + metrics + ["config"]]
    df["created_at"] = pd.to_datetime(pd.to_numeric(df["created_at"], errors="coerce"), unit="s")
    return df


def settings_text(model: str, config: dict) -> str:
    """Everything a run set away from its model's defaults, in one line: "preset paper, emb_dim=16,
    seed=1, split_seed=0" ("defaults" when nothing). Run labels name only the settings that tell the
    shown runs apart; this says the ones they share too. The dataset and protocol have columns."""
    try:
        c = RunConfig.from_stored({**(config or {}), "model": model})
    except (RecvizError, TypeError, ValueError, KeyError):  # a model since removed: nothing to compare with
        return ""
    changed = c.changed()
    parts = [f"preset {changed.pop('preset')}"] if "preset" in changed else []
    options = [k for k in changed if k in c.options]  # the model's own first, then the run's
    parts += [f"{k}={_format_setting(changed[k])}" for k in options + [k for k in changed if k not in options]
              if k not in (*_NOT_IN_SETTINGS, "model")]
    return ", ".join(parts) or "defaults"


def picker_labels(runs_df: pd.DataFrame) -> pd.Series:
    """How a page's pickers name each run (index aligned with `runs_df`): "#4 gmf · emb_dim=16,
    seed=1" — the run's own settings (`settings` column), never the other runs'. A browser keeps a
    picker's choice as its label, so a label that changed when another run was deleted (as
    `run_labels`' distinguishing settings do) dropped the choice."""
    return pd.Series([f"#{i} {name or model}" + (f" · {s}" if s and s != "defaults" else "")
                      for i, name, model, s in zip(runs_df["id"], runs_df["name"], runs_df["model"],
                                                   runs_df["settings"])], index=runs_df.index, dtype=object)


def filter_runs(df: pd.DataFrame, dataset=None, model=None, status=None) -> pd.DataFrame:
    """Keep runs matching every given filter; each is one value or a list of values, None = any."""
    keep = np.ones(len(df), dtype=bool)
    for col, want in (("dataset", dataset), ("model", model), ("status", status)):
        if want is not None:
            keep &= df[col].isin([want] if isinstance(want, str) else list(want)).to_numpy()
    return df[keep].reset_index(drop=True)


def run_labels(runs_df: pd.DataFrame, ignore: tuple[str, ...] = ()) -> pd.Series:
    """How a chart names each run (index aligned with `runs_df`): "#4 neumf · emb_dim=32, lr=0.01".

    The id says which run, the model what was trained (or the name the person gave the run), and
    the settings those of its options whose values differ between the shown runs of that model
    (plus the seed when it differs) — the words that tell two bars of the same model apart. The
    dataset and protocol are not in the label: charts facet by them. Settings in `ignore` are never
    named (a bar averaged over seeds is not labelled by one of them)."""
    if runs_df.empty:
        return pd.Series([], dtype=object)
    out = {}
    for model, group in runs_df.groupby("model", sort=False):
        settings = [k for k in _distinguishing(model, group["config"].tolist()) if k not in ignore]
        for idx, cfg, rid, name in zip(group.index, group["config"], group["id"],
                                       group["name"] if "name" in group else [""] * len(group)):
            label = f"#{rid} {name or model}"
            parts = [f"{k}={_format_setting(_param_value(cfg, k))}" for k in settings[:MAX_SETTINGS_IN_LABEL]]
            out[idx] = label + (" · " + ", ".join(parts) if parts else "")
    return pd.Series(out, dtype=object).reindex(runs_df.index)


def _distinguishing(model: str, configs: list[dict]) -> list[str]:
    """`model`'s option names (then "seed", and "split_seed" where a run set it) whose values are not
    the same in all `configs`."""
    spec = registry.MODELS.get(model)
    names = [o.name for o in spec.options] if spec is not None else []
    names.append("seed")
    if any((c or {}).get("split_seed") is not None for c in configs):  # named only where someone set it
        names.append("split_seed")
    varied = []
    for name in names:
        values = {repr(_param_value(c, name)) for c in configs}
        if len(values) > 1:
            varied.append(name)
    return varied


def _format_setting(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def panel_label(dataset: str, protocol: str) -> str:
    """The facet title of runs judged on one dataset under one protocol."""
    return f"{dataset} · {protocol}" if dataset else str(protocol)


def seed_groups(runs_df: pd.DataFrame) -> pd.Series:
    """Which runs are one experiment repeated (index aligned with `runs_df`): runs of one model on
    one dataset under one protocol whose settings are equal but for those that repeat an
    experiment rather than change it (`REPEAT_FIELDS`: seed, split seed, device, threads) share a key."""
    if runs_df.empty:
        return pd.Series([], dtype=object)
    return pd.Series([repr((m, d, same_scale(p), _setting(m, c))) for m, d, p, c in
                      zip(runs_df["model"], runs_df["dataset"], runs_df["protocol"], runs_df["config"])],
                     index=runs_df.index, dtype=object)


def _setting(model: str, config: dict, leave_out: str | None = None) -> tuple:
    """A run's settings as a comparable tuple — its model's options and the run settings, by
    value, whether stored nested or flat by an earlier version — without `REPEAT_FIELDS` and
    `leave_out` (the swept option)."""
    try:  # complete, under today's names: what an earlier version left out is at its default
        config = RunConfig.from_stored({**(config or {}), "model": model}).to_dict()
    except (RecvizError, TypeError, ValueError, KeyError):  # a model since removed: as stored
        config = config or {}
    spec = registry.MODELS.get(model)
    names = sorted({o.name for o in spec.options} if spec is not None else set(config.get("options") or {}))
    run = sorted(RUN_NAMES - set(REPEAT_FIELDS))
    return (tuple((n, repr(_param_value(config, n))) for n in names if n != leave_out)
            + tuple((n, repr(config.get(n))) for n in run if n != leave_out))


def metric_long(runs_df: pd.DataFrame, ks=(5, 10, 20), metrics=("HR", "NDCG"),
                over_seeds: bool = False) -> pd.DataFrame:
    """Long form [run, model, dataset, protocol, panel, metric, K, value, std, runs] for grouped
    bars; `run` is the run's label (`run_labels`), `panel` its dataset and protocol
    (`panel_label`): numbers measured on different data or under different protocols never share
    an axis. Metrics a run lacks (or a run without results yet) give no row.

    With `over_seeds`, the runs of one experiment repeated (`seed_groups`) are one bar: `value` is
    their mean, `std` their sample standard deviation (NaN for a lone run) and `runs` how many they
    are; the label names their ids ("#4, #5, #6 gmf · 3 seeds")."""
    cols = [f"{m}@{k}" for m in metrics for k in ks if f"{m}@{k}" in runs_df]
    columns = ["run", "model", "dataset", "protocol", "panel", "metric", "K", "value", "std", "runs"]
    if runs_df.empty or not cols:
        return pd.DataFrame(columns=columns)
    keys = ["run", "model", "dataset", "protocol", "panel"]
    base = runs_df.assign(run=run_labels(runs_df, ignore=("seed",) if over_seeds else ()),
                          panel=[panel_label(d, same_scale(p)) for d, p in zip(runs_df["dataset"], runs_df["protocol"])],
                          group=seed_groups(runs_df) if over_seeds else runs_df["id"].astype(str),
                          seed=[(c or {}).get("seed") for c in runs_df["config"]])
    ids = keys + ["group", "id", "seed"]
    long = base[ids + cols].melt(id_vars=ids, value_vars=cols, var_name="name").dropna(subset=["value"])
    long["value"] = long["value"].astype(float)
    long = (long.groupby(["group", "name"], sort=False)
                .agg(**{k: (k, "first") for k in keys}, value=("value", "mean"), std=("value", "std"),
                     runs=("value", "size"))
                .reset_index())
    measured = base.dropna(subset=cols, how="all")  # the runs the bars are made of
    members = measured.groupby("group", sort=False).agg(run=("run", "first"), ids=("id", list),
                                                        seeds=("seed", lambda s: s.nunique(dropna=False)))
    labels = {g: _group_label(*row) if len(row[1]) > 1 else row[0]
              for g, row in zip(members.index, members.itertuples(index=False))}
    long["run"] = long["group"].map(labels)
    parts = long["name"].str.extract(_METRIC)
    long = long.assign(metric=parts[0], K=parts[1].astype(int))
    return long[columns].reset_index(drop=True)


def _group_label(label: str, ids: list, seeds: int) -> str:
    """The label of one run of a group ("#4 gmf · emb_dim=8") as the group's: "#4, #5, #6 gmf ·
    emb_dim=8 · 3 seeds" (with "3 runs, 2 seeds" when a seed was repeated)."""
    rest = label.split(" ", 1)[1] if " " in label else ""
    shown = ", ".join(f"#{i}" for i in sorted(ids)[:MAX_IDS_IN_LABEL]) + (" …" if len(ids) > MAX_IDS_IN_LABEL else "")
    count = f"{seeds} seeds" if seeds == len(ids) else f"{len(ids)} runs, {seeds} seed{'s' * (seeds != 1)}"
    return f"{shown} {rest} · {count}"


def sweep_table(runs_df: pd.DataFrame, param: str, metrics=("HR@10", "NDCG@10")) -> pd.DataFrame:
    """Metric against one option, one line per model, dataset, protocol and setting of the other
    options, like the papers' figures: [model, dataset, protocol, setting, <param>, HR@10, NDCG@10,
    HR@10 std, NDCG@10 std, runs], sorted by model, dataset, setting, then value (`setting`: what
    tells lines of one model apart, "" when nothing does; `_line_settings`). Only runs whose model declares `param` count: every stored config of an earlier
    version carried every option (an ItemPop run "had" η 0.6), and a value a model never read is
    no point on its curve. Runs at the same value (several seeds) are averaged; `<metric> std` is
    their sample standard deviation (NaN for a single run) and `runs` says how many."""
    columns = ["model", "dataset", "protocol", "setting", param, *metrics, *(f"{m} std" for m in metrics), "runs"]
    if runs_df.empty:
        return pd.DataFrame(columns=columns)
    declares = runs_df["model"].map(lambda m: _declares(m, param))
    df = runs_df[declares.to_numpy(bool)]
    df = df.assign(protocol=df["protocol"].map(same_scale))  # a line's seeds may share one split seed
    values = [_param_value(cfg, param) for cfg in df["config"]]
    df = df.assign(**{param: values}).dropna(subset=[param])
    df = df.dropna(subset=[m for m in metrics if m in df], how="all")
    if df.empty:
        return pd.DataFrame(columns=columns)
    for m in metrics:
        df[m] = df[m].astype(float) if m in df else np.nan
    df = df.assign(setting=_line_settings(df, param))
    out = (df.groupby(["model", "dataset", "protocol", "setting", param], sort=False)
             .agg(**{m: (m, "mean") for m in metrics}, **{f"{m} std": (m, "std") for m in metrics},
                  runs=("id", "size")).reset_index())
    out = out.assign(_order=_rank(out[param])).sort_values(["model", "dataset", "protocol", "setting", "_order"],
                                                           kind="stable")
    return out.drop(columns="_order").reset_index(drop=True)


def _line_settings(df: pd.DataFrame, param: str) -> list[str]:
    """For each run of a sweep table, what tells its line apart from the other lines of its model
    on its dataset and protocol: "" when all those runs share their other settings (`_setting`),
    else the options that differ ("lr=0.01, emb_dim=32"), made unique with "setting N" where the
    named options do not tell two lines apart. A line is one setting: runs at one value of
    `param` are only averaged when everything else but the seed is equal."""
    keys = [_setting(m, c, leave_out=param) for m, c in zip(df["model"], df["config"])]
    out = [""] * len(df)
    positions = pd.Series(range(len(df)), index=df.index)
    for (model, _, _), group in df.groupby(["model", "dataset", "protocol"], sort=False):
        at = positions[group.index].tolist()
        first = {}  # each distinct setting → the position of its first run
        for i in at:
            first.setdefault(keys[i], i)
        if len(first) < 2:
            continue
        names = [k for k in _distinguishing(model, group["config"].tolist()) if k not in (param, "seed")]
        labels = {key: ", ".join(f"{k}={_format_setting(_param_value(df['config'].iloc[i], k))}"
                                 for k in names[:MAX_SETTINGS_IN_LABEL]) for key, i in first.items()}
        clash = {label for label in labels.values() if list(labels.values()).count(label) > 1 or not label}
        for n, key in enumerate(first, start=1):
            if labels[key] in clash:
                labels[key] = ", ".join(p for p in (labels[key], f"setting {n}") if p)
        for i in at:
            out[i] = labels[keys[i]]
    return out


def swept_lines(sweep_df: pd.DataFrame, param: str) -> pd.DataFrame:
    """The rows of `sweep_table` that make a curve: lines (model, dataset, protocol, setting) with runs at
    two or more values of `param`. A lone point (one NeuMF run at its default embedding size) says
    nothing about how the metric moves with `param`, and would only stretch the axis."""
    if sweep_df.empty:
        return sweep_df
    line = ["model", "dataset", "protocol"] + (["setting"] if "setting" in sweep_df else [])
    counts = sweep_df.groupby(line, sort=False)[param].transform("nunique")
    return sweep_df[counts.to_numpy() > 1].reset_index(drop=True)


def _declares(model: str, param: str) -> bool:
    spec = registry.MODELS.get(model)
    return spec is not None and spec.has(param)


def _param_value(config: dict, param: str):
    """A model option (`config["options"]`), or a flat key of a config stored by an earlier version."""
    config = config or {}
    if param == "split_seed":  # the seed the split was drawn with: the run's own when split_seed is unset
        return config.get("seed") if config.get("split_seed") is None else config["split_seed"]
    value = (config.get("options") or {}).get(param, config.get(param))
    if isinstance(value, (list, tuple)):
        return ",".join(str(int(w)) for w in value)
    return value


def _sort_key(value):
    """Numbers by value; layer lists ("64,32,16") by depth, then widths."""
    if isinstance(value, str):
        widths = tuple(int(w) for w in re.findall(r"\d+", value))
        return (len(widths), widths)
    return (0, (float(value),))


def _rank(values: pd.Series) -> np.ndarray:
    """Integer rank of each value under `_sort_key` (sort_values needs plain sortable values)."""
    keys = values.map(_sort_key).tolist()
    order = sorted(set(keys))
    return np.array([order.index(k) for k in keys])


def _metric_key(name: str):
    m = _METRIC.match(name)
    return (m.group(1), int(m.group(2)))
