"""Recognise a file, a directory or a zip by what it holds, and read it with the right reader.

| found                                              | format              |
| -------------------------------------------------- | ------------------- |
| `u.data` (+ `u.item` beside it)                     | MovieLens-100K      |
| `ratings.dat` (+ `movies.dat`)                      | MovieLens-1M / 10M  |
| `ratings.csv` (+ `movies.csv`)                      | MovieLens latest    |
| `NAME.train.rating` + `.test.rating` + `.test.negative` | NCF paper files |
| `NAME.inter` (+ `NAME.item`)                        | RecBole atomic files |
| `UserBehavior.csv`, or 5 headerless columns with pv/cart/fav/buy 4th | Taobao |
| any other single .csv / .tsv / .txt / .dat file      | generic table       |
| a `.parquet` file, or a folder of them only           | Parquet table (`frame`) |

Zip members are streamed (`recviz.data.formats.archive`), never extracted beside the user's file.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from recviz.data.formats import frame, movielens, ncf, recbole, table, taobao
from recviz.data.interactions import Interactions
from recviz.data.formats.textfile import Source, check_file, head_text, local_path, missing_path_error, path_exists
from recviz.errors import DataError

SUPPORTED = ("MovieLens-100K (u.data + u.item), MovieLens-1M (ratings.dat + movies.dat), MovieLens "
             "latest (ratings.csv + movies.csv), RecBole atomic files (NAME.inter + NAME.item), the NCF "
             "paper's files (NAME.train.rating + NAME.test.rating + NAME.test.negative), Taobao "
             "UserBehavior.csv, a single .csv/.tsv/.txt/.dat table, or .parquet files")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".dat", ".tab", ".psv")
_PRIORITY = ("ml-100k", "ml-1m", "ml-latest", "ncf", "recbole", "taobao")
_MAX_WALK = 20_000
_MAX_DEPTH = 4


@dataclass
class _Candidate:
    fmt: str
    folder: str  # directory (relative, posix) holding the files
    files: dict  # role -> relative path


def read_path(
    path: str | Path,
    *,
    mapping: dict | None = None,
    delimiter: str | None = None,
    dedup: str | None = None,
    header: bool | None = None,
) -> Interactions:
    """Read a data file, a directory or a zip into one `Interactions`.

    `mapping` / `delimiter` / `header` are for generic tables: given with a single file they read it
    as a generic table whatever its name. `dedup` None means the format's default ('last' for
    Taobao, 'error' for everything else)."""
    p = local_path(path)
    if not path_exists(p):
        raise missing_path_error(path)
    if not (p.is_dir() or p.is_file()):  # a FIFO would block, a device never ends
        raise DataError(f"{p.name} is not a regular file or a folder (a pipe, device or socket)",
                        file=str(p), fix="save the data to a regular file first and give its path")
    try:
        return _read_checked(p, mapping=mapping, delimiter=delimiter, dedup=dedup, header=header)
    except OSError as e:  # a file that cannot be read (/proc/self/mem, a disk error, a lost mount)
        raise DataError(f"cannot read {e.filename or p}: {e.strerror or e}", file=str(p),
                        fix="copy the data to a regular, readable file and give its path") from None


def _read_checked(p: Path, *, mapping, delimiter, dedup, header) -> Interactions:
    generic = mapping is not None or delimiter is not None or header is not None
    if frame.is_parquet(p) or (p.is_dir() and _holds_parquet(p)):
        return frame.read_parquet(p, mapping, dedup)
    if p.is_dir():
        return _read_container(p, _walk_dir(p), lambda rel: Source(p / rel), mapping=mapping,
                               delimiter=delimiter, dedup=dedup, header=header, generic=generic)
    if p.suffix.lower() == ".zip" or zipfile.is_zipfile(p):
        return _read_zip(p, mapping=mapping, delimiter=delimiter, dedup=dedup, header=header, generic=generic)
    src = Source(p)
    if generic:
        return table.read_table(src, mapping, delimiter, header, dedup)
    return _read_file(src, dedup=dedup)


def _holds_parquet(folder: Path) -> bool:
    """Whether a folder is a Parquet table (its data files all Parquet, at least one). A folder
    with Parquet beside text tables is refused, naming both: reading either alone would drop the
    other's rows without a word."""
    entries = _walk_dir(folder)
    parquet = [e for e in entries if PurePosixPath(e).suffix.lower() in frame.PARQUET_SUFFIXES]
    text = [e for e in entries if PurePosixPath(e).suffix.lower() in TABLE_SUFFIXES]
    if parquet and text:
        raise DataError(f"this folder holds Parquet files ({_some(parquet)}) and text tables ({_some(text)}); "
                        "RecViz reads a folder as one data set", file=str(folder),
                        fix="move one kind out of the folder, or give the path of the file or sub-folder to read")
    return bool(parquet)


def _some(names: list[str], shown: int = 3) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


# ---- single files -------------------------------------------------------------------------------
def detect_file_format(src: Source) -> str:
    """The format of one file from its name and first lines: 'ml-100k', 'ml-1m', 'ml-latest',
    'recbole', 'ncf', 'taobao' or 'table'. Raises for a side file (u.item, movies.csv, .item)."""
    name = src.name
    low = name.lower()
    if name == "u.data":
        return "ml-100k"
    if name == "ratings.dat":
        return "ml-1m"
    if low.endswith(".inter"):
        return "recbole"
    if ncf.ncf_stem(name) is not None:
        return "ncf"
    side = {"u.item": "u.data", "u.user": "u.data", "movies.dat": "ratings.dat", "users.dat": "ratings.dat"}
    if name in side:
        raise _side_file(src, side[name])
    if low.endswith((".item", ".user")) and _has_typed_header(src):
        raise _side_file(src, Path(name).stem + ".inter")
    encoding = check_file(src)
    lines = head_text(src, encoding)
    first = lines[0].replace('"', "").replace(" ", "") if lines else ""
    if name == "ratings.csv" and first.startswith("userId,movieId"):
        return "ml-latest"
    if name == "movies.csv" and first.startswith("movieId,title"):
        raise _side_file(src, "ratings.csv")
    if name == "UserBehavior.csv" or taobao.looks_like_taobao(lines):
        return "taobao"
    return "table"


def _has_typed_header(src: Source) -> bool:
    try:
        lines = head_text(src, lines=1)
    except DataError:
        return False
    return bool(lines) and all(":" in c for c in lines[0].split("\t"))


def _side_file(src: Source, main: str) -> DataError:
    return DataError(f"this is a side file (item or user details), not the interactions: load {main} or "
                     "the folder that holds both", file=src.label,
                     fix=f"point RecViz at {main} (it picks up {src.name} beside it), or at the folder / zip")


def _read_file(src: Source, *, dedup: str | None, name: str | None = None, source: str | None = None) -> Interactions:
    fmt = detect_file_format(src)
    kw = {"dedup": dedup, "name": name, "source": source}
    if fmt == "ml-100k":
        return movielens.read_ml100k(src, **kw)
    if fmt == "ml-1m":
        return movielens.read_ml1m(src, **kw)
    if fmt == "ml-latest":
        return movielens.read_ml_latest(src, **kw)
    if fmt == "recbole":
        return recbole.read_recbole(src, **kw)
    if fmt == "ncf":
        stem = ncf.ncf_stem(src.name)
        train = src.sibling(stem + ".train.rating") if not src.name.endswith(".train.rating") else src
        if train is None:
            raise DataError(f"{stem}.train.rating is missing beside this file", file=src.label,
                            fix="put NAME.train.rating, NAME.test.rating and NAME.test.negative in one folder")
        return ncf.read_ncf(train, **kw)
    if fmt == "taobao":
        return taobao.read_taobao(src, **kw)
    return table.read_table(src, None, None, None, dedup, name=name, source=source)


# ---- directories and zips -----------------------------------------------------------------------
def _walk_dir(root: Path) -> list[str]:
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        depth = len(rel.parts)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__")) and depth < _MAX_DEPTH)
        for f in sorted(filenames):  # regular files only: a FIFO inside a folder would block too
            if not f.startswith(".") and (Path(dirpath) / f).is_file():
                out.append((rel / f).as_posix())
        if len(out) > _MAX_WALK:
            break
    return out


def _read_zip(p: Path, **kw) -> Interactions:
    from recviz.data.formats.archive import Archive

    with Archive(p) as archive:
        return _read_container(p, sorted(archive.infos), archive.source, zip_name=p.stem, **kw)


def find_candidates(entries: list[str]) -> list[_Candidate]:
    """Every recognised data set among relative posix paths, by folder."""
    by_dir: dict[str, set[str]] = {}
    for e in entries:
        pp = PurePosixPath(e)
        by_dir.setdefault(str(pp.parent), set()).add(pp.name)
    out: list[_Candidate] = []
    for folder, names in sorted(by_dir.items()):
        def join(n: str | None, folder: str = folder, names: set = names) -> str | None:
            if n is None or n not in names:
                return None
            return n if folder in ("", ".") else f"{folder}/{n}"

        if "u.data" in names:
            out.append(_Candidate("ml-100k", folder, {"data": join("u.data"), "items": join("u.item")}))
        if "ratings.dat" in names:
            out.append(_Candidate("ml-1m", folder, {"data": join("ratings.dat"), "items": join("movies.dat")}))
        if "ratings.csv" in names and "movies.csv" in names:
            out.append(_Candidate("ml-latest", folder, {"data": join("ratings.csv"), "items": join("movies.csv")}))
        for n in sorted(names):
            if n.endswith(".train.rating"):
                stem = n[: -len(".train.rating")]
                if {stem + ".test.rating", stem + ".test.negative"} <= names:
                    out.append(_Candidate("ncf", folder, {
                        "data": join(n), "test": join(stem + ".test.rating"),
                        "negative": join(stem + ".test.negative"), "stem": stem}))
            elif n.endswith(".inter"):
                stem = n[: -len(".inter")]
                out.append(_Candidate("recbole", folder, {"data": join(n), "stem": stem,
                                                          "items": join(stem + ".item")}))
        if "UserBehavior.csv" in names:
            out.append(_Candidate("taobao", folder, {"data": join("UserBehavior.csv")}))
    return out


def _read_container(root: Path, entries: list[str], make, *, mapping, delimiter, dedup, header, generic,
                    zip_name: str | None = None) -> Interactions:
    what = "zip" if zip_name is not None else "folder"
    cands = find_candidates(entries)
    if cands:
        folders = sorted({c.folder for c in cands})
        fmts = [c.fmt for c in cands]
        if len(folders) > 1 or len(fmts) != len(set(fmts)):
            listing = "; ".join(f"{c.fmt}: {c.files['data']}" for c in cands)
            raise DataError(f"this {what} holds more than one data set ({listing})", file=str(root),
                            fix="load one of them by its own path (the file or its sub-folder)")
        cand = min(cands, key=lambda c: _PRIORITY.index(c.fmt))
        if generic:
            raise DataError(f"this {what} holds {cand.fmt} data, which RecViz reads without a column "
                            "mapping / delimiter / header option", file=str(root),
                            fix="drop the mapping, delimiter and header options, or point at one table file")
        name = zip_name if zip_name is not None and cand.fmt not in ("ncf", "recbole") else None
        if name is None and cand.fmt in ("ncf", "recbole"):
            name = cand.files["stem"]
        if name is None:
            folder = cand.folder if cand.folder not in ("", ".") else ""
            name = PurePosixPath(folder).name if folder else root.name
        kw = {"dedup": dedup, "name": name, "source": str(root)}
        f = cand.files
        opt = lambda key: make(f[key]) if f.get(key) else None  # noqa: E731
        if cand.fmt == "ml-100k":
            return movielens.read_ml100k(make(f["data"]), opt("items"), **kw)
        if cand.fmt == "ml-1m":
            return movielens.read_ml1m(make(f["data"]), opt("items"), **kw)
        if cand.fmt == "ml-latest":
            return movielens.read_ml_latest(make(f["data"]), opt("items"), **kw)
        if cand.fmt == "ncf":
            return ncf.read_ncf(make(f["data"]), make(f["test"]), make(f["negative"]), **kw)
        if cand.fmt == "recbole":
            return recbole.read_recbole(make(f["data"]), opt("items"), **kw)
        return taobao.read_taobao(make(f["data"]), **kw)

    tables = [e for e in entries if PurePosixPath(e).suffix.lower() in TABLE_SUFFIXES
              and PurePosixPath(e).name.lower() not in ("readme.txt", "license.txt", "licence.txt")]
    if len(tables) == 1:
        src = make(tables[0])
        name = zip_name or Path(tables[0]).stem
        if generic:
            return table.read_table(src, mapping, delimiter, header, dedup, name=name, source=str(root))
        return _read_file(src, dedup=dedup, name=name, source=str(root))
    shown = ", ".join(entries[:15]) + (f", … ({len(entries)} files)" if len(entries) > 15 else "")
    if not entries:
        problem = f"this {what} is empty"
    elif tables:
        problem = (f"this {what} holds several tables and none is a format RecViz recognises "
                   f"({shown})")
    else:
        problem = f"this {what} holds no data file RecViz recognises (it contains: {shown})"
    return_fix = f"RecViz reads: {SUPPORTED}" + ("; for several plain tables, load the one you want by its path"
                                                   if len(tables) > 1 else "")
    raise DataError(problem, file=str(root), fix=return_fix)
