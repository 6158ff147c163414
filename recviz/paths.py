"""Where RecViz keeps things: one data directory (datasets cache, uploads, splits, runs).

Default `~/.recviz`; the environment variable `RECVIZ_HOME` overrides it (tests point it at a
temporary directory so they never touch a real user's store).
"""

from __future__ import annotations

import os
from pathlib import Path


DEFAULT_HOME = "~/.recviz"  # the data directory when RECVIZ_HOME is not set


def root() -> Path:
    """The data directory, without creating it (for messages, and for readers that only read)."""
    return Path(os.environ.get("RECVIZ_HOME") or DEFAULT_HOME).expanduser()


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


MAX_NAME_BYTES = 200  # a file name RecViz writes: under the 255 bytes of common file systems, with room


def safe_file_name(name: str, fallback: str = "upload") -> str:
    """A name as given (a browser upload's, any length, any characters) made safe to write under
    RecViz's folders: no folders in it, and at most `MAX_NAME_BYTES`. A long name keeps its
    extensions (`u.data`, `ratings.dat`, `.zip` and `.csv` decide how a file is read) and loses
    the middle of its stem."""
    name = Path(str(name).replace("\\", "/")).name or fallback
    if name in (".", ".."):
        name = fallback
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    stem, dot, ext = name.partition(".")
    ext = (dot + ext).encode()[-40:].decode(errors="ignore")
    room = MAX_NAME_BYTES - len(ext.encode())
    return stem.encode()[:room].decode(errors="ignore") + ext
