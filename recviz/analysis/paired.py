"""Paired comparison of two stored runs judged on the same split: for every test user the
difference of one metric (A − B) and what `recviz.eval.significance` says of it — the Wilcoxon
signed-rank test, the paired t-test, a seeded bootstrap confidence interval of the mean
difference, and who wins on how many users.

Pairing is what makes the test strong: the same users, the same held-out items, the same
candidates, so each user's difference cancels how hard that user is. Runs on different splits (a
different seed draws other candidates; another protocol, dataset version or validation rule) are
refused with the reason, since their per-user numbers do not pair. The split is drawn with the
run's seed unless `split_seed` is set: two seeds of one setting given one split seed share a split
and compare as a pair. Whether two runs share a split
is decided by the split's identity stored with each run (`artifacts.split_id`); the settings that
differ (`RunConfig.split_key`) name the reason.

Groups of runs that repeat a setting over seeds compare seed by seed: each run of A is paired with
the run of B on its split (same seed), each user's value is the mean over those seeds, and the same
statistics run over these seed means (the users evaluated in every split). The per-seed means are
listed too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recviz.analysis.peruser import NotAvailable, RunResults, metric_names
from recviz.config import SPLIT_FIELDS
from recviz.errors import RecvizError
from recviz.eval.metrics import PRIMARY
from recviz.eval.significance import (
    ALPHA,
    BOOTSTRAP_SEED,
    RESAMPLES,
    PairedTest,
    paired_test,
    verdict,
)

DEFAULT_METRIC = PRIMARY


class NotPaired(RecvizError):
    """Two runs (or groups) whose per-user results do not pair: the reason is the message."""


# ---- comparing stored runs ---------------------------------------------------------------------------
@dataclass
class Comparison:
    metric: str
    protocol: str
    a: str  # label of A ("#5 neumf", or a group's)
    b: str
    runs_a: list[int]
    runs_b: list[int]
    users: np.ndarray  # internal ids of the paired users
    values_a: np.ndarray  # per user: A's metric (mean over seeds for groups)
    values_b: np.ndarray
    test: PairedTest
    per_seed: list[dict] = field(default_factory=list)  # seed, run_a, run_b, users, mean_a, mean_b, diff
    raw_users: np.ndarray | None = None  # the paired users' ids as in the data file

    @property
    def differences(self) -> np.ndarray:
        return self.values_a - self.values_b

    @property
    def verdict(self) -> str:
        return verdict(self.test, self.a, self.b, self.metric, self.protocol)

    def frame(self) -> pd.DataFrame:
        """One row per paired user: user (its id in the data file), A, B, difference."""
        users = self.raw_users if self.raw_users is not None else self.users
        return pd.DataFrame({"user": users, "A": self.values_a, "B": self.values_b, "difference": self.differences})

    def to_dict(self) -> dict:
        """For `recviz compare --json` and notebooks: plain numbers, no arrays."""
        t = self.test
        return {"metric": self.metric, "protocol": self.protocol, "a": self.a, "b": self.b,
                "runs_a": self.runs_a, "runs_b": self.runs_b, "users": t.n,
                "mean_a": t.mean_a, "mean_b": t.mean_b, "mean_difference": t.mean_diff,
                "ci": [t.ci_low, t.ci_high], "confidence": t.confidence,
                "bootstrap": {"resamples": t.resamples, "seed": t.seed},
                "wilcoxon": {"rank_sum_a": t.rank_sum_a, "rank_sum_b": t.rank_sum_b, "p": t.wilcoxon_p},
                "t_test": {"t": _plain(t.t), "p": _plain(t.t_p)},
                "wins_a": t.wins_a, "wins_b": t.wins_b, "ties": t.ties,
                "better": {"a": self.a, "b": self.b}.get(t.better), "alpha": ALPHA,
                "per_seed": self.per_seed, "verdict": self.verdict}


def summary_table(c: Comparison) -> pd.DataFrame:
    """The comparison's numbers as rows of [statistic, value] for a page or a report."""
    from recviz.eval.significance import format_p

    t = c.test
    rows = [("users paired", f"{t.n}"), (f"mean {c.metric} of A · {c.a}", f"{t.mean_a:.4f}"),
            (f"mean {c.metric} of B · {c.b}", f"{t.mean_b:.4f}"), ("mean difference A − B", f"{t.mean_diff:+.4f}"),
            (f"{t.confidence:.0%} bootstrap CI ({t.resamples} resamples, seed {t.seed})",
             f"{t.ci_low:+.4f} to {t.ci_high:+.4f}"),
            ("Wilcoxon signed-rank (R+ / R−)", f"{t.rank_sum_a:g} / {t.rank_sum_b:g}, {format_p(t.wilcoxon_p)}"),
            ("paired t-test", f"t = {t.t:.3f}, {format_p(t.t_p)}"),
            ("A wins / B wins / tie (users)", f"{t.wins_a} / {t.wins_b} / {t.ties}")]
    return pd.DataFrame(rows, columns=["statistic", "value"])


def seed_table(c: Comparison) -> pd.DataFrame:
    """One row per seed of a group comparison: the two runs, their means and the difference."""
    return pd.DataFrame(c.per_seed, columns=["seed", "run_a", "run_b", "users", "mean_a", "mean_b", "diff"])


def _plain(x: float):
    return x if np.isfinite(x) else str(x)


def compare(a: RunResults | list[RunResults], b: RunResults | list[RunResults],
            metric: str = DEFAULT_METRIC, resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED) -> Comparison:
    """Compare run (or seed group) `a` with `b` on `metric`, user by user. Raises NotAvailable
    when a run has no per-user results or no such metric, NotPaired when the runs do not share
    their splits."""
    group_a, group_b = _listed(a), _listed(b)
    for r in group_a + group_b:
        r.need()
    _has_metric(group_a + group_b, metric)
    pairs = pair(group_a, group_b)
    common = pairs[0][0].per_user.users
    for ra, rb in pairs[1:]:
        common = np.intersect1d(common, ra.per_user.users)
    values_a = np.mean([_values(r, metric, common) for r, _ in pairs], axis=0)
    values_b = np.mean([_values(r, metric, common) for _, r in pairs], axis=0)
    per_seed = []
    for ra, rb in pairs:
        va, vb = ra.per_user.metrics[metric], _values(rb, metric, ra.per_user.users)
        per_seed.append({"seed": ra.seed, "run_a": ra.run_id, "run_b": rb.run_id, "users": int(len(va)),
                         "mean_a": float(va.mean()), "mean_b": float(vb.mean()), "diff": float((va - vb).mean())})
    return Comparison(metric, pairs[0][0].protocol, _group_label(group_a), _group_label(group_b),
                      [r.run_id for r in group_a], [r.run_id for r in group_b], common, values_a, values_b,
                      paired_test(values_a, values_b, resamples, seed), per_seed, pairs[0][0].user_ids()[common])


def seed_group(runs_df: pd.DataFrame, run_id: int) -> list[int]:
    """The ids of the runs that repeat run `run_id`'s setting over seeds (`results.seed_groups`:
    equal but for seed, split seed, threads, device), itself included, ordered by seed then id."""
    from recviz.analysis.results import seed_groups

    groups = seed_groups(runs_df)
    mine = groups[runs_df["id"] == run_id]
    if mine.empty:
        return [int(run_id)]
    members = runs_df[groups == mine.iloc[0]]
    seeds = [(c or {}).get("seed", 0) for c in members["config"]]
    return [int(i) for _, i in sorted(zip(seeds, members["id"]))]


def _listed(x) -> list[RunResults]:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _group_label(group: list[RunResults]) -> str:
    if len(group) == 1:
        return group[0].label
    models = dict.fromkeys(r.label.split(" ", 1)[1] for r in group)
    return f"{', '.join(f'#{r.run_id}' for r in group)} {' / '.join(models)} · {len(group)} seeds"


def _has_metric(runs: list[RunResults], metric: str) -> None:
    names = metric_names(runs)
    if metric not in names:
        raise NotAvailable(f"{metric} is not among the per-user results of these runs",
                           fix=f"choose one of {', '.join(names)}")


def _values(r: RunResults, metric: str, users: np.ndarray) -> np.ndarray:
    """r's per-user `metric` for `users` (all of them evaluated by r)."""
    pu = r.per_user
    order = np.argsort(pu.users)
    at = order[np.searchsorted(pu.users, users, sorter=order)]
    return pu.metrics[metric][at]


def pair(group_a: list[RunResults], group_b: list[RunResults]) -> list[tuple[RunResults, RunResults]]:
    """Each run of A with the run of B judged on the same split, or NotPaired saying why not."""
    if not group_a or not group_b:
        raise NotPaired("nothing to compare: each side needs a run")
    for side, group in (("A", group_a), ("B", group_b)):
        ids = [r.per_user.split_id for r in group]
        twice = next((r for r, i in zip(group, ids) if ids.count(i) > 1), None)
        if twice is not None:
            same = [r.label for r, i in zip(group, ids) if i == twice.per_user.split_id]
            raise NotPaired(f"{' and '.join(same)} in {side} were judged on the same split: a group holds one "
                            "run per split (one per seed)", fix="keep one of them")
    if len(group_a) != len(group_b):
        raise NotPaired(f"A has {len(group_a)} runs and B {len(group_b)}: each run of A needs the run of B on its split",
                        fix="give both sides the same seeds")
    pairs = []
    for ra in group_a:
        rb = next((r for r in group_b if r.per_user.split_id == ra.per_user.split_id), None)
        if rb is None:
            raise NotPaired(_why_not_paired(ra, group_b), fix=NOT_PAIRED_FIX)
        pairs.append((ra, rb))
    return pairs


NOT_PAIRED_FIX = ("compare runs with the same dataset version, protocol, validation rule, candidates and split seed "
                  "(their splits match: train both with one --split-seed, or split_seed=, to compare two model seeds), "
                  "or groups of the same seeds")


def _why_not_paired(ra: RunResults, group_b: list[RunResults]) -> str:
    """Why run `ra` pairs with no run of B, in the words of the split settings that differ."""
    rb = group_b[0] if len(group_b) == 1 else None
    if rb is None:
        return (f"{ra.label} (seed {ra.seed}) has no run in B judged on its split (B: "
                f"{', '.join(f'{r.label} seed {r.seed}' for r in group_b)}): that comparison is not paired")
    differ = [f"{name.replace('_', ' ')} {x} ≠ {y}" for name, x, y in zip(SPLIT_FIELDS, ra.split_key, rb.split_key)
              if x != y]
    what = ", ".join(differ) if differ else "the same settings, but the data or split drawn differ " \
                                            "(the dataset changed between them)"
    return (f"{ra.label} and {rb.label} were judged on different splits ({what}): their users' held-out items "
            "were not ranked among the same candidates, so that comparison is not paired")
