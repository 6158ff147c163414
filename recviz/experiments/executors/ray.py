"""The `ray` executor: each run a Ray task on a cluster.

The process that calls `RayExecutor.execute` (`recviz train/sweep --executor ray`, or the app's
worker when the Train page chose Ray) is the *driver*: it holds the runs in the store (claimed by its
pid, so that if it dies they are reaped as any dead worker's are, and Ray ends the tasks of a
driver that is gone), and it is the only one that writes the store. Each run becomes one Ray task:

- the run's split (with its data) goes through Ray's object store, put once per dataset and
  protocol, so a node that does not share our data directory trains on exactly what a local run
  would;
- per-epoch reports flow back through one small actor per driver (`Mailbox`, on the driver's
  node; it and both its ends are in `recviz.experiments.executors.ray_mailbox`) that the driver
  empties every `POLL_S`, so the store — and the live curves read from it — fill as for a local run;
- the artifacts (weights, top-N, evaluation, item coordinates) are written by the task into a
  temporary folder on its node and come back as bytes, written where a local run keeps them;
- a cancel asked in the store is passed to the task, which stops between batches as a local run
  does; one that does not answer within `CANCEL_GRACE_S`, or has not started yet, is cancelled
  by Ray (force);
- a task whose worker process or node dies fails its run with Ray's reason, and the other runs go
  on (tasks are not retried: a run is trained once or not at all);
- when Ray cannot reach the driver's mailbox for `LOST_AFTER_S` (the cluster went away), every
  run still out fails saying so, and the driver takes no more: it never waits on a cluster that
  is gone;
- a task holds the CPUs it asked for while it trains: it talks to the mailbox from a helper thread,
  because Ray lends a task's CPUs to other tasks while its main thread blocks in `ray.get`.

Joining the cluster and what it offers: `recviz.experiments.executors.ray_cluster`. Ray is optional
(`pip install -e ".[ray]"`); nothing here imports it until a run asks for it.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from recviz.config import RunConfig
from recviz.errors import Cancelled
from recviz.experiments.executors.base import Executor, More, OnDone, OnEpoch, OnStart, capacity, data_key, machine
from recviz.experiments.executors.ray_cluster import INSTALL, connect, last_seen, probe, remember_cluster, require_ray
from recviz.experiments.executors.ray_mailbox import LOST_AFTER_S, POLL_S, Line, Mail, Mailbox, Out, quietly
from recviz.experiments.store import WAITING_FOR_SLOT

if TYPE_CHECKING:
    from recviz.experiments.store import RunStore

CANCEL_GRACE_S = 10.0  # a task asked to stop that has not stopped by then is cancelled by Ray


@dataclass
class _Trained:
    """What a task returns: the run's summary and its artifacts' files, as bytes by name."""

    summary: dict
    files: dict[str, bytes]


class RayExecutor(Executor):
    """The `ray` executor: each run a Ray task on the cluster at `address`, this process their driver."""

    label = "a Ray cluster"
    help = "each run is a Ray task on a cluster, a sweep's runs in parallel"
    install = INSTALL
    takes_address = True

    @classmethod
    def require(cls) -> None:
        require_ray()

    def check_fits(self, config: RunConfig, data) -> None:
        """The runs train on the cluster's machines, whose memory this process does not know: Ray
        itself refuses a task no node can hold."""

    def check(self) -> None:
        connect(self.address)  # an address where nothing answers leaves no run behind

    @classmethod
    def where(cls, address: str = "auto") -> str:
        if address == "local":
            return f"Runs train as Ray tasks on a cluster the worker starts here: {capacity(machine())}"
        seen = last_seen(address)
        cluster = _cluster_words(address)
        if seen is None:
            return (f"Runs train as Ray tasks on {cluster}: not joined yet (its CPUs and GPUs "
                    "show once a run or a check joins it)")
        when = time.strftime("%d %b %H:%M", time.localtime(seen["at"]))
        return f"Runs train as Ray tasks on {cluster}: {capacity(seen)} (at {when})"

    @classmethod
    def probe(cls, address: str = "auto") -> dict:
        return probe(address)

    def execute(self, store: RunStore, runs: Sequence[int | RunConfig], *, sweep_id=None, mlflow: str | None = None,
                data: dict | None = None, on_start: OnStart | None = None, on_epoch: OnEpoch | None = None,
                on_done: OnDone | None = None, more: More | None = None) -> dict[int, str]:
        """Train the runs as Ray tasks, in parallel up to what the cluster offers; store their
        epochs, artifacts and outcome as a local run's. New runs (configs) are created once the
        cluster is joined, each shown waiting for a slot until its task says where it trains.
        `more(None)`, asked every `POLL_S`, gives the runs (claimed by this process) queued while
        these train; they are sent out at once."""
        from recviz.experiments import experiment
        from recviz.experiments.prepared import prepare_data

        address = self.address
        ray = connect(address)
        totals = ray.cluster_resources()
        for item in runs:  # new runs the cluster could never take: refused before any is stored
            if isinstance(item, RunConfig):
                check_cluster_fits(item.replace(threads=self.threads) if self.threads and not item.threads else item,
                                   totals, address)
        remember_cluster(ray, address)
        mailbox_class, task = _remote_parts(ray)
        mail = Mail(ray, mailbox_class)
        gpus = totals.get("GPU", 0)
        splits: dict = {}  # by split key: the split (with its data) in Ray's object store, put once
        sent: dict[int, Out] = {}  # every run sent out, by id (late news still lands)
        live: dict[object, Out] = {}  # the runs still out, by their task's ObjectRef
        outcome: dict[int, str] = {}

        def ended(run_id: int, status: str) -> None:
            outcome[run_id] = status
            if on_done is not None:
                on_done(run_id, status)

        def taken(batch: Sequence[int | RunConfig]) -> list[tuple[int, RunConfig]]:
            """Runs as (id, config to train): configs created now, claimed by this process and shown
            waiting for a slot; runs of the store with the stored config (and the worker's threads
            where the run does not set its own)."""
            out = []
            for item in batch:
                if isinstance(item, RunConfig):
                    out.append((self.create(store, item, sweep_id, mlflow, device=WAITING_FOR_SLOT), item))
                else:
                    config = store.get(item).config
                    out.append((item, config.replace(threads=self.threads) if self.threads and not config.threads
                                else config))
            return out

        def hold(batch: list[tuple[int, RunConfig]]) -> list[tuple[int, RunConfig]]:
            """The runs of `batch` still ours to send, each shown waiting for a slot until its task
            says where it trains (the first split to draw may take a while: they all wait, none trains)."""
            kept = []
            for run_id, config in batch:
                if store.cancel_requested(run_id):  # cancelled between its claim and now: nothing to send
                    store.mark_cancelled(run_id)
                    ended(run_id, "cancelled")
                elif store.mark_running(run_id, os.getpid(), WAITING_FOR_SLOT):
                    kept.append((run_id, config))
                    if on_start is not None:
                        on_start(run_id, config)
                else:  # not ours any more (reaped, ended)
                    ended(run_id, store.get(run_id).status)
            return kept

        def send(run_id: int, config: RunConfig) -> None:
            key = config.split_key
            if key not in splits:  # drawn here, once, as a local run draws it; shipped with its data
                prepared = (data or {}).get(data_key(config))
                splits[key] = ray.put(experiment.prepare_split(
                    config, prepared if prepared is not None else prepare_data(config)))
            check_cluster_fits(config, totals, address)  # a queued run: it fails alone, with the reason
            wants_gpu = config.spec.uses_device and config.device in ("auto", "cuda") and gpus >= 1
            ref = task.options(num_cpus=config.threads or 1, num_gpus=1 if wants_gpu else 0).remote(
                config.to_json(), splits[key], mail.box, run_id)
            live[ref] = sent[run_id] = Out(run_id, ref)

        try:
            for run_id, config in hold(taken([*runs, *(more(None) if more is not None else [])])):
                _send_or_fail(store, send, run_id, config, ended)
            while live:
                done, _ = ray.wait(list(live), num_returns=len(live), timeout=POLL_S)
                mail.collect(store, sent, on_epoch)
                if done:
                    mail.collect_last(store, sent, on_epoch)
                lost = mail.lost_for() > LOST_AFTER_S
                for ref, run in list(live.items()):
                    if ref in done:
                        status = _finish(ray, store, run)
                    elif lost:
                        status = _lost(ray, store, run, address, mail.unreachable)
                    else:
                        _keep(ray, store, run, mail)
                        continue
                    del live[ref]
                    ended(run.id, status)
                if lost:  # the cluster is gone: runs queued meanwhile wait for a driver that can reach one
                    break
                for run_id, config in hold(taken(more(None) if more is not None else [])):
                    _send_or_fail(store, send, run_id, config, ended)
        finally:  # this driver stops early (an error, a signal): its tasks must not train on unseen
            for ref in live:
                quietly(ray.cancel, ref, force=True)
        return outcome


def _keep(ray, store: RunStore, run: Out, mail: Mail) -> None:
    """A run still out: heartbeat, and pass on a cancel asked in the store — to Ray at once for a
    task that has not started (nothing to stop cooperatively), else to the task, which Ray cancels
    itself if it has not stopped `CANCEL_GRACE_S` later."""
    store.heartbeat(run.id)
    if run.stop_asked is None and store.cancel_requested(run.id):
        if run.where is None:
            run.before_start = True
            quietly(ray.cancel, run.ref, force=True)
        mail.ask_to_stop(run.id)
        run.stop_asked = time.monotonic()
    elif run.stop_asked is not None and time.monotonic() - run.stop_asked > CANCEL_GRACE_S:
        quietly(ray.cancel, run.ref, force=True)


def _lost(ray, store: RunStore, run: Out, address: str, why: BaseException | None) -> str:
    """A run still out when Ray has failed to reach the driver's mailbox for `LOST_AFTER_S`: it
    fails saying so (never a hang), and Ray is asked to end its task in case it still trains."""
    cluster = "the Ray cluster" + (f" at {address}" if address not in ("auto", "local") else "")
    store.fail(run.id, f"lost contact with {cluster} for {LOST_AFTER_S:.0f} s while it trained "
                       f"({run.where or 'not started yet'}): {_reason(why) if why else 'no answer'}")
    quietly(ray.cancel, run.ref, force=True)
    return "failed"


def check_cluster_fits(config: RunConfig, totals: dict, address: str) -> None:
    """Refuse a run whose task asks for more CPUs (its threads) or GPUs than the whole cluster has:
    Ray would keep it pending for ever, the run "waiting for a free slot" that never comes."""
    from recviz.errors import RecvizError

    cpus, have_cpus = config.threads or 1, totals.get("CPU", 0)
    if cpus > have_cpus:
        raise RecvizError(f"this run asks for more than the cluster has: {cpus} CPUs (--threads {cpus}) where the "
                          f"Ray cluster at {address} has {have_cpus:g} in all, so it would wait for ever",
                          fix=f"use --threads {max(int(have_cpus), 1)} or fewer, or join a cluster with more CPUs")
    if config.spec.uses_device and config.device == "cuda" and totals.get("GPU", 0) < 1:
        raise RecvizError(f"this run asks for more than the cluster has: a GPU (--device cuda), and the Ray cluster "
                          f"at {address} has none", fix="use --device auto or cpu, or join a cluster with a GPU")


def _send_or_fail(store: RunStore, send, run_id: int, config: RunConfig, ended) -> None:
    """A run that joins a batch: one whose data cannot be read fails alone, with its reason."""
    from recviz.experiments import reasons

    try:
        send(run_id, config)
    except Exception as exc:  # noqa: BLE001 — the batch goes on; this run ends with its reason
        store.fail(run_id, reasons.describe(exc))
        ended(run_id, "failed")


def _finish(ray, store: RunStore, run: Out) -> str:
    from ray import exceptions as rex

    from recviz.experiments import reasons, record, tracking

    run_id = run.id
    try:
        out: _Trained = ray.get(run.ref)
    except rex.TaskCancelledError:
        store.mark_cancelled(run_id, reason=None if run.before_start else
                             "stopped by Ray after it did not answer the cancel request")
        return "cancelled"
    except rex.RayTaskError as exc:  # the task raised: its own exception, readable
        cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else exc
        if record.is_cancel(cause):
            store.mark_cancelled(run_id)
            return "cancelled"
        store.fail(run_id, reasons.describe(cause))
        return "failed"
    except (rex.WorkerCrashedError, rex.NodeDiedError, rex.ObjectLostError, rex.RayError) as exc:
        where = run.where or "its Ray worker"
        store.fail(run_id, f"the Ray worker training it died ({where}): {_reason(exc)}")
        return "failed"
    run_dir = store.run_dir(run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    from recviz.files import write_atomic

    for name, data in out.files.items():
        write_atomic(run_dir / name, data)
    store.finish(run_id, {**out.summary, "run_id": run_id, "artifacts": str(run_dir)})
    tracking.export_requested(store, run_id)
    return "done"


def _reason(exc: BaseException) -> str:
    """Ray's reason in a line: "NodeDiedError: Task failed because the node it was running on is
    dead or unavailable." (its advice on `ray logs` and the dashboard goes to the log, not the run)."""
    said = " ".join(str(exc).split())
    sentence = said.split(". ")[0].rstrip(".") + "." if said else "no reason given"
    return f"{type(exc).__name__}: {sentence[:300]}"


def _remote_parts(ray):
    """The mailbox actor (`ray_mailbox.Mailbox`) and the task, made remote once Ray is imported (a
    worker needs only `recviz` importable, not this module's state)."""

    _Mailbox = ray.remote(num_cpus=0)(Mailbox)

    @ray.remote(max_retries=0)
    def _train(config_json: str, split, mailbox, run_id: int) -> _Trained:
        line = Line(ray, mailbox, run_id)
        try:
            return train_task(config_json, split, line, ray)
        finally:  # Ray reuses the worker process for later tasks: leave no thread behind
            line.close()

    return _Mailbox, _train


def train_task(config_json: str, split, line: Line, ray) -> _Trained:
    """What a Ray worker does for one run: train it on the split it was sent, send each epoch
    report and poll the stop flag (at most every `POLL_S`, between batches), then save the
    artifacts in a temporary folder and return them as bytes with the summary."""
    from recviz.experiments import artifacts, experiment, record

    config = RunConfig.from_dict(json.loads(config_json))
    device = record.resolve_device(config)
    node = ray.get_runtime_context().get_node_id()[:8]
    line.started(f"ray: {device}, pid {os.getpid()} on node {node}")
    last, stop = [0.0], [False]

    def should_stop() -> bool:
        if not stop[0] and time.monotonic() - last[0] >= POLL_S:
            stop[0], last[0] = line.should_stop(), time.monotonic()
        return stop[0]

    # each report is delivered before training goes on: the driver sees every epoch before it
    # sees the task finish
    result = experiment.run(config, data=split.data, split=split, should_stop=should_stop,
                            on_epoch=lambda report: line.put(report.to_dict()))
    if should_stop():
        raise Cancelled("cancel requested")
    with tempfile.TemporaryDirectory() as folder:
        artifacts.save(folder, result)
        files = {p.name: p.read_bytes() for p in Path(folder).iterdir() if p.is_file()}
    return _Trained(record.summarize(result, device), files)


def _cluster_words(address: str) -> str:
    """The cluster an address names, in words: "auto" is no place a person can look up, so it
    becomes what Ray resolves it to — RAY_ADDRESS when set, else the cluster running here."""
    if address != "auto":
        return f"the cluster at {address}"
    named = os.environ.get("RAY_ADDRESS", "").strip()
    return (f"the cluster at {named} (RAY_ADDRESS)" if named
            else "the Ray cluster running on this machine (address auto: RAY_ADDRESS is not set)")
