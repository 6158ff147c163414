"""A stored run's per-user results, as the understanding views read them (`paired`, `exposure`,
`slices`): its eval.npz, its top-N lists restricted to the evaluated users, and — when a view
cannot be drawn — the reason in words. A run stored by an earlier version has no per-user results
these views can trust; it is "not available", never a number computed from something else."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recviz.errors import RecvizError
from recviz.experiments import artifacts


class NotAvailable(RecvizError):
    """A view a run cannot show (not finished, or stored without per-user results)."""


@dataclass
class RunResults:
    run_id: int
    label: str  # "#5 neumf" (or the run's name)
    protocol: str  # the split's own words: "leave-one-out, 100 candidates"
    split_key: tuple  # RunConfig.split_key: the settings its split is drawn from
    seed: int
    per_user: artifacts.PerUser | None
    metrics: dict = field(default_factory=dict)  # the run's test metrics (its summary)
    why_not: str | None = None  # why per_user is None
    _run_dir: object = field(default=None, repr=False)
    _top: np.ndarray | None = field(default=None, repr=False)
    _listed: int | None = field(default=None, repr=False)
    _stored: int | None = field(default=None, repr=False)

    @property
    def available(self) -> bool:
        return self.per_user is not None

    def need(self) -> artifacts.PerUser:
        """The per-user results, or NotAvailable saying why there are none."""
        if self.per_user is None:
            raise NotAvailable(self.why_not or f"run {self.label} has no per-user results")
        return self.per_user

    def top(self) -> np.ndarray:
        """The stored top-N of the evaluated users (rows in `per_user.users` order), padding as -1.

        A run that evaluated more users than it stored lists of (`topn.user_bound`; `stored()` says
        how many it stored) stored a seeded draw of them: the others' rows are all -1 (no list), so the views read that draw — making
        their lists here would cost evaluated users × items."""
        if self._top is None:
            from recviz.experiments.topn import row_of

            stored = artifacts.load_topn(self._run_dir)
            row = row_of(stored, self.need().users)
            here = row >= 0
            top = np.full((len(row), stored["items"].shape[1]), -1, np.int64)
            top[here] = np.where(np.isfinite(stored["scores"][row[here]]), stored["items"][row[here]], -1)
            self._top, self._listed, self._stored = top, int(here.sum()), len(stored["users"])
        return self._top

    def listed(self) -> int:
        """How many evaluated users have a stored list: the users the beyond-accuracy views are over
        (fewer than `per_user.users` when the run evaluated more users than it stored lists of)."""
        self.top()
        return self._listed

    def stored(self) -> int:
        """How many users' top-N lists the run stored (evaluated or not), read from its topn.npz."""
        self.top()
        return self._stored

    def user_ids(self) -> np.ndarray:
        """Raw user ids (as in the data file), indexed by internal id."""
        return artifacts.load_ids(self._run_dir)["user_ids"]

    @property
    def n_items(self) -> int:
        return len(self.need().item_popularity)


def metric_names(runs: list[RunResults]) -> list[str]:
    """The per-user metrics every available run of `runs` has ("HR@5", "HR@10", ... by metric then
    K); the primary metric alone when none is available."""
    from recviz.eval.metrics import PRIMARY

    ready = [set(r.per_user.metrics) for r in runs if r.available]
    shared = set.intersection(*ready) if ready else {PRIMARY}
    return sorted(shared, key=lambda m: (m.split("@")[0], int(m.split("@")[1])))


def label(run) -> str:
    return f"#{run.id} {run.name or run.model}"


def load(store, run_id: int) -> RunResults:
    """Run `run_id` of `store` with its per-user results, or with the reason it has none."""
    run = store.get(int(run_id))
    if run.status == "unreadable":  # its config is a stand-in with no protocol or split to compare on
        return RunResults(run.id, label(run), str(run.protocol), None, run.seed, None, {},
                          why_not=f"run {label(run)} is {run.error}", _run_dir=store.run_dir(run.id))
    summary = run.summary or {}
    from recviz.data.split import protocol_label

    c = run.config
    protocol = summary.get("protocol_detail") or protocol_label(run.protocol, c.candidates if run.protocol == "loo"
                                                                else None, c.valid)
    out = RunResults(run.id, label(run), protocol, c.split_key, run.seed, None, dict(summary.get("metrics") or {}),
                     _run_dir=store.run_dir(run.id))
    if run.status != "done":
        out.why_not = f"run {out.label} is {run.status}: only finished runs have per-user results"
        return out
    out.per_user = artifacts.load_per_user(store.run_dir(run.id))
    if out.per_user is None:
        out.why_not = (f"run {out.label} was stored by an earlier version of RecViz, without per-user results: "
                       "not available (train it again with its settings to see them)")
    return out
