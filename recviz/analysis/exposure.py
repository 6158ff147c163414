"""Beyond-accuracy metrics of stored runs, from each run's stored top-N of its evaluated users
(`recviz.eval.beyond` defines them), as one table beside HR@K and NDCG@K. A run without per-user
results (stored by an earlier version) gets "not available" in every one of them.

A run stores the top-N lists of a bounded number of users (`topn.user_bound`), so a run that
evaluated more users than that has its beyond-accuracy metrics over the seeded sample of them it
stored: the table names how many users each run's numbers are over (`LISTED` of `EVALUATED`), and
`sample_notes` says it in words for the page and `recviz report`, with the number of lists the run
stored as read from its file."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recviz.analysis.peruser import RunResults
from recviz.eval import beyond

NOT_AVAILABLE = "not available"
LISTED = "users listed"  # evaluated users with a stored list: the users the metrics are over
EVALUATED = "users evaluated"


def columns(k: int) -> list[str]:
    """The beyond-accuracy columns at K, in `beyond.METRICS` order."""
    return [beyond.name(m, k) for m in beyond.METRICS]


def run_metrics(r: RunResults, k: int = 10) -> dict[str, float | None]:
    """Every beyond-accuracy metric of one run at K (None for each when not available)."""
    if not r.available:
        return {c: None for c in columns(k)}
    pu = r.need()
    return beyond.beyond_accuracy(r.top(), k, r.n_items, pu.item_popularity, pu.history_popularity,
                                  pu.n_train_users)


def table(runs: list[RunResults], k: int = 10) -> pd.DataFrame:
    """[run, protocol, HR@K, NDCG@K, <beyond-accuracy metrics at K>, users listed, users evaluated,
    note]: numbers as floats, NaN where a run cannot say; `note` is why ("" when everything is there)."""
    rows = []
    for r in runs:
        row = {"run": r.label, "protocol": r.protocol,
               f"HR@{k}": r.metrics.get(f"HR@{k}"), f"NDCG@{k}": r.metrics.get(f"NDCG@{k}")}
        row.update(run_metrics(r, k))
        row[LISTED], row[EVALUATED] = (r.listed(), len(r.need().users)) if r.available else (None, None)
        row["note"] = "" if r.available else (r.why_not or "")
        rows.append(row)
    cols = ["run", "protocol", f"HR@{k}", f"NDCG@{k}", *columns(k), LISTED, EVALUATED, "note"]
    return pd.DataFrame(rows, columns=cols)


def shown(df: pd.DataFrame) -> pd.DataFrame:
    """`table` as a person reads it: 4 significant digits, "not available" for a missing number."""
    out = df.copy()
    for c in out.columns:
        if c in ("run", "protocol", "note"):
            continue
        if c in (LISTED, EVALUATED):
            out[c] = [NOT_AVAILABLE if v is None or v != v else f"{int(v):,}" for v in out[c]]
            continue
        out[c] = [NOT_AVAILABLE if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.4g}"
                  for v in out[c]]
    return out


def sample_note(r: RunResults) -> str | None:
    """One run's beyond-accuracy sample in words, or None when its metrics are over every user it
    evaluated."""
    if not r.available or r.listed() >= len(r.need().users):
        return None
    return (f"{r.label}: beyond-accuracy metrics over a seeded sample of {r.listed():,} of its "
            f"{len(r.need().users):,} evaluated users (the run stored the top-N lists of "
            f"{r.stored():,} users)")


def sample_notes(runs: list[RunResults]) -> list[str]:
    """`sample_note` of each run that has one."""
    return [n for n in map(sample_note, runs) if n]
