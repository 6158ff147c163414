"""Where runs train: the executors, one interface (`base.Executor`: train new runs or queued ones,
stream their epochs into the store, pass on a cancel, record each outcome), looked up by name.

Adding one (a process pool, Slurm, a GPU box) is a module beside these with a subclass of
`Executor`, and its line in `registry.REGISTRY`: the CLI's --executor, `recviz executor`, the Train page's
choice and the app's worker take it from there.

The app's remembered choice and the sidebar's line: `choice`. The Ray cluster behind `ray`:
`ray_cluster` (its `probe` and `ADDRESS_HELP` are named here too, for the Train page and `recviz
executor`).
"""

from recviz.experiments.executors.base import Executor
from recviz.experiments.executors.choice import choose, chosen, where_runs_train
from recviz.experiments.executors.ray_cluster import ADDRESS_HELP, INSTALL, probe
from recviz.experiments.executors.registry import EXECUTOR_HELP, EXECUTORS, REGISTRY, get

__all__ = ["ADDRESS_HELP", "EXECUTORS", "EXECUTOR_HELP", "INSTALL", "REGISTRY", "Executor", "choose", "chosen",
           "get", "probe", "where_runs_train"]
