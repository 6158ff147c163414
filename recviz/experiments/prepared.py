"""A run's data as its config describes it: the dataset loaded, then its preparation steps. Apart
from `experiment` (which imports torch) so that a command that only checks and queues runs — a
sweep's driver, the app's pages — reads data without importing torch."""

from __future__ import annotations

from recviz.config import RunConfig
from recviz.data.interactions import Interactions


def prepare_data(config: RunConfig, progress=None) -> Interactions:
    """Load the dataset and apply the config's preparation steps (threshold, user sample, k-core)."""
    from recviz.data.load import load

    return prepare(load(config.data_ref, progress=progress), config)


def prepare(data: Interactions, config: RunConfig) -> Interactions:
    """The config's preparation steps applied to data already loaded (a notebook's DataFrame)."""
    from recviz.data import prepare as steps

    if config.min_rating is not None:
        data = steps.threshold(data, config.min_rating)
    if config.sample_users:  # k-core applies on top of the sample
        data = steps.sample_users(data, config.sample_users)
    if config.min_user > 1 or config.min_item > 1:
        data = steps.kcore(data, min_user=max(1, config.min_user), min_item=max(1, config.min_item))
    return data
