"""Plotly figures for the frames `recviz.analysis` computes. Each builder returns a `go.Figure`
and draws nothing itself, so pages stay one-liners (`st.plotly_chart(charts.sweep(df, ...))`)
and tests can count traces and read axis types.

Wherever a metric is drawn, its protocol is in the title or the facet label: a number without
its protocol ("HR@10" with 100 sampled candidates vs. full ranking) is not comparable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from recviz.analysis.results import metric_label

PALETTE = qualitative.Plotly
DASHES = ("dot", "dash", "dashdot", "longdash")  # earlier training phases; the last is solid
ROLE_STYLE = {  # role: (colour, symbol, size)
    "other": ("#c8c8c8", "circle", 4),
    "history": ("#1f77b4", "circle", 10),
    "recommended": ("#ff7f0e", "diamond", 11),
    "held-out": ("#d62728", "star", 15),
}


# A log axis ticked only at powers of ten ("1e-4, 1e-3"): plotly's default also labels 2 and 5
# between them, which reads as "2, 1000, 5, 2, 100".
LOG_AXIS = {"type": "log", "dtick": 1, "tickformat": "~g"}
# the hover of a point averaged over runs; its customdata is [runs, std] (a hover template can read
# customdata, not the error bar's own array)
SPREAD_HOVER = " ± %{customdata[1]:.4f} (std over %{customdata[0]} runs)"


def _log_option(name: str) -> bool:
    """Whether some registered model declares option `name` on a log scale."""
    from recviz.models import registry

    return any(o.name == name and o.log for spec in registry.MODELS.values() for o in spec.options)


def _empty(title: str, note: str) -> go.Figure:
    fig = go.Figure(layout={"title": title})
    fig.add_annotation(text=note, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    return fig


def _single_protocol(df: pd.DataFrame) -> str:
    """The protocol label when the frame has exactly one, else ''."""
    if "protocol" not in df:
        return ""
    labels = df["protocol"].dropna().unique()
    return str(labels[0]) if len(labels) == 1 else ""


# ---- data ---------------------------------------------------------------------------------------
def rating_histogram(df: pd.DataFrame | None) -> go.Figure:
    if df is None or df.empty:
        return _empty("Ratings", "this dataset has no ratings (implicit feedback)")
    fig = go.Figure(go.Bar(x=df["rating"], y=df["count"], name="ratings"))
    fig.update_layout(title="Rating distribution", xaxis_title="rating", yaxis_title="interactions",
                      xaxis={"type": "category"})
    return fig


def long_tail(user_df: pd.DataFrame, item_df: pd.DataFrame) -> go.Figure:
    """Interactions by activity rank, users and items on one log-scale axis: a straight-ish
    falling line is the long tail every recommender fights."""
    fig = go.Figure()
    for name, df in (("users", user_df), ("items", item_df)):
        fig.add_trace(go.Scatter(x=df["rank"], y=df["interactions"].where(df["interactions"] > 0),
                                 mode="lines", name=name))
    fig.update_layout(title="Long tail: interactions by rank", xaxis_title="rank (1 = most active)",
                      yaxis_title="interactions (log scale)")
    fig.update_yaxes(**LOG_AXIS)
    return fig


def behavior_mix(df: pd.DataFrame | None) -> go.Figure:
    if df is None or df.empty:
        return _empty("Behaviours", "this dataset has a single kind of interaction")
    fig = go.Figure(go.Bar(x=df["behavior"], y=df["count"], text=[f"{s:.1%}" for s in df["share"]],
                           textposition="outside", name="behaviours"))
    fig.update_layout(title="Behaviour mix", xaxis_title="behaviour", yaxis_title="interactions")
    return fig


# ---- training -----------------------------------------------------------------------------------
def learning_curves(curves: pd.DataFrame, metric: str = "NDCG@10", protocol: str = "",
                    best: dict[str, int] | None = None) -> go.Figure:
    """Training loss (left) and validation `metric` (right) against epoch; one colour per run,
    pre-training phases (NeuMF's GMF and MLP) dotted/dashed, each run's final phase solid.
    `best` maps a run to its best validation epoch (the one whose weights were kept and tested):
    a star marks it on both panels."""
    label = metric_label(f"validation {metric}", protocol)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss", label))
    if curves.empty:
        fig.update_layout(title="Learning curves (no epochs yet)")
        return fig
    for i, (run, r) in enumerate(curves.groupby("run", sort=False)):
        colour = PALETTE[i % len(PALETTE)]
        phases = r.groupby("phase", sort=False)["epoch"].min().sort_values().index.tolist()
        for phase in phases:
            p = r[r["phase"] == phase]
            dash = "solid" if phase == phases[-1] else DASHES[phases.index(phase) % len(DASHES)]
            name = str(run) if len(phases) == 1 else f"{run} · {phase}"
            style = dict(mode="lines+markers", line={"color": colour, "dash": dash}, name=name,
                         legendgroup=str(run))
            loss = p.drop_duplicates("epoch").sort_values("epoch")
            fig.add_trace(go.Scatter(x=loss["epoch"], y=loss["train_loss"], **style), row=1, col=1)
            m = p[p["metric"] == metric].sort_values("epoch")
            fig.add_trace(go.Scatter(x=m["epoch"], y=m["value"], showlegend=False, **style), row=1, col=2)
        at = (best or {}).get(run)
        final = r[(r["phase"] == phases[-1]) & (r["epoch"] == at)] if at is not None else r.iloc[:0]
        if len(final):
            value = final.loc[final["metric"] == metric, "value"]
            star = dict(mode="markers", marker={"symbol": "star", "size": 14, "color": colour,
                                                "line": {"color": "black", "width": 1}},
                        name="best epoch", legendgroup="best epoch", showlegend=i == 0,
                        hovertemplate=f"{run}: best validation epoch %{{x}}<extra></extra>")
            fig.add_trace(go.Scatter(x=[at], y=[final["train_loss"].iloc[0]], **star), row=1, col=1)
            if len(value):
                fig.add_trace(go.Scatter(x=[at], y=[value.iloc[0]], **{**star, "showlegend": False}), row=1, col=2)
    last = int(curves["epoch"].max()) if len(curves) else 1
    fig.update_xaxes(title_text="epoch", tickformat="d", dtick=max(1, -(-last // 10)))  # whole epochs only
    fig.update_yaxes(title_text="loss", row=1, col=1)
    fig.update_yaxes(title_text=metric, row=1, col=2)
    fig.update_layout(title="Learning curves")
    return fig


# ---- results ------------------------------------------------------------------------------------
def metric_bars(long: pd.DataFrame) -> go.Figure:
    """Grouped bars: runs on x, one bar per metric@K. Each dataset-and-protocol pair gets its own
    panel (`metric_long`'s `panel`), so no bar is read against another dataset's or protocol's
    scale; with one panel, its dataset and protocol are in the title. A bar that is the mean of
    several runs (`metric_long(over_seeds=True)`) carries an error bar of their standard deviation,
    and its hover says over how many runs; a bar of one run has none (not a bar of zero)."""
    if long.empty:
        return _empty("Test metrics", "no finished runs to show")
    panels = list(dict.fromkeys(long["panel"]))
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=panels if len(panels) > 1 else None,
                        shared_yaxes=False)
    names = long.sort_values(["metric", "K"], key=_metric_sort)[["metric", "K"]].drop_duplicates()
    for col, panel in enumerate(panels, start=1):
        part = long[long["panel"] == panel]
        for i, (metric, k) in enumerate(names.itertuples(index=False)):
            sel = part[(part["metric"] == metric) & (part["K"] == k)]
            runs = sel["runs"] if "runs" in sel else pd.Series(1, index=sel.index)
            spread = sel["std"].fillna(0) if "std" in sel else pd.Series(0.0, index=sel.index)
            several = bool((runs > 1).any())
            fig.add_trace(go.Bar(
                x=sel["run"], y=sel["value"], name=f"{metric}@{k}", marker_color=PALETTE[i % len(PALETTE)],
                legendgroup=f"{metric}@{k}", showlegend=col == 1, hovertext=sel["panel"],
                customdata=np.column_stack([runs, spread]),
                error_y={"type": "data", "array": spread.where(runs > 1).tolist(), "visible": True}
                if several else None,
                hovertemplate=f"%{{x}}<br>{metric}@{k}=%{{y:.4f}}" + (SPREAD_HOVER if several else "")
                              + "<extra>%{hovertext}</extra>"), row=1, col=col)
    fig.update_layout(barmode="group", title=metric_label("Test metrics", panels[0] if len(panels) == 1 else ""))
    fig.update_yaxes(title_text="value", row=1, col=1)
    return fig


def _metric_sort(col: pd.Series) -> pd.Series:
    return col if col.name == "K" else col.map({"HR": 0, "NDCG": 1}).fillna(2)


def sweep(sweep_df: pd.DataFrame, param: str, metric: str = "NDCG@10") -> go.Figure:
    """`metric` against `param`, one line per model, dataset and setting of the other options
    (`sweep_table`'s `setting`; dashed per protocol when there are several). A point averaged over
    several runs (seeds) carries an error bar of their standard deviation; a point of one run has
    none. Text values ("64,32,16") keep the table's order on a category axis;
    options declared on a log scale (learning rate, L2) get a log axis ticked at powers of ten."""
    proto = _single_protocol(sweep_df)
    fig = go.Figure()
    if sweep_df.empty:
        return _empty(metric_label(f"{metric} vs {param}", proto), "no finished runs vary this parameter")
    protocols = list(dict.fromkeys(sweep_df["protocol"]))
    several_datasets = "dataset" in sweep_df and sweep_df["dataset"].nunique() > 1
    keys = [k for k in ("model", "dataset", "setting") if k in sweep_df]
    for i, (key, m) in enumerate(sweep_df.groupby(keys, sort=False)):
        line = dict(zip(keys, key))
        for p, d in m.groupby("protocol", sort=False):
            name = (line["model"] + (f" · {line['setting']}" if line.get("setting") else "")
                    + (f" on {line['dataset']}" if several_datasets else "") + ("" if len(protocols) == 1 else f" · {p}"))
            at = protocols.index(p)
            dash = "solid" if at == 0 else DASHES[(at - 1) % len(DASHES)]
            spread = d.get(f"{metric} std")
            several = spread is not None and (d["runs"] > 1).any()
            fig.add_trace(go.Scatter(
                x=d[param], y=d[metric], mode="lines+markers", name=name,
                line={"color": PALETTE[i % len(PALETTE)], "dash": dash},
                error_y={"type": "data", "array": spread.where(d["runs"] > 1).tolist(), "visible": True}
                if several else None,
                customdata=np.column_stack([d["runs"], spread.fillna(0)]) if several else None,
                hovertemplate=f"{param}=%{{x}}<br>{metric}=%{{y:.4f}}" + (SPREAD_HOVER if several else "")
                              + "<extra>" + name + "</extra>"))
    if sweep_df[param].map(lambda v: isinstance(v, str)).any():
        fig.update_xaxes(type="category", categoryorder="array",
                         categoryarray=list(dict.fromkeys(sweep_df[param])))
    elif _log_option(param) and (pd.to_numeric(sweep_df[param], errors="coerce") > 0).all():
        fig.update_xaxes(**LOG_AXIS)
    fig.update_layout(title=metric_label(f"{metric} vs {param}", proto), xaxis_title=param,
                      yaxis_title=metric_label(metric, proto))
    return fig


# ---- understanding ------------------------------------------------------------------------------
PAIRED_BINS = 41  # bars of the per-user differences: the figure holds these, never one value per user


def paired_differences(differences: np.ndarray, a: str, b: str, metric: str, protocol: str = "") -> go.Figure:
    """Histogram of the per-user differences A − B of `metric` (a `paired.Comparison`), with a
    line at 0 (no difference) and one at the mean: mass right of 0 is where A does better. Binned
    here (`PAIRED_BINS` equal bins over the differences' range), so the figure has the same size
    for 600 users as for a million."""
    title = metric_label(f"Per-user difference of {metric}: {a} − {b}", protocol)
    d = np.asarray(differences, dtype=np.float64)
    if not len(d):
        return _empty(title, "no users in common")
    counts, edges = np.histogram(d, bins=PAIRED_BINS)
    fig = go.Figure(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges), name="users",
                           marker_color=PALETTE[0], customdata=np.column_stack([edges[:-1], edges[1:]]),
                           hovertemplate="difference %{customdata[0]:.3f} to %{customdata[1]:.3f}<br>"
                                         "%{y} users<extra></extra>"))
    fig.add_vline(x=0, line={"color": "black", "width": 1}, annotation_text="no difference",
                  annotation_position="top left")
    fig.add_vline(x=float(d.mean()), line={"color": PALETTE[1], "dash": "dash"},
                  annotation_text=f"mean {d.mean():+.4f}", annotation_position="top right")
    fig.update_layout(title=title, xaxis_title=f"{metric} of {a} − {metric} of {b}", yaxis_title="users",
                      bargap=0.05)
    return fig


def sliced_bars(df: pd.DataFrame, metric: str, title: str, protocol: str = "") -> go.Figure:
    """`metric` per bucket of users (`slices.sliced`), one bar colour per run, with the standard
    error of each bucket's mean; hovering says the bucket's range and its number of users."""
    label = metric_label(f"{metric} by {title.lower()}", protocol)
    if df.empty:
        return _empty(label, "no per-user results for these runs")
    fig = go.Figure()
    for i, (run, d) in enumerate(df.groupby("run", sort=False)):
        fig.add_trace(go.Bar(x=d["bucket"], y=d["mean"], name=str(run), marker_color=PALETTE[i % len(PALETTE)],
                             error_y={"type": "data", "array": d["sem"].fillna(0).tolist(), "visible": True},
                             customdata=np.column_stack([d["label"], d["users"]]),
                             hovertemplate=f"%{{customdata[0]}}<br>%{{customdata[1]}} users<br>{metric}=%{{y:.4f}}"
                                           f"<extra>{run}</extra>"))
    fig.update_layout(barmode="group", title=label, xaxis_title=title, yaxis_title=metric)
    return fig


def popularity_bias(df: pd.DataFrame, k: int = 10) -> go.Figure:
    """Per bucket of users' taste (`slices.popularity_bias`): the mean popularity of what they
    consumed (grey; the first run's users, which runs on one split share) against that of each
    run's top-K (coloured). Bars above grey: the model pushes more popular items than these users
    chose."""
    title = f"Popularity bias: recommended (top {k}) vs consumed"
    if df.empty:
        return _empty(title, "no per-user results for these runs")
    fig = go.Figure()
    consumed = df.drop_duplicates("bucket")
    fig.add_trace(go.Bar(x=consumed["bucket"], y=consumed["consumed"], name="consumed (train)",
                         marker_color="#9e9e9e", customdata=consumed["label"],
                         hovertemplate="%{customdata}<br>consumed %{y:.1f}<extra></extra>"))
    for i, (run, d) in enumerate(df.groupby("run", sort=False)):
        fig.add_trace(go.Bar(x=d["bucket"], y=d["recommended"], name=f"recommended by {run}",
                             marker_color=PALETTE[i % len(PALETTE)], customdata=d["label"],
                             hovertemplate="%{customdata}<br>recommended %{y:.1f}<extra>" + str(run) + "</extra>"))
    fig.update_layout(barmode="group", title=title, xaxis_title="users by the popularity of what they consumed",
                      yaxis_title="mean item popularity (users who had it in train)")
    return fig


# ---- recommendations ----------------------------------------------------------------------------
def embedding_map(map_df: pd.DataFrame, explained: tuple[float, float] | None = None) -> go.Figure:
    """Items on the PCA plane: everything else small and grey, the user's history, the
    recommendations and the held-out item(s) on top with their own symbols."""
    fig = go.Figure()
    for role, (colour, symbol, size) in ROLE_STYLE.items():
        d = map_df[map_df["role"] == role]
        if d.empty:
            continue
        fig.add_trace(go.Scattergl(x=d["x"], y=d["y"], mode="markers", name=role, text=d["title"],
                                   hovertemplate="%{text}<extra>" + role + "</extra>",
                                   marker={"color": colour, "symbol": symbol, "size": size,
                                           "opacity": 0.5 if role == "other" else 0.95}))
    axes = ("PC 1", "PC 2")
    if explained is not None:
        axes = tuple(f"{a} ({r:.0%} of variance)" for a, r in zip(axes, explained))
    fig.update_layout(title="Item embeddings (PCA)", xaxis_title=axes[0], yaxis_title=axes[1])
    return fig
