"""`recviz train`: train in this process, recorded in the run store as the worker records a run."""

from __future__ import annotations

import json
import sys

from recviz.analysis.estimate import refuse_if_too_big
from recviz.analysis.progress import EpochLog
from recviz.commands.common import config_from_args, load_data
from recviz.errors import RecvizError


def cmd_train(args) -> int:
    from recviz.experiments import record

    config = config_from_args(args)
    log = EpochLog(config.model, config.options)

    def on_start(run_id: int) -> None:
        print(f"run {run_id}: {config.model} on {config.dataset}", file=sys.stderr, flush=True)

    def on_epoch(report: dict) -> None:
        print(log.add(report), file=sys.stderr, flush=True)

    if args.executor == "ray":
        run_id, summary = _on_ray(args, config, on_start, on_epoch)
    else:
        data = load_data(config)
        refuse_if_too_big(config, data)  # a readable refusal with a fix, not an out-of-memory kill
        try:
            run_id, result, summary = record.train_here(config, on_epoch=on_epoch, on_start=on_start,
                                                        data=data, mlflow=args.mlflow)
        except Exception as exc:
            if record.is_cancel(exc):  # the cancel flag, set from the app or `RunStore.request_cancel`
                raise RecvizError("the run was cancelled (its finished epochs are stored)") from None
            raise
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


def _on_ray(args, config, on_start, on_epoch) -> tuple[int, dict]:
    """`--executor ray`: the run is one Ray task; this process stores what it reports."""
    from recviz.experiments import ray_exec
    from recviz.experiments.store import RunStore

    store = RunStore()
    [run_id] = ray_exec.submit_and_execute(store, [config], address=args.address, mlflow=args.mlflow,
                                           on_start=lambda run_id, _: on_start(run_id),
                                           on_epoch=lambda _, report: on_epoch(report))
    run = store.get(run_id)
    if run.status == "cancelled":
        raise RecvizError("the run was cancelled (its finished epochs are stored)")
    if run.status != "done":
        raise RecvizError(f"run {run_id} failed on Ray: {run.error}", fix="see `recviz runs` for its stored epochs")
    return run_id, {**run.summary, "run_id": run_id}

