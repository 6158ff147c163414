"""Is one scorer better than another on the same users? Statistics of paired per-user values
(A's and B's metric for each user, judged on the same split), each declared once here:

- Wilcoxon signed-rank (scipy.stats.wilcoxon, two-sided, zero differences dropped — Wilcoxon's
  own rule — exact for up to 50 non-zero differences without ties, the normal approximation
  otherwise); R+ and R− are the rank sums of |d| over users where A, respectively B, is ahead.
- Paired t-test (scipy.stats.ttest_1samp of the differences against 0, two-sided).
- Bootstrap: `RESAMPLES` resamples of the users with replacement, drawn by a generator seeded with
  `BOOTSTRAP_SEED`; the percentile interval at `CONFIDENCE`.
- The verdict: a difference is *shown* when the Wilcoxon p is below `ALPHA`; its direction is the
  larger rank sum. Wins, losses and ties count users by the sign of their difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALPHA = 0.05
CONFIDENCE = 0.95
RESAMPLES = 2000
BOOTSTRAP_SEED = 0
_DRAWS = 1 << 22  # bootstrap indices drawn at once (32 MB), whatever the number of users


def wilcoxon(d: np.ndarray) -> tuple[float, float, float]:
    """(R+, R−, two-sided p) of the signed-rank test on differences `d`, zeros dropped.
    With no non-zero difference there is nothing to test: (0, 0, 1.0)."""
    from scipy import stats

    d = np.asarray(d, np.float64)
    d = d[d != 0]
    if len(d) == 0:
        return 0.0, 0.0, 1.0
    ranks = stats.rankdata(np.abs(d))
    plus, minus = float(ranks[d > 0].sum()), float(ranks[d < 0].sum())
    p = float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)
    return plus, minus, p


def paired_t(d: np.ndarray) -> tuple[float, float]:
    """(t, two-sided p) of the one-sample t-test of the differences against 0. Differences that
    are all equal have no spread: t is ±inf with p = 0 when they are not 0, and (0, 1) when they
    are; fewer than two differences say nothing: (nan, nan)."""
    from scipy import stats

    d = np.asarray(d, np.float64)
    if len(d) < 2:
        return float("nan"), float("nan")
    if np.all(d == d[0]):
        return (0.0, 1.0) if d[0] == 0 else (float(np.copysign(np.inf, d[0])), 0.0)
    res = stats.ttest_1samp(d, 0.0)
    return float(res.statistic), float(res.pvalue)


def bootstrap_ci(d: np.ndarray, resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED,
                 confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `d`: `resamples` resamples of its entries with
    replacement, drawn by a generator seeded with `seed` (the same numbers every time)."""
    d = np.asarray(d, np.float64)
    n = len(d)
    if n == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    step = max(1, _DRAWS // n)
    for s in range(0, resamples, step):
        rows = min(step, resamples - s)
        means[s:s + rows] = d[rng.integers(0, n, size=(rows, n))].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


@dataclass
class PairedTest:
    n: int  # users paired
    mean_a: float
    mean_b: float
    mean_diff: float  # A − B
    wins_a: int  # users on whom A's value is higher
    wins_b: int
    ties: int
    rank_sum_a: float  # Wilcoxon R+ (A ahead)
    rank_sum_b: float  # R− (B ahead)
    wilcoxon_p: float
    t: float
    t_p: float
    ci_low: float
    ci_high: float
    confidence: float = CONFIDENCE
    resamples: int = RESAMPLES
    seed: int = BOOTSTRAP_SEED

    @property
    def shown(self) -> bool:
        """Whether a difference is shown (Wilcoxon p below ALPHA)."""
        return self.wilcoxon_p < ALPHA

    @property
    def better(self) -> str | None:
        """"a" or "b" when a difference is shown, else None."""
        if not self.shown:
            return None
        return "a" if self.rank_sum_a > self.rank_sum_b else "b"


def paired_test(a: np.ndarray, b: np.ndarray, resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED,
                confidence: float = CONFIDENCE) -> PairedTest:
    """Everything this module says about per-user values `a` and `b` (aligned by user)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired values must be two equal 1-D arrays, not {a.shape} and {b.shape}")
    d = a - b
    plus, minus, p = wilcoxon(d)
    t, t_p = paired_t(d)
    low, high = bootstrap_ci(d, resamples, seed, confidence)
    n = len(d)
    return PairedTest(n, _mean(a), _mean(b), _mean(d), int((d > 0).sum()), int((d < 0).sum()), int((d == 0).sum()),
                      plus, minus, p, t, t_p, low, high, confidence, resamples, seed)


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else float("nan")


def format_p(p: float) -> str:
    """'p < 0.001', 'p = 0.042' (how every p-value is written)."""
    if not np.isfinite(p):
        return "p not defined"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def verdict(test: PairedTest, a: str, b: str, metric: str, protocol: str = "") -> str:
    """The comparison in words (Markdown): who is better, by how much, how sure, who wins where."""
    on = f"{metric}" + (f" ({protocol})" if protocol else "")
    if test.n == 0:
        return f"No user was evaluated by both {a} and {b}: nothing to compare."
    pct = f"{test.confidence:.0%}"
    numbers = (f"mean difference {a} − {b} = {test.mean_diff:+.4f} ({pct} CI {test.ci_low:+.4f} to "
               f"{test.ci_high:+.4f}), Wilcoxon {format_p(test.wilcoxon_p)}, paired t-test {format_p(test.t_p)}, "
               f"over {test.n} users")
    wins = f"{a} wins on {test.wins_a} users, {b} on {test.wins_b}, tie on {test.ties}."
    if test.wins_a == test.wins_b == 0:
        return f"**{a} and {b} are identical** on {on} for every one of the {test.n} users."
    if test.better is None:
        return f"**No difference shown** between {a} and {b} on {on} (Wilcoxon p ≥ {ALPHA:g}): {numbers}. {wins}"
    best, other = (a, b) if test.better == "a" else (b, a)
    return f"**{best} is better than {other}** on {on}: {numbers}. {wins}"
