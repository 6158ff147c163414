"""Runs: the experiment runner, the store (SQLite), recording, the worker, sweeps, the bench and
MLflow tracking. Called, the package lists the stored runs: `recviz.runs()` is `recviz.api.runs`
(see `recviz/__init__.py` for why a package is callable)."""

from recviz import _call_through

_call_through(__name__, "runs")
