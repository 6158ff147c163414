"""Watching runs train: which run the Train page shows, the learning curves of runs in long form,
and how far a run has come ("epoch 3/20 · ~41 s left"). Plain functions over run lists and epoch
frames, so that the page computes nothing a test cannot check."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recviz.analysis.estimate import format_duration


# ---- the run being watched ----------------------------------------------------------------------
def parse_run_param(value) -> int | None:
    """A `?run=` query parameter as a run id, or None when it is missing or not a positive integer
    (a hand-edited link must not break the page)."""
    text = str(value if value is not None else "").strip()
    return int(text) if text.isdigit() and 0 < int(text) < 2**63 else None


def run_to_watch(runs: list, requested: int | None = None, submitted: int | None = None) -> int | None:
    """Which run the live panel shows, among `runs` (newest first, with `.id` and `.status`): the
    one asked for (the picker or a `?run=` link), else the one training now (not one that waits
    for a slot on a cluster, `.waiting`), else the one this browser session submitted last, else
    the newest. None when there is none."""
    ids = [r.id for r in runs]
    if requested in ids:
        return requested
    running = [r.id for r in runs if r.status == "running" and not getattr(r, "waiting", False)]
    if running:
        return running[0]
    if submitted in ids:
        return submitted
    return ids[0] if ids else None


# ---- learning curves and progress ---------------------------------------------------------------
def has_epochs(model: str) -> bool:
    """Whether runs of `model` record epochs (a learning curve); one-pass fits (ItemPop, ItemKNN)
    do not. Unknown models (a plug-in since removed) are assumed to."""
    from recviz.models import registry

    spec = registry.MODELS.get(model)
    return spec is None or spec.iterative


CURVE_COLUMNS = ["run", "epoch", "phase", "train_loss", "metric", "value"]


def curves_long(epochs_by_run: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """All runs' epochs in long form [run, epoch, phase, train_loss, metric, value]: one row per
    epoch and validation metric (an epoch without validation gives one row with metric None, so
    its training loss still plots). A run with no epochs yet contributes nothing."""
    frames = []
    for run, ep in epochs_by_run.items():
        if ep is None or len(ep) == 0:
            continue
        base = pd.DataFrame({"run": str(run), "epoch": ep["epoch"].astype(int).to_numpy(),
                             "phase": ep["phase"].fillna("train").astype(str).to_numpy() if "phase" in ep
                             else "train",
                             "train_loss": pd.to_numeric(ep.get("train_loss"), errors="coerce")})
        valid = [v if isinstance(v, dict) else {} for v in ep.get("valid", [None] * len(ep))]
        wide = pd.DataFrame(valid, index=base.index)
        if wide.columns.empty:
            frames.append(base.assign(metric=None, value=np.nan))
            continue
        long = pd.concat([base, wide], axis=1).melt(id_vars=list(base.columns), var_name="metric")
        frames.append(long)
    if not frames:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    out = pd.concat(frames, ignore_index=True)[CURVE_COLUMNS]
    out["value"] = pd.to_numeric(out["value"], errors="coerce")
    return out.sort_values(["run", "metric", "epoch"], kind="stable", na_position="first").reset_index(drop=True)


def eta(epochs_done: int, epochs_total: int, seconds_per_epoch: list[float], recent: int = 5) -> float | None:
    """Seconds left: median of the last `recent` epoch times × epochs remaining (the median
    shrugs off a first epoch slowed by warm-up). None before any epoch has a time. An upper
    bound when early stopping is on."""
    remaining = max(0, int(epochs_total) - int(epochs_done))
    if remaining == 0:
        return 0.0
    times = [float(s) for s in seconds_per_epoch if s is not None and np.isfinite(s)][-recent:]
    if not times:
        return None
    return float(np.median(times)) * remaining


def progress_text(epochs_done: int, epochs_total: int, seconds_per_epoch: list[float]) -> str:
    """'epoch 3/20 · ~41 s left' (just 'epoch 3/20' while the time is unknown)."""
    text = f"epoch {int(epochs_done)}/{int(epochs_total)}"
    left = eta(epochs_done, epochs_total, seconds_per_epoch)
    if left is None or left == 0:
        return text
    return f"{text} · ~{format_duration(left)} left"
