"""RecViz: train and understand neural collaborative-filtering recommenders.

The library knows nothing of Streamlit: the app's pages and the `recviz` command both call it.

From Python (see `recviz.api`)::

    import recviz
    data = recviz.load(df)                 # a DataFrame, "ml-100k", a saved name or a path
    run = recviz.train(data, model="gmf", epochs=2)
    run.history, run.metrics, run.recommend("42"), run.save()
    recviz.runs(), recviz.open_run(run.id)

Importing `recviz` stays light (no pandas, torch or streamlit): the API's names are looked up on
first use (PEP 562 `__getattr__`). Two of those names are also subpackages — `recviz.train` (the
training loop) and `recviz.runs` (the run store) — and once a submodule of one is imported, Python
binds the package to that name here, replacing any function of ours. So those two packages are
themselves callable (`_call_through`): `recviz.train(...)` and `recviz.train.loop` both work.
"""

__version__ = "0.1.0"
__all__ = ["load", "train", "runs", "open_run", "Run"]


_PACKAGES = ("train", "runs")  # API names that are also subpackages (callable, see above)


def __getattr__(name: str):
    if name in _PACKAGES:
        import importlib

        return importlib.import_module(f"recviz.{name}")
    if name in __all__:
        from recviz import api

        return getattr(api, name)
    raise AttributeError(f"module 'recviz' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


def _call_through(package: str, function: str) -> None:
    """Make the package `package` callable as `recviz.api.<function>`; `inspect.signature` and
    `help(recviz.<name>.__wrapped__)` find the function through `__wrapped__`."""
    import sys
    import types

    class CallablePackage(types.ModuleType):
        def __call__(self, *args, **kwargs):
            from recviz import api

            return getattr(api, function)(*args, **kwargs)

        @property
        def __wrapped__(self):
            from recviz import api

            return getattr(api, function)

    sys.modules[package].__class__ = CallablePackage
