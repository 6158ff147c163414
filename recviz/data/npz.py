"""Arrays on disk without pickle, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def save_atomic(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write a compressed .npz next to `path`, then rename it into place: a crash never leaves a
    half-written file, and two processes writing the same file (two workers drawing the same
    split) never interleave, since each writes its own temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
