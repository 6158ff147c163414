"""`recviz train`: one run, trained by the executor --executor names (this process by default),
recorded in the run store as the app's worker records a run."""

from __future__ import annotations

import json
import sys

from recviz.analysis.progress import EpochLog
from recviz.commands.common import config_from_args, load_data
from recviz.errors import RecvizError
from recviz.training.report import EpochReport


def cmd_train(args) -> int:
    from recviz.experiments import executors
    from recviz.experiments.store import RunStore

    config = config_from_args(args)
    log = EpochLog(config.model, config.options)

    def on_start(run_id: int, _config) -> None:
        print(f"run {run_id}: {config.model} on {config.dataset}", file=sys.stderr, flush=True)

    def on_epoch(_run_id: int, report: EpochReport) -> None:
        print(log.add(report), file=sys.stderr, flush=True)

    store = RunStore()
    executor = executors.get(args.executor)(address=args.address)
    [run_id] = executor.train(store, [config], load=load_data, mlflow=args.mlflow, on_start=on_start,
                              on_epoch=on_epoch)
    run = store.get(run_id)
    if run.status == "cancelled":  # the cancel flag, set from the app or `RunStore.request_cancel`
        raise RecvizError("the run was cancelled (its finished epochs are stored)")
    if run.status != "done":
        raise RecvizError(f"run {run_id} {run.status}: {run.error or 'no reason was stored'}")
    summary = {**run.summary, "run_id": run_id}
    summary.pop("artifacts", None)
    if args.json:
        print(json.dumps(summary, default=str))
        return 0
    print(f"run {run_id}: {config.model} on {config.dataset} · {summary['protocol_detail']} · seed {config.seed}"
          f" · {summary['device']}")
    speed = summary["samples_per_second"]
    print(f"  trained in {summary['train_seconds']:.2f} s, {summary['epochs_run']} epoch(s), best {summary['best_epoch']}"
          + (f", {speed:,.0f} samples/s" if speed else "") + f"; {summary['users_evaluated']:,} test users")
    print("  " + "  ".join(f"{k} {v:.4f}" for k, v in summary["metrics"].items()))
    return 0
