"""`recviz train`: one run, trained by the executor --executor names (this process by default),
recorded in the run store as the app's worker records a run."""

from __future__ import annotations

import json
import sys

from recviz.commands.common import config_from_args, load_data
from recviz.errors import RecvizError


def epoch_line(report: dict, epochs: int, show_phase: bool = False) -> str:
    """`epoch 3/20  loss 0.3121  HR@10 0.6412  NDCG@10 0.3801  1.2 s` (+ the phase when pre-training)."""
    valid = report.get("valid") or {}
    parts = [f"epoch {report['epoch']}/{epochs}"]
    if show_phase and report.get("phase"):
        parts[0] += f" [{report['phase']}]"
    if report.get("train_loss") is not None:
        parts.append(f"loss {report['train_loss']:.4f}")
    parts += [f"{k} {valid[k]:.4f}" for k in ("HR@10", "NDCG@10") if k in valid]
    parts.append(f"{report.get('seconds', 0) + report.get('eval_seconds', 0):.1f} s")
    return "  ".join(parts)


def total_epochs(config) -> int:
    """Epochs a run reports at most: NeuMF with pre-training counts GMF's, MLP's, then its own."""
    return config.option("epochs", 1) * (3 if config.option("pretrain") else 1)


def cmd_train(args) -> int:
    from recviz.experiments import executors
    from recviz.experiments.store import RunStore

    config = config_from_args(args)
    pretrain = bool(config.option("pretrain"))
    epochs = total_epochs(config)

    def on_start(run_id: int, _config) -> None:
        print(f"run {run_id}: {config.model} on {config.dataset}", file=sys.stderr, flush=True)

    def on_epoch(_run_id: int, report: dict) -> None:
        print(epoch_line(report, epochs, pretrain), file=sys.stderr, flush=True)

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
