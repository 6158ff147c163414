"""Resolve a dataset reference — a path, a saved upload's name or a catalog name — to Interactions."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from recviz import paths
from recviz.data.interactions import Interactions
from recviz.errors import DataError


def load(ref: str, *, mapping: dict | None = None, delimiter: str | None = None, dedup: str | None = None,
         progress: Callable[[int, int | None], None] | None = None) -> Interactions:
    """A path (file, directory or zip, any supported format) wins over a saved name, which wins over
    a catalog name (downloaded on first use, `progress(bytes_done, bytes_total)` as it arrives)."""
    from recviz.data import catalog
    from recviz.data.formats.detect import read_path

    path = Path(str(ref)).expanduser()
    if path.exists():
        return read_path(path, mapping=mapping, delimiter=delimiter, dedup=dedup)
    saved = saved_path(str(ref))
    if saved.exists():
        return Interactions.load(saved)
    if str(ref).split(":", 1)[0] in {e.name for e in catalog.entries()}:
        return catalog.load_named(str(ref), progress=progress)
    raise DataError(
        f"'{ref}' is neither an existing file or directory, nor a saved dataset, nor a catalog name",
        fix="check the path, or run `recviz datasets` to see the names that work",
    )


def save_named(name: str, ref: str, *, min_user: int = 0, min_item: int = 0, **read_options) -> Interactions:
    """Read `ref` (validating everything), optionally k-core filter it, and store it as a named
    dataset. The file is written only after all that succeeded, and atomically, so a bad upload
    never damages what was saved under that name before."""
    if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise DataError(f"'{name}' is not a usable dataset name",
                        fix="use letters, digits, '-', '_' or '.' (e.g. my-ratings)")
    data = load(ref, **read_options)
    if min_user > 1 or min_item > 1:
        from recviz.data.prepare import kcore

        data = kcore(data, min_user=max(1, min_user), min_item=max(1, min_item))
    data.name = name
    data.save(saved_path(name))
    return data


def saved_path(name: str) -> Path:
    return paths.uploads_dir() / f"{name}.npz"


def saved_names() -> list[str]:
    return sorted(p.stem for p in paths.uploads_dir().glob("*.npz"))
