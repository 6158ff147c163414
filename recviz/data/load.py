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
    from recviz.data.formats.textfile import local_path, path_exists

    from recviz.data import saved

    path = local_path(str(ref))
    name, which = saved.split_ref(str(ref))
    is_saved = _usable_name(name) and saved.exists(name)
    exists = path_exists(path)
    if exists and is_saved:
        raise DataError(f"'{ref}' is both a path here and a saved dataset",
                        fix=f"write ./{ref} for the path, or save the dataset under another name "
                            f"(`recviz import ./{ref} --name ...`) and use that")
    if exists:
        return read_path(path, mapping=mapping, delimiter=delimiter, dedup=dedup)
    if is_saved:
        return saved.load(name, which)
    if str(ref).split(":", 1)[0] in {e.name for e in catalog.entries()}:
        return catalog.load_named(str(ref), progress=progress)
    if _relative_path(str(ref)):  # e.g. an older run's path as typed, read from another folder
        raise DataError(
            f"'{ref}' is a relative path, and from here ({Path.cwd()}) it names nothing; runs trained before "
            "dataset paths were stored absolute keep the path as it was typed, relative to the folder they "
            "were trained from, which was not recorded",
            fix="start recviz (or the app) from the folder the run was trained in, or train the run again: its "
                "dataset path is now stored absolute")
    raise DataError(
        f"'{ref}' is neither an existing file or directory, nor a saved dataset, nor a catalog name",
        fix="check the path, or run `recviz datasets` to see the names that work",
    )


def absolute_ref(ref: str) -> str:
    """A dataset reference as a run stores it: a path (one that exists here, and is not also a
    saved or catalog name) made absolute and resolved, so that it reads the same data from any
    folder and two spellings of one path are one dataset; anything else as given."""
    from recviz.data import catalog, saved
    from recviz.data.formats.textfile import local_path, path_exists

    ref = str(ref)
    name = saved.split_ref(ref)[0]
    if ref.split(":", 1)[0] in {e.name for e in catalog.entries()} or (_usable_name(name) and saved.exists(name)):
        return ref
    try:
        path = local_path(ref)
        return str(path.resolve()) if path_exists(path) else ref
    except (DataError, OSError, RuntimeError):
        return ref  # load() says what is wrong with it


def _relative_path(ref: str) -> bool:
    return ("/" in ref or "\\" in ref or ref.startswith(".")) and not Path(ref).expanduser().is_absolute()


def save_named(name: str, ref: str, *, min_user: int = 0, min_item: int = 0, sample_users: int = 0,
               replace: bool = False, titles: str | None = None, to: str = "npz", **read_options) -> Interactions:
    """Read `ref` (validating everything), optionally keep a seeded sample of `sample_users` users
    (`recviz.data.prepare.sample_users`) and k-core filter it, and store it as a named
    dataset (`recviz.data.saved`): a new name, or with `replace` a new version of an existing
    one — never an overwrite, so runs trained on an earlier version keep reading it (`to`: "npz"
    or "parquet", see `recviz.data.saved`). `titles`: a file of item titles and genres to keep
    beside it (`recviz.data.item_info`). Written only after all that succeeded, and atomically,
    so a bad upload never damages what was saved."""
    check_name(name)
    from recviz.data import saved


    if not replace:
        saved.refuse_existing(name)  # before reading what may be a large file
    data = load(ref, **read_options)
    if sample_users:
        from recviz.data.prepare import sample_users as sample

        data = sample(data, sample_users)
    if min_user > 1 or min_item > 1:
        from recviz.data.prepare import kcore

        data = kcore(data, min_user=max(1, min_user), min_item=max(1, min_item))
    data.name = name
    if titles is not None:
        from recviz.data import item_info

        table = item_info.read(titles)
        data = item_info.attach(data, table, file=str(titles))  # checked before anything is written
    version = saved.save(name, data, replace=replace, source=str(ref), to=to)
    if titles is not None:
        saved.keep_titles(name, table)
    data.meta = {**data.meta, "version": version["version"], "fingerprint": version["fingerprint"]}
    return data


def check_name(name: str) -> None:
    """A DataError unless `name` can be a saved dataset's name (and hides no catalog name)."""
    if not _usable_name(name):
        raise DataError(f"'{name}' is not a usable dataset name",
                        fix="use letters, digits, '-', '_' or '.', at most 100 bytes (100 ASCII letters; fewer others) "
                            "(e.g. my-ratings)")
    from recviz.data import catalog

    if name.split(":", 1)[0] in {e.name for e in catalog.entries()}:
        raise DataError(f"'{name}' is a catalog dataset's name; a saved dataset may not hide it",
                        fix=f"save it under another name, e.g. my-{name}")


def _usable_name(name: str) -> bool:
    from recviz.data.saved import usable_name

    return usable_name(name)


def saved_path(name: str) -> Path:
    """Where the newest version of a saved dataset lives."""
    from recviz.data import saved

    version = saved.find(name)
    return saved._file(name, version) if version else paths.uploads_dir() / name / "v1.npz"


def saved_names() -> list[str]:
    from recviz.data import saved

    return saved.names()


def identity(ref: str) -> str:
    """What `ref` names right now, cheaply and without loading it: a saved name's version
    fingerprint (read from its index), a file's size and modification time, a catalog name as is.
    A cache keyed by `(ref, identity(ref))` serves a new version of a dataset, saved under the
    same name by the CLI or another session, instead of the one it cached first."""
    from recviz.data import saved
    from recviz.data.formats.textfile import local_path, path_exists

    name, which = saved.split_ref(str(ref))
    if _usable_name(name):
        version = saved.find(name, which)
        if version is not None:
            return f"saved:{version['fingerprint']}"
    try:
        path = local_path(str(ref))
        found = path_exists(path)
    except DataError:  # not a path at all: loading it will say why
        found = False
    if found:
        p = Path(path)
        stats = [p.stat()] + ([f.stat() for f in sorted(p.iterdir()) if f.is_file()] if p.is_dir() else [])
        return "file:" + ",".join(f"{s.st_size}-{s.st_mtime_ns}" for s in stats)
    return f"ref:{ref}"
