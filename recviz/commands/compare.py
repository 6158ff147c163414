"""`recviz compare A B` (two runs, or two seed groups, on the same split, user by user) and
`recviz report RUN...` (beyond-accuracy metrics and who a run fails, from its stored results)."""

from __future__ import annotations

import json
import re

from recviz.errors import RecvizError


def run_ids(text: str) -> list[int]:
    """An argparse type: "5" or a seed group "4,5,6"."""
    import argparse

    if not re.fullmatch(r"\s*\d+(\s*,\s*\d+)*\s*", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a run id or a comma-separated list of run ids (4,5,6)")
    return [int(p) for p in text.split(",")]


def cmd_compare(args) -> int:
    from recviz.analysis import paired, peruser
    from recviz.experiments.store import RunStore

    store = RunStore()
    a = [peruser.load(store, i) for i in dict.fromkeys(args.a)]
    b = [peruser.load(store, i) for i in dict.fromkeys(args.b)]
    result = paired.compare(a, b, metric=args.metric)
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    print(comparison_text(result))
    return 0


def comparison_text(c) -> str:
    """A comparison as `recviz compare` prints it."""
    from recviz.eval.significance import format_p

    t = c.test
    width = max(len(c.a), len(c.b))
    lines = [f"{c.metric} · {c.protocol} · {t.n} users, paired",
             f"  A  {c.a:<{width}}  {t.mean_a:.4f}",
             f"  B  {c.b:<{width}}  {t.mean_b:.4f}",
             f"  difference A − B       {t.mean_diff:+.4f}   {t.confidence:.0%} CI {t.ci_low:+.4f} … {t.ci_high:+.4f} "
             f"(bootstrap: {t.resamples} resamples of users, seed {t.seed})",
             f"  Wilcoxon signed-rank   R+ {t.rank_sum_a:g}, R− {t.rank_sum_b:g}, {format_p(t.wilcoxon_p)} "
             f"(users with no difference left out)",
             f"  paired t-test          t = {t.t:.3f}, {format_p(t.t_p)}",
             f"  A wins on {t.wins_a} users, B on {t.wins_b}, tie on {t.ties}"]
    if len(c.per_seed) > 1:
        lines.append("  per seed (mean over the split's users):")
        lines += [f"    seed {s['seed']}: #{s['run_a']} {s['mean_a']:.4f}  #{s['run_b']} {s['mean_b']:.4f}  "
                  f"difference {s['diff']:+.4f}" for s in c.per_seed]
    lines.append(_plain_text(c.verdict))
    return "\n".join(lines)


def _plain_text(markdown: str) -> str:
    return markdown.replace("**", "")


def cmd_report(args) -> int:
    from recviz.analysis import exposure, peruser, slices
    from recviz.experiments.store import RunStore

    store = RunStore()
    runs = [peruser.load(store, i) for i in dict.fromkeys(args.runs)]
    table = exposure.table(runs, k=args.k)
    ready = [r for r in runs if r.available]
    if args.metric and ready and not any(args.metric in r.per_user.metrics for r in ready):
        raise RecvizError(f"{args.metric} is not among these runs' per-user results",
                          fix="e.g. --metric NDCG@10 or HR@10")
    sliced = {by: slices.sliced(ready, args.metric, by) for by in slices.SLICES}
    bias = slices.popularity_bias(ready, k=args.k)
    if args.json:
        print(json.dumps({"k": args.k, "metric": args.metric,
                          "beyond_accuracy": _records(table),
                          "beyond_accuracy_samples": exposure.sample_notes(runs),
                          "slices": {by: _records(df) for by, df in sliced.items()},
                          "popularity_bias": _records(bias)}))
        return 0
    print(f"beyond accuracy, top {args.k} of the evaluated users")
    print(exposure.shown(table).drop(columns=["note"]).to_string(index=False))
    for r in runs:
        if not r.available:
            print(f"  {r.why_not}")
    for note in exposure.sample_notes(runs):
        print(f"  {note}")
    for by, df in sliced.items():
        if df.empty:
            continue
        bucketing = slices.SLICES[by]
        print(f"\n{args.metric} by {bucketing.title.lower()} ({bucketing.measure})")
        shown = df[["run", "label", "users", "mean", "sem"]].rename(columns={"label": "bucket", "mean": args.metric,
                                                                             "sem": "std error"})
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if not bias.empty:
        print(f"\npopularity: consumed in train vs recommended in the top {args.k}, by users' taste")
        print(bias[["run", "label", "users", "consumed", "recommended"]].to_string(
            index=False, float_format=lambda v: f"{v:.1f}"))
    return 0


def _records(df) -> list[dict]:
    import numpy as np

    return [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
            for row in df.to_dict(orient="records")]
