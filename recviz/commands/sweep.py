"""`recviz sweep`: one stored run per value of one parameter, one after another, and the table the
papers plot (HR@10 and NDCG@10 per value). The app's sweep mode plans runs with the same code."""

from __future__ import annotations

import json
import sys

from recviz.commands.common import config_from_args, load_data, writable_output
from recviz.commands.train import epoch_line


def cmd_sweep(args) -> int:
    from recviz.runs import record, sweep
    from recviz.runs.store import RunStore

    base = config_from_args(args)
    values = sweep.parse_values(base.spec, args.param, args.values)
    seeds = sweep.parse_seeds(args.seeds) if args.seeds else None
    out = writable_output(args.out, "the sweep table") if args.out else None  # before any training
    store = RunStore()  # a damaged or unwritable store fails now, not after the data is read
    sweep_id = sweep.new_sweep_id(args.param)
    data = load_data(base)  # read and prepared once for every value
    rows = []
    for config in sweep.plan(base, args.param, values, seeds):
        value = config.options[args.param]
        epochs = config.option("epochs", 1)
        print(f"{args.param} = {value}" + (f", seed {config.seed}" if seeds else ""), file=sys.stderr, flush=True)
        run_id, _, summary = record.train_here(
            config, store, data=data, sweep_id=sweep_id, mlflow=args.mlflow,
            on_epoch=lambda report: print("  " + epoch_line(report, epochs), file=sys.stderr, flush=True))
        m = summary["metrics"]
        rows.append({args.param: value, "seed": config.seed, "run_id": run_id, "HR@10": m.get("HR@10"),
                     "NDCG@10": m.get("NDCG@10"), "best_epoch": summary["best_epoch"],
                     "train_seconds": summary["train_seconds"]})
    means = sweep.summarize(rows, args.param)
    table = {"sweep_id": sweep_id, "model": base.model, "dataset": base.dataset, "param": args.param,
             "protocol": summary["protocol_detail"], "seeds": seeds or [base.seed], "rows": rows, "means": means}
    if out is not None:
        out.write_text(json.dumps(table, indent=2, default=str))
    print(f"sweep {sweep_id}: {base.model} on {base.dataset} · {table['protocol']} · test metrics"
          + (f", mean ± std over seeds {','.join(map(str, seeds))}" if seeds and len(seeds) > 1 else ""))
    print(f"{args.param:>12}  {'HR@10':>16}  {'NDCG@10':>16}  runs")
    for r in means:
        cells = [f"{r[m]:.4f}" + (f" ± {r[m + ' std']:.4f}" if r[m + " std"] is not None else "")
                 for m in ("HR@10", "NDCG@10")]
        print(f"{str(r[args.param]):>12}  {cells[0]:>16}  {cells[1]:>16}  " + " ".join(f"#{i}" for i in r["runs"]))
    if args.json:
        print(json.dumps(table, default=str))
    return 0
