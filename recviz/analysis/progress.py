"""Watching runs train: which run the Train page shows, the learning curves of runs in long form,
and how far a run has come ("epoch 3/20 of gmf (phase 1 of 3) · ~41 s left"). Plain functions over run lists and epoch
frames, so that the page computes nothing a test cannot check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from recviz.analysis.estimate import format_duration
from recviz.models.spec import Phase
from recviz.training.report import EpochReport


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


# ---- how far a run has come ---------------------------------------------------------------------
@dataclass(frozen=True)
class Position:
    """Where a run stands: in which phase (1-based `phase_number` of `phases`), how many of the
    phase's epochs are done, and how many epochs of the whole run count as done (`done` of
    `total`; a phase that stopped early counts as complete once the next one starts)."""

    phase: str
    phase_number: int
    phases: int
    in_phase: int
    phase_epochs: int
    done: int
    total: int

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / max(1, self.total))


class RunProgress:
    """A run's planned phases, from its model's declaration (`ModelSpec.phases`), and where the
    run stands given the phase of each epoch it has reported. The CLI's epoch lines, the API's
    progress bar and the Train page all read this, so they count the same total."""

    def __init__(self, phases: Sequence[Phase]):
        self.phases = tuple(phases) or (Phase("train", 1),)
        self.total = sum(p.epochs for p in self.phases)

    @classmethod
    def of(cls, model: str, options: Mapping) -> "RunProgress":
        """The progress of a run of `model` with these options (unknown models, e.g. a plug-in
        since removed: one phase of its `epochs` option)."""
        from recviz.models import registry

        spec = registry.MODELS.get(model)
        if spec is None:
            return cls((Phase("train", int(options.get("epochs", 1))),))
        return cls(spec.phases(options))

    def at(self, reported: Sequence[str]) -> Position:
        """`reported`: the phase of each epoch reported so far, in order."""
        names = [p.name for p in self.phases]
        current = reported[-1] if len(reported) else names[0]
        k = names.index(current) if current in names else len(names) - 1
        in_phase = 0
        for name in reversed(reported):
            if name != current:
                break
            in_phase += 1
        phase = self.phases[k]
        done = sum(p.epochs for p in self.phases[:k]) + min(in_phase, phase.epochs)
        return Position(current, k + 1, len(self.phases), in_phase, phase.epochs, done, self.total)

    def epoch_text(self, reported: Sequence[str]) -> str:
        """'epoch 3/20', or with several phases 'epoch 3/20 of gmf (phase 1 of 3)'."""
        pos = self.at(reported)
        text = f"epoch {pos.in_phase}/{pos.phase_epochs}"
        return text if pos.phases == 1 else f"{text} of {pos.phase} (phase {pos.phase_number} of {pos.phases})"

    def text(self, reported: Sequence[str], seconds_per_epoch: Sequence[float]) -> str:
        """`epoch_text` and the time left: 'epoch 3/20 of gmf (phase 1 of 3) · ~41 s left'."""
        pos = self.at(reported)
        left = seconds_left(pos.done, pos.total, seconds_per_epoch)
        text = self.epoch_text(reported)
        return text if left is None or left == 0 else f"{text} · ~{format_duration(left)} left"

    def epoch_line(self, report: EpochReport, reported: Sequence[str]) -> str:
        """One epoch for a terminal: `epoch 3/20  loss 0.3121  HR@10 0.6412  NDCG@10 0.3801  1.2 s`
        (`reported`: the phases of the epochs so far, this one included)."""
        parts = [self.epoch_text(reported)]
        if report.train_loss is not None:
            parts.append(f"loss {report.train_loss:.4f}")
        parts += [f"{k} {report.valid[k]:.4f}" for k in ("HR@10", "NDCG@10") if k in report.valid]
        parts.append(f"{report.seconds + report.eval_seconds:.1f} s")
        return "  ".join(parts)


class EpochLog:
    """One run's epoch lines as its reports arrive (the CLI, the API's progress bar)."""

    def __init__(self, model: str, options: Mapping):
        self.progress, self.reported = RunProgress.of(model, options), []

    def add(self, report: EpochReport) -> str:
        self.reported.append(report.phase)
        return self.progress.epoch_line(report, self.reported)

    @property
    def position(self) -> Position:
        return self.progress.at(self.reported)


def seconds_left(epochs_done: int, epochs_total: int, seconds_per_epoch: Sequence[float], recent: int = 5) -> float | None:
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


def launched_text(run_id: int, status: str) -> str:
    """The Train page's note on a run just launched, as it stands now (it is redrawn as the run goes)."""
    watch = " [Watch it learn ↓](#watched-run)"
    return {"queued": f"Run #{run_id} is queued with the settings below.{watch}",
            "running": f"Run #{run_id} is training with the settings below.{watch}",
            "done": f"Run #{run_id} finished: its results are on Results, its lists on Recommendations.",
            }.get(status, f"Run #{run_id} {status}: see below.")
