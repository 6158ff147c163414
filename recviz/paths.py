"""Where RecViz keeps things: one data directory (datasets cache, uploads, splits, runs).

Default `~/.recviz`; the environment variable `RECVIZ_HOME` overrides it (tests point it at a
temporary directory so they never touch a real user's store).
"""

from __future__ import annotations

import os
from pathlib import Path


def root() -> Path:
    """The data directory, without creating it (for messages, and for readers that only read)."""
    return Path(os.environ.get("RECVIZ_HOME") or Path.home() / ".recviz").expanduser()


def home() -> Path:
    """The data directory, created if missing."""
    path = root()
    path.mkdir(parents=True, exist_ok=True)
    return path


def datasets_dir() -> Path:
    """Downloaded catalog files, one sub-directory per dataset name."""
    return _sub("datasets")


def uploads_dir() -> Path:
    """Datasets a user uploaded or imported and saved under a name (as `.npz`)."""
    return _sub("uploads")


def splits_dir() -> Path:
    """Stored splits with their evaluation candidates, keyed by data fingerprint + protocol + seed."""
    return _sub("splits")


def _sub(name: str) -> Path:
    p = home() / name
    p.mkdir(parents=True, exist_ok=True)
    return p
