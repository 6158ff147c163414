"""Resolve a dataset reference — a path, a saved upload's name or a catalog name — to Interactions."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from recviz import paths
from recviz.data.interactions import Interactions
from recviz.errors import DataError


def load(ref: str, *, mapping: dict | None = None, delimiter: str | None = None, dedup: str | None = None,
         progress: Callable[[int, int | None], None] | None = None) -> Interactions:
    """A path (file, directory or zip, any supported format), a saved name, or a catalog name
    (downloaded on first use, `progress(bytes_done, bytes_total)` as it arrives). A saved name can
    never be a catalog name (`save_named` refuses it); a reference that is both an existing path and
    a saved name is an error that says how to pick one, never a silent choice."""
    from recviz.data import catalog
    from recviz.data.formats.detect import read_path

    path = Path(str(ref)).expanduser()
    saved = saved_path(str(ref)) if _usable_name(str(ref)) else None
    if path.exists() and saved is not None and saved.exists():
        raise DataError(f"'{ref}' is both a path here and a saved dataset",
                        fix=f"write ./{ref} for the path, or save the dataset under another name "
                            f"(`recviz import ./{ref} --name ...`) and use that")
    if path.exists():
        return read_path(path, mapping=mapping, delimiter=delimiter, dedup=dedup)
    if saved is not None and saved.exists():
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
    if not _usable_name(name):
        raise DataError(f"'{name}' is not a usable dataset name",
                        fix="use letters, digits, '-', '_' or '.', at most 100 of them (e.g. my-ratings)")
    from recviz.data import catalog

    if name.split(":", 1)[0] in {e.name for e in catalog.entries()}:
        raise DataError(f"'{name}' is a catalog dataset's name; a saved dataset may not hide it",
                        fix=f"save it under another name, e.g. my-{name}")
    data = load(ref, **read_options)
    if min_user > 1 or min_item > 1:
        from recviz.data.prepare import kcore

        data = kcore(data, min_user=max(1, min_user), min_item=max(1, min_item))
    data.name = name
    data.save(saved_path(name))
    return data


def _usable_name(name: str) -> bool:
    return 0 < len(name) <= 100 and name.replace("-", "").replace("_", "").replace(".", "").isalnum() \
        and not name.startswith(".")


def saved_path(name: str) -> Path:
    return paths.uploads_dir() / f"{name}.npz"


def saved_names() -> list[str]:
    return sorted(p.stem for p in paths.uploads_dir().glob("*.npz"))
