"""`recviz sweep`: one stored run per value of one parameter (one after another, or in parallel on
Ray), and the table the papers plot (HR@10 and NDCG@10 per value). The app's sweep mode plans runs
with the same code."""

from __future__ import annotations

import json
import sys

from recviz.commands.common import config_from_args, load_data, writable_output
from recviz.analysis.progress import EpochLog


def cmd_sweep(args) -> int:
    from recviz.experiments import sweep
    from recviz.experiments.store import RunStore

    base = config_from_args(args)
    values = sweep.parse_values(base.spec, args.param, args.values)
    seeds = sweep.parse_seeds(args.seeds) if args.seeds else None
    out = writable_output(args.out, "the sweep table") if args.out else None  # before any training
    store = RunStore()  # a damaged or unwritable store fails now, not after the data is read
    sweep_id = sweep.new_sweep_id(args.param)
    configs = sweep.plan(base, args.param, values, seeds)
    rows = [_row(store.get(run_id), args.param) for run_id in _train(args, store, configs, sweep_id, bool(seeds))]
    done = [r for r in rows if r["status"] == "done"]
    protocol = store.get(done[0]["run_id"]).summary.get("protocol_detail") if done else base.protocol
    means = sweep.summarize(done, args.param)
    table = {"sweep_id": sweep_id, "model": base.model, "dataset": base.dataset, "param": args.param,
             "protocol": protocol, "seeds": seeds or [base.seed], "executor": args.executor, "rows": rows,
             "means": means}
    if out is not None:
        out.write_text(json.dumps(table, indent=2, default=str))
    print(f"sweep {sweep_id}: {base.model} on {base.dataset} · {table['protocol']} · test metrics"
          + (f", mean ± std over seeds {','.join(map(str, seeds))}" if seeds and len(seeds) > 1 else ""))
    print(f"{args.param:>12}  {'HR@10':>16}  {'NDCG@10':>16}  runs")
    for r in means:
        cells = [f"{r[m]:.4f}" + (f" ± {r[m + ' std']:.4f}" if r[m + " std"] is not None else "")
                 for m in ("HR@10", "NDCG@10")]
        print(f"{r[args.param]!s:>12}  {cells[0]:>16}  {cells[1]:>16}  " + " ".join(f"#{i}" for i in r["runs"]))
    for r in rows:
        if r["status"] != "done":
            print(f"{r[args.param]!s:>12}  run #{r['run_id']} {r['status']}: {(r['error'] or '').splitlines()[0]}")
    if args.json:
        print(json.dumps(table, default=str))
    return 0 if len(done) == len(rows) else 1


def _train(args, store, configs, sweep_id, several_seeds) -> list[int]:
    """Every run of the sweep, trained by the executor --executor names (this process, one run after
    another, by default; Ray: in parallel up to the cluster's size), the data read once. Returns
    their ids, in the order of `configs`; a run that fails or is cancelled is a row of the table."""
    from recviz.experiments import executors

    heading = {}  # run id → (the value and seed it trains, its epoch lines), once it is taken to train

    def started(run_id, config):
        heading[run_id] = (_heading(args.param, config, several_seeds), EpochLog(config.model, config.options))

    def epoch(run_id, report):
        name, log = heading[run_id]
        print(f"  #{run_id} {name}: " + log.add(report), file=sys.stderr, flush=True)

    def finished(run_id, status):
        print(f"#{run_id} {heading.get(run_id, ('',))[0]}: {status}", file=sys.stderr, flush=True)

    executor = executors.get(args.executor)(address=args.address)
    return list(executor.train(store, configs, sweep_id=sweep_id, mlflow=args.mlflow, load=load_data,
                               on_start=started, on_epoch=epoch, on_done=finished))


def _heading(param: str, config, several_seeds: bool) -> str:
    return f"{param} = {config.options[param]}" + (f", seed {config.seed}" if several_seeds else "")


def _row(run, param: str) -> dict:
    """One run of the sweep as the table and the JSON show it."""
    s = run.summary or {}
    m = s.get("metrics") or {}
    return {param: run.config.options[param], "seed": run.seed, "run_id": run.id, "status": run.status,
            "HR@10": m.get("HR@10"), "NDCG@10": m.get("NDCG@10"), "best_epoch": s.get("best_epoch"),
            "train_seconds": s.get("train_seconds"), "error": run.error}
