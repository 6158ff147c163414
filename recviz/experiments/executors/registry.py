"""The executors by name: the CLI's --executor, `recviz executor`, the Train page's choice and the
app's worker look an executor up here. Adding one is a module beside these and its line below."""

from __future__ import annotations

from recviz.errors import RecvizError
from recviz.experiments.executors.base import Executor
from recviz.experiments.executors.local import LocalExecutor
from recviz.experiments.executors.ray import RayExecutor

REGISTRY: dict[str, type[Executor]] = {  # name → executor; the first is the default
    "local": LocalExecutor,
    "ray": RayExecutor,
}
EXECUTORS = tuple(REGISTRY)  # the names, for the Train page's choice and `recviz executor`
EXECUTOR_HELP = {name: cls.help for name, cls in REGISTRY.items()}


def get(name: str) -> type[Executor]:
    """The executor registered as `name`; a RecvizError naming the others when there is none."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise RecvizError(f"no executor {name!r}", fix=f"choose one of {', '.join(REGISTRY)}") from None
