"""Where runs train: the executors, one interface (`base.Executor`: train new runs or queued ones,
stream their epochs into the store, pass on a cancel, record each outcome), looked up by name.

Adding one (Slurm, a GPU box) is a module beside these with a subclass of `Executor`, and its
line in `REGISTRY`: the CLI's --executor and the app's worker take it from there (the Train page's
choice: see `EXECUTORS`).

The app's remembered choice and the sidebar's line: `choice`. The Ray cluster behind `ray`:
`ray_cluster` (its `probe` and `ADDRESS_HELP` are named here too, for the Train page and `recviz
executor`).
"""

from __future__ import annotations

from recviz.errors import RecvizError
from recviz.experiments.executors.base import Executor
from recviz.experiments.executors.local import LocalExecutor
from recviz.experiments.executors.pool import PoolExecutor
from recviz.experiments.executors.ray import RayExecutor

REGISTRY: dict[str, type[Executor]] = {  # name → executor; the first is the default
    "local": LocalExecutor,
    "ray": RayExecutor,
    "pool": PoolExecutor,
}
# What the app's queue may be given (the Train page's "Where runs train", `recviz executor`): the Train
# page still labels these itself (pages/common.py), so another executor joins them once it reads
# `Executor.label`; until then it serves `recviz train/sweep --executor`.
EXECUTORS = ("local", "ray")
EXECUTOR_HELP = {name: REGISTRY[name].help for name in EXECUTORS}


def get(name: str) -> type[Executor]:
    """The executor registered as `name`; a RecvizError naming the others when there is none."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise RecvizError(f"no executor {name!r}", fix=f"choose one of {', '.join(REGISTRY)}") from None


from recviz.experiments.executors.choice import choose, chosen, where_runs_train
from recviz.experiments.executors.ray_cluster import ADDRESS_HELP, INSTALL, probe

__all__ = ["ADDRESS_HELP", "EXECUTORS", "EXECUTOR_HELP", "INSTALL", "REGISTRY", "Executor", "choose", "chosen",
           "get", "probe", "where_runs_train"]
