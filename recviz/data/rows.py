"""Where a row is and what it holds, said the same way by every message about a file."""

from __future__ import annotations

import numpy as np


def first(mask: np.ndarray) -> int:
    """The position of the first true value."""
    return int(np.flatnonzero(mask)[0])


def line(line_of, k: int) -> int:
    """The file line of row `k` (`line_of`: an array, or anything indexable by row)."""
    return int(line_of[k])


def show(v) -> str:
    """A value quoted for a message, cut at 40 characters."""
    s = str(v)
    return repr(s[:40] + ("…" if len(s) > 40 else ""))
