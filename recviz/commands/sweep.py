"""`recviz sweep`: one stored run per value of one parameter, one after another, and the table the
papers plot (HR@10 and NDCG@10 per value). The app's sweep mode plans runs with the same code."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from recviz.commands.common import config_from_args, load_data
from recviz.commands.train import epoch_line


def cmd_sweep(args) -> int:
    from recviz.runs import record, sweep

    base = config_from_args(args)
    values = sweep.parse_values(base.spec, args.param, args.values)
    sweep_id = sweep.new_sweep_id(args.param)
    data = load_data(base)  # read and prepared once for every value
    rows = []
    for config in sweep.plan(base, args.param, values):
        value = config.options[args.param]
        epochs = config.option("epochs", 1)
        print(f"{args.param} = {value}", file=sys.stderr, flush=True)
        run_id, _, summary = record.train_here(
            config, data=data, sweep_id=sweep_id, mlflow=args.mlflow,
            on_epoch=lambda report: print("  " + epoch_line(report, epochs), file=sys.stderr, flush=True))
        m = summary["metrics"]
        rows.append({args.param: value, "run_id": run_id, "HR@10": m.get("HR@10"), "NDCG@10": m.get("NDCG@10"),
                     "best_epoch": summary["best_epoch"], "train_seconds": summary["train_seconds"]})
    table = {"sweep_id": sweep_id, "model": base.model, "dataset": base.dataset, "param": args.param,
             "protocol": summary["protocol_detail"], "rows": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(table, indent=2, default=str))
    print(f"sweep {sweep_id}: {base.model} on {base.dataset} · {table['protocol']} · test metrics")
    print(f"{args.param:>12}  {'HR@10':>7}  {'NDCG@10':>7}  {'best':>4}  run")
    for r in rows:
        print(f"{str(r[args.param]):>12}  {r['HR@10']:7.4f}  {r['NDCG@10']:7.4f}  {r['best_epoch']:>4}  #{r['run_id']}")
    if args.json:
        print(json.dumps(table, default=str))
    return 0
