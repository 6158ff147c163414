"""Arrays on disk without pickle, written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recviz.files import write_atomic


def save_atomic(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write a compressed .npz next to `path`, then rename it into place: a crash never leaves a
    half-written file, and two processes writing the same file (two workers drawing the same
    split) never interleave, since each writes its own temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, lambda fh: np.savez_compressed(fh, **arrays))
