"""`recviz runs`, `rename`, `cancel`, `delete`, `recommend` and `export`: what the run store holds,
looking after it, a finished run's top-K, and stored runs sent to MLflow."""

from __future__ import annotations

import json
import sys
import time

from recviz.commands.table import text_table
from recviz.errors import RecvizError
from recviz.experiments.rows import run_row


def cmd_runs(args) -> int:
    from recviz.experiments import launch
    from recviz.experiments.store import RunStore

    launch.recover()  # a dead run shows failed, and queued runs get a worker
    store = RunStore()
    runs = store.list(status=args.status, model=args.model, limit=args.limit)
    rows = [run_row(r) for r in runs]
    if args.json:
        print(json.dumps({"store": str(store.path), "runs": rows}, default=str))
        return 0
    if not rows:
        print("no runs stored yet" + (" that match" if args.status or args.model else "")
              + " — train one with `recviz train`")
        return 0
    for line in runs_table(rows):
        print(line)
    return 0


RUNS_COLUMNS = (("id", True), ("status", False), ("model", False), ("dataset", False), ("protocol", False),
                ("seed", True), ("HR@10", True), ("NDCG@10", True), ("epochs", True), ("created", False))
DATASET_WIDTH = 28  # a dataset given by its path keeps its last characters ("…/ratings.dat")


def runs_table(rows: list[dict]) -> list[str]:
    """`recviz runs`' lines: one per run (`run_row`s), columns sized to their content, and under a
    run its name and, when it failed, its error's first line."""
    lines = []
    for r in rows:
        hr, ndcg = (f"{r[k]:.4f}" if r[k] is not None else "—" for k in ("HR@10", "NDCG@10"))
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created_at"]))
        lines.append([r["id"], r["status"], r["model"], _short(r["dataset"], DATASET_WIDTH), r["protocol_detail"],
                      r["seed"], hr, ndcg, r["epochs_run"] if r["epochs_run"] is not None else "—", created])
    table = text_table([h for h, _ in RUNS_COLUMNS], lines, [right for _, right in RUNS_COLUMNS])
    out = [table[0]]
    for r, line in zip(rows, table[1:]):
        out.append(line)
        if r["name"]:
            out.append(f"{'':6}name: {r['name']}")
        if r["status"] in ("failed", "unreadable") and r["error"]:
            out.append(f"{'':6}{r['error'].splitlines()[0]}")
    return out


def cmd_rename(args) -> int:
    from recviz.experiments.store import RunStore

    name = RunStore().rename(args.run, args.name)
    print(f"run {args.run} is now named '{name}'" if name else f"run {args.run} has no name now")
    return 0


def cmd_cancel(args) -> int:
    from recviz.experiments.store import RunStore

    store = RunStore()
    for run_id in dict.fromkeys(args.runs):
        store.get(run_id)  # an unknown id is an error naming it
        status = store.request_cancel(run_id)
        print(f"run {run_id}: " + {"cancelled": "cancelled",
                                   "running": "asked to stop (its worker stops it within a batch)"}.get(
            status, f"already {status}, nothing to cancel"))
    return 0


def cmd_executor(args) -> int:
    """The app's executor, as the Train page's "Where runs train" shows and sets it."""
    from recviz.experiments import executors

    current = executors.chosen()
    if args.executor is not None or args.address is not None:
        current = executors.choose(args.executor or current["executor"], args.address or current["address"])
    problem, executor = None, executors.get(current["executor"])
    if executor.takes_address and (args.check or args.address is not None or args.executor is not None):
        try:
            executor.probe(current["address"])
        except RecvizError as err:
            problem = err
    print(executors.where_runs_train(current))
    if problem is not None:
        print(f"recviz: warning: cannot join it: {problem}\n  Runs the app launches fail with this until it "
              "answers.", file=sys.stderr)
        return 1
    return 0


def cmd_delete(args) -> int:
    """Deleting loses a run's weights and recommendation lists for good, so it is said out loud
    first: the runs are listed and, from a terminal, confirmed; elsewhere `--yes` is required."""
    from recviz.experiments import launch
    from recviz.experiments.store import RunStore

    launch.recover()
    store = RunStore()
    runs = [store.get(r) for r in dict.fromkeys(args.runs)]  # every id checked before anything goes
    running = [r.id for r in runs if r.status == "running"]
    if running:
        raise RecvizError(f"run {running[0]} is running", fix=f"cancel it first (`recviz cancel {running[0]}`), then delete it")
    for run in runs:
        print(f"run {run.id}: {run.name or run.model} on {run.dataset}, {run.status}")
    if not args.yes:
        if not sys.stdin.isatty():
            raise RecvizError("deleting runs needs a confirmation", fix="add --yes to delete them")
        answer = input(f"Delete {'this run' if len(runs) == 1 else f'these {len(runs)} runs'} and "
                       "their files? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 0
    for run in runs:
        store.delete(run.id)
    print(f"deleted {', '.join(f'run {r.id}' for r in runs)}")
    return 0


def cmd_recommend(args) -> int:
    from recviz.experiments import artifacts, launch
    from recviz.experiments.store import RunStore

    launch.recover()
    store = RunStore()
    run = store.get(args.run)
    if run.status != "done":
        raise RecvizError(f"run {run.id} is {run.status}, so it has no recommendations",
                          fix="pick a finished run from `recviz runs --status done`")
    from recviz.data import saved

    table = artifacts.recommend_for(artifacts.run_files(store, run), args.user, k=args.k,
                                    item_table=saved.titles(saved.split_ref(run.dataset)[0]))
    reasons = None
    if getattr(args, "why", False):
        from recviz.analysis import why

        reasons = why.for_run(store, run, args.user, n=len(table))
    if args.json:
        out = {"run": run.id, "model": run.model, "dataset": run.dataset, "user": args.user,
               "k": args.k, "items": table.to_dict(orient="records")}
        if reasons is not None:
            out["why"] = reasons.to_dict()
        print(json.dumps(out, default=_plain))
        return 0
    print(f"top {len(table)} for user {args.user} · run {run.id} ({run.model} on {run.dataset})")
    if reasons is not None:
        print(f"why: {reasons.measure}")
    lines = reasons.lines() if reasons is not None else {}
    for row in table.itertuples():
        genres = f"  [{row.genres}]" if "genres" in table and row.genres else ""
        print(f"{row.rank:>3}. {row.title}{genres}  (item {row.item}, score {row.score:.3f})")
        if row.rank in lines:
            print(f"       {lines[row.rank]}")
    return 0


def cmd_export(args) -> int:
    from recviz.experiments import tracking
    from recviz.experiments.store import RunStore

    uri, run_ids = args.mlflow, list(args.run_ids)
    if uri and uri.isdigit():  # `--mlflow 12 13`: no tracking URI is a bare number
        uri, run_ids = "", [int(uri), *run_ids]
    if not run_ids:
        raise RecvizError("no run ids given", fix="e.g. recviz export --mlflow 12 13 (see `recviz runs`)")
    store = RunStore()
    experiment = args.experiment or tracking.EXPERIMENT
    sent = tracking.export(store, run_ids, uri or None, experiment=experiment)
    if args.json:
        print(json.dumps({"experiment": experiment, "runs": {str(k): v for k, v in sent.items()}}))
        return 0
    for run_id, mlflow_id in sent.items():
        print(f"run {run_id} → MLflow run {mlflow_id}")
    return 0


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]


def _plain(o):
    return o.item() if hasattr(o, "item") else str(o)
