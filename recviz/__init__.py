"""RecViz: train and understand neural collaborative-filtering recommenders.

The library knows nothing of Streamlit: the app's pages and the `recviz` command both call it.

From Python (see `recviz.api`)::

    import recviz
    data = recviz.load(df)                 # a DataFrame, "ml-100k", a saved name or a path
    run = recviz.train(data, model="gmf", epochs=2)
    run.history, run.metrics, run.recommend("42"), run.save()
    recviz.runs(), recviz.open_run(run.id)
    recviz.compare(a_id, b_id).verdict, recviz.report(run.id)

Importing `recviz` stays light (no pandas, torch or streamlit): the API's names are looked up on
first use (PEP 562 `__getattr__`). They are plain functions: the internal packages have names of
their own (`recviz.training`, `recviz.experiments`), so no module doubles as a function.
"""

from recviz.version import __version__  # noqa: F401  (public: recviz.__version__)

__all__ = ["load", "train", "runs", "open_run", "compare", "report", "Run"]


def __getattr__(name: str):
    if name in __all__:
        from recviz import api

        return getattr(api, name)
    raise AttributeError(f"module 'recviz' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
