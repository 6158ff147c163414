"""Datasets saved under a name, as immutable versions.

Saving under a name that exists never overwrites: it adds a version (and only with `replace=True`,
which the CLI spells `--replace` and the app asks to confirm). Every run records the version it was
trained on (`RunConfig.data_version`, a content fingerprint), and keeps reading that version, so an
old run's items, titles and histories stay what they were. Layout under `paths.uploads_dir()`:

    <name>/v1.npz, v2.npz, …      one file per version, written once (atomically); `vN.parquet`
                                  (+ `vN.items.parquet`) for a version saved column-wise
                                  (`recviz import --to parquet`, `recviz.data.columnar`)
    <name>/versions.json          [{"version", "fingerprint", "saved_at", "users", "items", "interactions"}]
    <name>/items.csv              item titles and genres by raw id, for every version (`item_info`)
    <name>.npz                    a dataset saved before versions existed: read as its version 1

A reference is `name` (the newest version), `name@v2` or `name@<fingerprint>`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from pathlib import Path

from recviz import paths
from recviz.data import item_info
from recviz.data.interactions import Interactions
from recviz.errors import DataError
from recviz.files import read_json, write_json

INDEX = "versions.json"
_ID_BLOCK = 1 << 16
FORMATS = ("npz", "parquet")


def fingerprint(data: Interactions) -> str:
    """What makes two saved versions the same data: every array and the raw ids."""
    h = hashlib.sha1(data.fingerprint().encode())
    for ids in (data.user_ids, data.item_ids):
        for s in range(0, len(ids), _ID_BLOCK):  # the ids joined by \x1f, hashed a block at a time
            h.update((("\x1f" if s else "") + "\x1f".join(map(str, ids[s:s + _ID_BLOCK]))).encode())
    return h.hexdigest()[:16]


def names() -> list[str]:
    root = paths.uploads_dir()
    found = {p.parent.name for p in root.glob(f"*/{INDEX}")} | {p.stem for p in root.glob("*.npz")}
    return sorted(found)


def usable_name(name: str) -> bool:
    """A name a dataset may be saved under: letters, digits, '-', '_', '.', not starting with '.',
    at most 100 bytes (it names a folder: no path separators, nothing a file system refuses)."""
    return 0 < len(name.encode()) <= 100 and name.replace("-", "").replace("_", "").replace(".", "").isalnum() \
        and not name.startswith(".")


def versions(name: str) -> list[dict]:
    """The versions saved under `name`, oldest first ([] when there are none, or when `name` could
    not be a saved name: text typed into a form is looked up here before it is checked)."""
    if not usable_name(name):
        return []
    index = paths.uploads_dir() / name / INDEX
    if index.exists():
        return _read_index(index, name)
    legacy = paths.uploads_dir() / f"{name}.npz"
    if legacy.exists():
        data = Interactions.load(legacy)
        return [{"version": 1, "fingerprint": fingerprint(data), "saved_at": legacy.stat().st_mtime,
                 **_counts(data), "file": legacy.name}]
    return []


def exists(name: str) -> bool:
    return bool(versions(name))


def split_ref(ref: str) -> tuple[str, str | None]:
    """"name@v2" → ("name", "v2"); "name" → ("name", None)."""
    name, _, which = str(ref).partition("@")
    return name, (which or None)


def find(name: str, which: str | None = None) -> dict | None:
    """The version `which` ("v2", a fingerprint, or None for the newest) of `name`, or None."""
    all_ = versions(name)
    if not all_:
        return None
    if which is None:
        return all_[-1]
    for v in all_:
        if which in (f"v{v['version']}", str(v["version"]), v["fingerprint"]):
            return v
    return None


def load(name: str, which: str | None = None) -> Interactions:
    version = find(name, which)
    if version is None:
        if which is not None and exists(name):
            raise DataError(f"'{name}' has no version {which!r} (it has "
                            f"{', '.join('v%d' % v['version'] for v in versions(name))}); it was deleted",
                            fix="the run that used it cannot be shown as it was; train it again on a version that exists")
        raise DataError(f"no dataset is saved as '{name}'", fix="run `recviz datasets` to see the saved names")
    path = _file(name, version)
    import zipfile

    if not path.is_file():  # deleted, or a folder, pipe or device in its place (a pipe would block)
        what = "missing" if not path.exists() else "not a regular file"
        raise DataError(f"the file of '{name}' v{version['version']} is {what}", file=str(path),
                        fix="restore the file from a backup, or save the data again as a new version")
    try:
        if path.suffix == ".parquet":
            from recviz.data import columnar

            data = columnar.load(path)
        else:
            data = Interactions.load(path)
    except OSError as exc:  # e.g. no permission to read it
        raise DataError(f"the file of '{name}' v{version['version']} cannot be read ({exc.strerror or exc})",
                        file=str(path), fix="check that you may read it, or restore it from a backup") from None
    except (ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"the file of '{name}' v{version['version']} is damaged or too large to read "
                        f"({str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__})", file=str(path),
                        fix="restore the file from a backup, or save the data again as a new version") from None
    if fingerprint(data) != version["fingerprint"]:  # a file swapped or changed since it was saved
        raise DataError(f"this file does not hold the data saved as '{name}' v{version['version']} (its "
                        f"fingerprint is {fingerprint(data)}, the version's {version['fingerprint']}); a run "
                        "trained on that version would be shown other data", file=str(path),
                        fix="restore the file from a backup, or save the data again as a new version")
    data.meta = {**data.meta, "version": version["version"], "fingerprint": version["fingerprint"]}
    titles = item_info.load(paths.uploads_dir() / name)
    if titles is not None:
        try:
            data = item_info.attach(data, titles)
        except DataError:
            pass  # titles added for other versions name none of this one's items: keep its own
    return data


def add_titles(name: str, path: str) -> dict:
    """Give the saved dataset `name` item titles and genres from the file `path` (every version:
    titles are matched by raw item id). Returns how many of the newest version's items got one."""
    newest = load(name)
    table = item_info.read(path)
    data = item_info.attach(newest, table, file=str(path))
    keep_titles(name, table)
    return data.meta["titles"]


def titles(name: str):
    """The item titles kept for the saved dataset `name` (by raw id), or None (also for names that
    are not saved datasets)."""
    # home()/"uploads", not uploads_dir(): only reading, so nothing is created (a read-only data dir)
    return item_info.load(paths.home() / "uploads" / name) if name and "/" not in name else None


def keep_titles(name: str, table) -> None:
    item_info.save(paths.uploads_dir() / name, table)


def save(name: str, data: Interactions, *, replace: bool = False, source: str = "", to: str = "npz") -> dict:
    """Store `data` as the newest version of `name`; returns that version. Refused when `name`
    exists and `replace` is false; the same content as the newest version adds nothing. `to`:
    "npz" (default) or "parquet" (column-wise, compressed: for large logs)."""
    if to not in FORMATS:
        raise DataError(f"cannot store a dataset as {to!r}", fix=f"use one of: {', '.join(FORMATS)}")
    fp = fingerprint(data)
    folder = paths.uploads_dir() / name
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder):  # two saves of one name at once: each gets its own version
        return _add_version(name, folder, data, fp, replace=replace, source=source, to=to)


@contextlib.contextmanager
def _locked(folder: Path):
    """Hold the dataset's lock (an exclusive flock on `.lock` in its folder; the kernel drops it
    when the process dies, so a killed save never blocks the next)."""
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _add_version(name: str, folder: Path, data: Interactions, fp: str, *, replace: bool, source: str,
                 to: str) -> dict:
    """`save` under the dataset's lock: read the versions, write the next one, then the index."""
    existing = versions(name)
    if existing and existing[-1]["fingerprint"] == fp:
        return existing[-1]
    if not replace:
        refuse_existing(name)
    if existing and "file" in existing[0] and not (folder / "v1.npz").exists():  # the pre-version file
        (paths.uploads_dir() / existing[0]["file"]).replace(folder / "v1.npz")
        existing[0].pop("file")
    number = (existing[-1]["version"] + 1) if existing else 1
    if to == "parquet":
        from recviz.data import columnar

        columnar.save(data, folder / f"v{number}.parquet", fingerprint)
    else:
        data.save(folder / f"v{number}.npz")
    version = {"version": number, "fingerprint": fp, "saved_at": time.time(), "source": source, "format": to,
               **_counts(data)}
    _write_index(folder, [*existing, version])
    return version


def refuse_existing(name: str) -> None:
    """DataError when `name` is taken: replacing needs saying so."""
    existing = versions(name)
    if existing:
        last = existing[-1]
        raise DataError(f"a dataset is already saved as '{name}' (v{last['version']}, "
                        f"{last['interactions']:,} interactions)",
                        fix=f"save it under another name, or replace it: that adds v{last['version'] + 1} "
                            f"(`--replace`), and runs trained on earlier versions keep reading theirs")


def _read_index(index: Path, name: str) -> list[dict]:
    """versions.json, every entry checked before any is used: it decides which files are read, so
    a damaged or hand-edited one is one message naming it, never a read elsewhere."""
    fix = f"restore {index} from a backup, or save the dataset again under another name"
    try:
        entries = read_json(index)
    except (OSError, ValueError) as err:
        raise DataError(f"the saved dataset's index cannot be read ({err})", file=str(index), fix=fix) from None
    if not isinstance(entries, list) or not entries:
        raise DataError("the saved dataset's index holds no list of versions", file=str(index), fix=fix)
    for k, entry in enumerate(entries):
        problem = _entry_problem(entry, name)
        if problem:
            raise DataError(f"entry {k + 1} of the saved dataset's index {problem}", file=str(index), fix=fix)
    return entries


def _entry_problem(entry, name: str) -> str | None:
    if not isinstance(entry, dict):
        return "is not an object"
    version = entry.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return f"has no version number (found {version!r})"
    if not isinstance(entry.get("fingerprint"), str):
        return "has no fingerprint"
    if entry.get("format", "npz") not in FORMATS:
        return f"names an unknown format {entry.get('format')!r}"
    if "file" in entry and entry["file"] != f"{name}.npz":  # only a dataset saved before versions has one
        return f"names a file {entry['file']!r} other than {name}.npz"
    return None


def _file(name: str, version: dict) -> Path:
    """The file a version's arrays are in; always inside the uploads directory (checked once
    resolved, so a link cannot lead a read elsewhere either)."""
    root = paths.uploads_dir()
    path = root / version["file"] if "file" in version else root / name / f"v{version['version']}.{version.get('format', 'npz')}"
    if not path.resolve().is_relative_to(root.resolve()):
        raise DataError(f"version {version['version']} of '{name}' points outside the data directory "
                        f"({path.resolve()})", file=str(root / name / INDEX),
                        fix="restore the dataset's folder from a backup, or save the dataset again")
    return path


def _counts(data: Interactions) -> dict:
    return {"users": int(data.n_users), "items": int(data.n_items), "interactions": int(len(data))}


def _write_index(folder: Path, entries: list[dict]) -> None:
    write_json(folder / INDEX, entries, indent=1)
