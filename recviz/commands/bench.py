"""`recviz bench`: train the paper's models and baselines, print the table, write the JSON."""

from __future__ import annotations

import json
import sys

from recviz.errors import RecvizError


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise RecvizError(f"{what} must be comma-separated integers, not {text!r}") from None
    if not values:
        raise RecvizError(f"{what} is empty")
    return values


def cmd_bench(args) -> int:
    from recviz.experiments import bench
    from recviz.experiments.sweep import parse_seeds

    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    batch_sizes = _ints(args.batch_sizes, "--batch-sizes") if args.batch_sizes else (None,)
    report = bench.run_bench(args.dataset, models=models, seeds=tuple(parse_seeds(args.seeds)),
                             batch_sizes=batch_sizes, epochs=args.epochs, out=args.out, store=args.store,
                             device=args.device, threads=args.threads, valid=args.valid, preset=args.preset,
                             peak_test=args.peak_test)
    print(f"\n{args.dataset}: {report['data']['users']:,} users × {report['data']['items']:,} items, "
          f"{report['data']['interactions']:,} interactions · {report['protocol']} · "
          f"test metrics at the best validation epoch, mean over seeds {args.seeds}"
          + (f" · preset {args.preset}" if args.preset else " · each model's defaults"))
    print(bench.table(report["means"]))
    if args.peak_test:
        print("\n" + bench.peak_table(report["means"]))
    print(f"rows and means written to {args.out}", file=sys.stderr)
    if args.json:
        print(json.dumps({"out": str(args.out), "means": report["means"]}, default=str))
    return 0
