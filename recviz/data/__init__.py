"""Data layer: readers for real formats, the Interactions table, preparation, splits, sampling."""

from recviz.data.interactions import GivenTest, Interactions

__all__ = ["GivenTest", "Interactions"]
