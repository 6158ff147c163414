"""Experiments: running runs (one experiment, the executors, the worker, sweeps, the bench), storing
them (the SQLite store, artifacts) and reporting them (rows, epoch lines, MLflow)."""
