"""The mailbox between the `ray` executor's driver and its tasks, and both its ends.

One small actor per driver (`Mailbox`, placed on the driver's node) holds, per run, the epoch
reports and where the task started, and the stop requests going the other way. The driver empties
it every `POLL_S` through `Mail`, one question at a time; a task talks to it through `Line`, from a
helper thread (Ray lends a task's CPUs to other tasks while its main thread blocks in `ray.get`).
The executor itself: `recviz.experiments.executors.ray`.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from recviz.training.report import EpochReport

if TYPE_CHECKING:
    from recviz.experiments.store import RunStore

POLL_S = 0.5  # how often the driver collects epoch reports, heartbeats and cancel requests
LOST_AFTER_S = 10.0  # a task Ray cannot reach for this long fails its run: its node or the cluster is gone


@dataclass(eq=False)
class Out:
    """A run the driver sent out as a Ray task: what it knows of it while the task is out (and
    after, while late news may still land)."""

    id: int
    ref: object  # the task's ObjectRef
    where: str | None = None  # where the task trains, once it says so (None: waiting for a slot)
    stop_asked: float | None = None  # when (monotonic) a cancel asked in the store was passed on
    before_start: bool = False  # cancelled by Ray before its task started: nothing to explain


@dataclass
class News:
    """What a task sent its driver since the driver last looked (the mailbox keeps one per run)."""

    epochs: list[dict] = field(default_factory=list)
    where: str | None = None  # where it trains, once it has started
    started_at: float | None = None  # when it started (epoch seconds)


class Mailbox:
    """Between a driver and its tasks: per run, epochs and where it started out; stop requests in.
    A plain class: `ray.remote(num_cpus=0)(Mailbox)` makes it the actor once Ray is imported."""

    def __init__(self):
        self.news: dict[int, News] = {}
        self.stops: set[int] = set()

    def _of(self, run_id: int) -> News:
        return self.news.setdefault(run_id, News())

    def started(self, run_id: int, where: str, at: float) -> None:
        news = self._of(run_id)
        news.where, news.started_at = where, at

    def put(self, run_id: int, report: dict) -> None:
        self._of(run_id).epochs.append(report)

    def take(self) -> dict[int, News]:
        news, self.news = self.news, {}
        return news

    def request_stop(self, run_id: int) -> None:
        self.stops.add(run_id)

    def should_stop(self, run_id: int) -> bool:
        return run_id in self.stops


class Mail:
    """The driver's side of its mailbox: one question at a time ("what is new?"), never asked
    again before it is answered, so no report is lost; what a run sent is stored even when the
    answer comes after its task ended. A slow answer is not an outage (the mailbox may wait
    minutes for a worker process on a busy cluster); Ray failing the call (the cluster is gone)
    is, from then until an answer comes."""

    def __init__(self, ray, mailbox_class):
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.ray, self.asked, self.unreachable, self._since = ray, None, None, None
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
        self.box = mailbox_class.options(scheduling_strategy=here).remote()

    def collect(self, store: RunStore, sent: dict[int, Out], on_epoch, wait: float = POLL_S) -> None:
        """Store what the tasks sent since the last look, if the answer is back within `wait`
        (`sent`: the driver's runs by id)."""
        ray = self.ray
        try:
            if self.asked is None:
                self.asked = self.box.take.remote()
            if not ray.wait([self.asked], timeout=wait)[0]:
                return
            asked, self.asked = self.asked, None
            news = ray.get(asked)
        except ray.exceptions.RayError as exc:
            self.asked = None
            self.unreachable, self._since = exc, self._since or time.monotonic()
            return
        self._since = None
        for run_id, got in news.items():
            if run_id in sent:
                _store_reports(store, sent[run_id], got, on_epoch)

    def collect_last(self, store: RunStore, sent: dict[int, Out], on_epoch) -> None:
        """Some tasks have ended: everything they sent is in the mailbox (each report was delivered
        before training went on), but an answer to a question asked before they ended may miss
        the last of it, so the question is asked once more after that answer."""
        for _ in range(2):
            self.collect(store, sent, on_epoch, wait=LOST_AFTER_S)
            if self.asked is not None or self._since is not None:
                return  # no answer: the tasks' outcomes say what became of them

    def lost_for(self) -> float:
        """Seconds since Ray last failed to reach the mailbox without an answer since (0: reached)."""
        return 0.0 if self._since is None else time.monotonic() - self._since

    def ask_to_stop(self, run_id: int) -> None:
        quietly(self.box.request_stop.remote, run_id)


def _store_reports(store: RunStore, run: Out, got: News, on_epoch) -> None:
    """Store the epoch reports a task sent since the last look, and where and when it started
    (a run that waited for a slot on the cluster starts then, not when it was queued)."""
    if got.where and got.where != run.where:
        run.where = got.where
        store.mark_running(run.id, os.getpid(), got.where, started_at=got.started_at)
    store.add_epochs(run.id, got.epochs)  # one commit: a driver of many runs keeps up
    for report in got.epochs if on_epoch is not None else ():
        on_epoch(run.id, EpochReport.from_dict(report))


def quietly(call, *args, **kwargs) -> None:
    """A request to Ray whose failure changes nothing here (the cluster may be gone: `_lost` and
    `_finish` say what became of the run)."""
    try:
        call(*args, **kwargs)
    except Exception:  # noqa: BLE001
        pass


class Line:
    """A task's line to its driver's mailbox. Every call waits on a helper thread, not the task's
    main thread: Ray lends a task's CPUs to other tasks while its main thread blocks in `ray.get`
    or `ray.wait` (so that nested tasks cannot deadlock), and on 2 CPUs a sweep of 1-thread runs
    then trained 4 and more at once."""

    def __init__(self, ray, mailbox, run_id: int):
        self._ray, self._box, self._id = ray, mailbox, run_id
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recviz-mailbox")

    def _call(self, method: str, *args):
        def ask():
            return self._ray.get(getattr(self._box, method).remote(self._id, *args))

        return self._thread.submit(ask).result()

    def started(self, where: str) -> None:
        self._call("started", where, time.time())

    def put(self, report: dict) -> None:
        self._call("put", report)

    def should_stop(self) -> bool:
        return self._call("should_stop")

    def close(self) -> None:
        self._thread.shutdown(wait=False)
