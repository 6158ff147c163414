"""RecBole atomic files: `NAME.inter` (+ `NAME.item`), tab-separated with a typed header
`field:type` (token, token_seq, float, float_seq). Fields are matched by name (the part before
the colon); other fields are ignored."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from recviz.data.interactions import Interactions
from recviz.data.formats import chunked
from recviz.data.formats.delimited import delimiter_error, empty_error, estimate_rows, iter_delimited, read_delimited
from recviz.data.formats.textfile import Source, as_source, check_file, head_text, sniff_delimiter
from recviz.data.validate import check_dedup
from recviz.errors import DataError

INTER_FIELDS = {
    "user": ("user_id",),
    "item": ("item_id",),
    "rating": ("rating",),
    "timestamp": ("timestamp",),
    "behavior": ("behavior", "behaviour", "behavior_type"),
}
TITLE_FIELDS = ("movie_title", "title")
GENRE_FIELDS = ("class", "genre", "genres")
_FIX = ("a RecBole atomic file starts with a tab-separated typed header such as "
        "'user_id:token<TAB>item_id:token<TAB>rating:float<TAB>timestamp:float'")


def parse_header(src: Source, encoding: str = "utf-8") -> list[tuple[str, str]]:
    """[(field, type), ...] from the first line; DataError if it is not a typed header."""
    encoding = check_file(src, encoding=encoding)
    lines = head_text(src, encoding, lines=2)
    if not lines:
        raise empty_error(src)
    cells = lines[0].split("\t")
    if len(cells) == 1:
        guess = sniff_delimiter(lines)
        if guess not in (None, "\t"):
            raise delimiter_error(src, "\t", 1, 2, encoding, what="a RecBole atomic file",
                                  fix_hint="RecBole atomic files are tab-separated: convert the file, "
                                           "or read it as a generic table with delimiter=" + repr(guess))
    fields = []
    for c in cells:
        name, sep, typ = c.strip().partition(":")
        if not sep or not name:
            raise DataError(f"the first line is not a RecBole typed header: field {c.strip()!r} has no ':type'"
                            + (" (and the line has no tab: wrong delimiter?)" if len(cells) == 1 else ""),
                            file=src.label, row=1, fix=_FIX)
        fields.append((name.strip(), typ.strip()))
    return fields


def _pick(fields: list[tuple[str, str]], names: tuple[str, ...]) -> int | None:
    lowered = [f.lower() for f, _ in fields]
    for n in names:
        if n in lowered:
            return lowered.index(n)
    return None


def read_recbole(
    inter: str | Path | Source,
    item: str | Path | Source | None = None,
    *,
    dedup: str | None = None,
    name: str | None = None,
    source: str | Path | None = None,
) -> Interactions:
    """Read `NAME.inter` and, if present (or given), `NAME.item` beside it: item title from
    `movie_title` / `title`, genres from `class` / `genre` / `genres` (a space-separated token_seq,
    stored joined with '|')."""
    src = as_source(inter)
    dedup = check_dedup(dedup, "error")
    fields = parse_header(src)
    roles = {role: _pick(fields, names) for role, names in INTER_FIELDS.items()}
    for role in ("user", "item"):
        if roles[role] is None:
            raise DataError(f"the header has no {INTER_FIELDS[role][0]} field "
                            f"(fields: {[f for f, _ in fields]})", file=src.label, row=1,
                            column=INTER_FIELDS[role][0], fix=_FIX)
    ids = [roles["user"], roles["item"]]
    chunks = iter_delimited(src, sep="\t", header=True, min_columns=len(fields),
                            str_columns=ids + ([roles["behavior"]] if roles["behavior"] is not None else []),
                            what=f"this RecBole file's header ({len(fields)} fields)")
    first = next(chunks)
    picked = {role: pos for role, pos in roles.items() if pos is not None}
    header = list(first[0].columns)
    stem = src.name[: -len(".inter")] if src.name.endswith(".inter") else Path(src.name).stem
    item_src = as_source(item) if item is not None else src.sibling(stem + ".item")
    table = (lambda: read_recbole_items(item_src)) if item_src is not None else None
    meta = {"format": "recbole", "files": [src.label],
            "fields": {role: fields[pos][0] for role, pos in picked.items()}}
    if item_src is not None:
        meta["item_file"] = item_src.label
    return chunked.assemble(itertools.chain([first], chunks), file=src.label, dedup=dedup,
                            to_roles=lambda raw: pd.DataFrame({role: raw.iloc[:, pos] for role, pos in picked.items()}),
                            columns={role: header[pos] for role, pos in picked.items()}, expected_rows=estimate_rows(src),
                            items=table, name=name or stem, source=str(source if source is not None else src.label),
                            meta=meta)


def read_recbole_items(path: str | Path | Source) -> pd.DataFrame | None:
    src = as_source(path)
    fields = parse_header(src)
    pid = _pick(fields, ("item_id",))
    if pid is None:
        raise DataError(f"the header has no item_id field (fields: {[f for f, _ in fields]})",
                        file=src.label, row=1, column="item_id", fix=_FIX)
    raw, _ = read_delimited(src, sep="\t", header=True, min_columns=len(fields),
                            what=f"this RecBole file's header ({len(fields)} fields)")
    ptitle, pgenre = _pick(fields, TITLE_FIELDS), _pick(fields, GENRE_FIELDS)
    n = len(raw)
    title = raw.iloc[:, ptitle].astype(object) if ptitle is not None else pd.Series([np.nan] * n, dtype=object)
    if pgenre is not None:
        g = raw.iloc[:, pgenre].astype(object)
        genres = g.where(g.isna(), g.astype(str).str.split().str.join("|"))
    else:
        genres = pd.Series([np.nan] * n, dtype=object)
    table = pd.DataFrame({"title": title.to_numpy(dtype=object), "genres": genres.to_numpy(dtype=object)},
                         index=pd.Index(raw.iloc[:, pid].astype(str).str.strip().to_numpy(dtype=object)))
    table = table.replace("", np.nan)
    return table[~table.index.duplicated(keep="last")]
