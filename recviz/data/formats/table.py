"""Any delimited text table (CSV, TSV, `;`, `|`, `::`), with or without a header, plus a column
mapping from RecViz's roles (user, item, rating, timestamp, behavior) to the file's columns."""

from __future__ import annotations

import csv
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from recviz.data.interactions import Interactions
from recviz.data.formats import chunked
from recviz.data.formats.delimited import empty_error, estimate_rows, iter_delimited
from recviz.data.formats.textfile import Source, as_source, check_file, head_text, normalize_delimiter, sniff_delimiter
from recviz.data.validate import ROLES, check_dedup
from recviz.errors import DataError

# header names each role is guessed from (compared lower-case, without '_', '-', ' ', '.')
ROLE_ALIASES: dict[str, tuple[str, ...]] = {
    "user": ("user", "userid", "uid", "users", "customer", "customerid", "visitorid", "reviewerid"),
    "item": ("item", "itemid", "movieid", "iid", "items", "product", "productid", "movie", "asin",
             "bookid", "isbn", "songid", "trackid", "artistid"),
    "rating": ("rating", "score", "stars", "ratings", "bookrating", "overall"),
    "timestamp": ("timestamp", "time", "ts", "date", "datetime", "unixreviewtime", "eventtime"),
    "behavior": ("behavior", "behaviour", "behaviortype", "behaviourtype", "action", "event",
                 "eventtype", "actiontype"),
}
HEADERLESS_DEFAULT = ("user", "item", "rating", "timestamp")  # by position, when no mapping is given
_MAPPING_FIX = ("give a column mapping such as mapping={'user': 'customer_id', 'item': 'product_id', "
                "'rating': 'stars'}; for a file without a header use 0-based positions, e.g. "
                "{'user': 0, 'item': 1, 'rating': 2}")


def _norm(name: str) -> str:
    name = str(name).split(":", 1)[0]  # RecBole-style 'user_id:token'
    return re.sub(r"[\s_\-.]", "", name).lower()


def guess_roles(columns: list[str]) -> dict[str, str]:
    """Roles guessed from header names: {role: column name}."""
    normed = [_norm(c) for c in columns]
    out: dict[str, str] = {}
    for role, aliases in ROLE_ALIASES.items():
        for alias in aliases:  # earlier aliases win
            if alias in normed:
                col = columns[normed.index(alias)]
                if col not in out.values():
                    out[role] = col
                    break
    return out


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def looks_like_header(rows: list[list[str]]) -> bool:
    """A first row is a header if it names a known role, or if it has text where the next row has
    numbers."""
    if not rows:
        return False
    first = [c.strip() for c in rows[0]]
    known = {a for aliases in ROLE_ALIASES.values() for a in aliases}
    if any(_norm(c) in known for c in first):
        return True
    if len(rows) < 2:
        return not any(_is_number(c) for c in first)
    second = [c.strip() for c in rows[1]]
    return any(not _is_number(a) and _is_number(b) for a, b in zip(first, second) if a)


def _sniff(src: Source, delimiter: str | None) -> tuple[str, str, list[list[str]]]:
    """(encoding, delimiter, first lines split by it) — the delimiter given, or sniffed."""
    encoding = check_file(src)
    lines = head_text(src, encoding)
    if not lines:
        raise empty_error(src)
    sep = normalize_delimiter(delimiter) or sniff_delimiter(lines, default=",")
    return encoding, sep, _split(lines, sep)


def _split(lines: list[str], sep: str) -> list[list[str]]:
    if sep == "::":
        return [ln.split("::") for ln in lines]
    return list(csv.reader(lines, delimiter=sep))


def read_table(
    path: str | Path | Source,
    mapping: dict | None = None,
    delimiter: str | None = None,
    header: bool | None = None,
    dedup: str | None = None,
    *,
    name: str | None = None,
    source: str | Path | None = None,
) -> Interactions:
    """Read a delimited table.

    - `delimiter`: None sniffs it (`, \\t ; |` or `::`); words like 'tab' are accepted.
    - `header`: None guesses it (a first line that names roles, or text above numbers).
    - `mapping`: {role: column name, or 0-based position}; roles are user, item (required),
      rating, timestamp, behavior. None guesses roles from header names, or for a file without a
      header takes columns 0, 1, 2, 3 as user, item, rating, timestamp.
    - `dedup`: 'error' (default), 'last', 'first' or 'keep'; duplicates are repeated
      (user, item) pairs, or (user, item, behavior) when there is a behaviour column.
    Timestamps may be Unix seconds (or milliseconds) or dates."""
    src = as_source(path)
    dedup = check_dedup(dedup, "error")
    encoding, sep, sample = _sniff(src, delimiter)
    mapping = _check_mapping_keys(mapping, src)
    if header is None:
        named = [c for c in (mapping or {}).values() if isinstance(c, str)]
        first = {c.strip() for c in sample[0]} if sample else set()
        header = (bool(named) and set(named) <= first) or looks_like_header(sample)
    quoting = csv.QUOTE_NONE if sep in ("::", "\t") else csv.QUOTE_MINIMAL
    # streamed: a large table is read chunk by chunk into compact arrays (`chunked`)
    chunks = iter_delimited(src, sep=sep, header=header, encoding=encoding, min_columns=2, str_columns=None,
                            quoting=quoting, skipinitialspace=sep in (",", ";"),
                            what="a table of interactions (a user and an item column at least)",
                            fixed_delimiter=False)
    first = next(chunks)
    roles = _resolve(mapping, list(first[0].columns), header, src, first_row=sample[0] if sample else [])

    def to_roles(raw: pd.DataFrame) -> pd.DataFrame:
        frame = raw[[roles[r] for r in roles]]
        frame.columns = list(roles)
        return frame

    meta = {"format": "table", "files": [src.label], "delimiter": sep, "header": bool(header),
            "mapping": {r: (c if isinstance(c, str) else int(c)) for r, c in roles.items()}}
    stem = src.name.split(".")[0] if src.name else "table"
    return chunked.assemble(itertools.chain([first], chunks), to_roles=to_roles, file=src.label, timestamps="auto",
                            dedup=dedup, columns={r: str(c) for r, c in roles.items()}, name=name or stem,
                            expected_rows=estimate_rows(src, encoding),
                            source=str(source if source is not None else src.label), meta=meta)


@dataclass
class Preview:
    """What the upload form shows before anything is read for real."""

    rows: pd.DataFrame  # the first lines, split by the delimiter, as text
    delimiter: str
    header: bool
    roles: dict  # guessed {role: column}


def preview(path: str | Path | Source, delimiter: str | None = None, header: bool | None = None) -> Preview:
    """The first lines of a text file split the way `read_table` would split them, with the
    guessed delimiter, header and column roles, so a person can check the mapping first."""
    src = as_source(path)
    _, sep, sample = _sniff(src, delimiter)
    if header is None:
        header = looks_like_header(sample)
    width = max(len(r) for r in sample)
    rows = [r + [""] * (width - len(r)) for r in sample]
    columns = [c.strip() for c in rows[0]] if header else [str(k) for k in range(width)]
    body = rows[1:] if header else rows
    roles = guess_roles(columns) if header else {r: str(k) for k, r in enumerate(ROLES[:min(width, 4)])}
    return Preview(pd.DataFrame(body, columns=_unique(columns)), sep, bool(header), roles)


def _unique(columns: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for c in columns:
        seen[c] = seen.get(c, 0) + 1
        out.append(c if seen[c] == 1 else f"{c}.{seen[c] - 1}")
    return out


def _check_mapping_keys(mapping: dict | None, src: Source) -> dict | None:
    if not mapping:
        return None
    out = {}
    for role, col in mapping.items():
        r = str(role).strip().lower()
        r = {"behaviour": "behavior", "userid": "user", "itemid": "item", "time": "timestamp"}.get(r, r)
        if r not in ROLES:
            raise DataError(f"unknown role {role!r} in the column mapping", file=src.label,
                            fix=f"map these roles only: {list(ROLES)}")
        if col is None or col == "":
            continue
        if isinstance(col, str) and col.strip().lstrip("-").isdigit():
            col = int(col.strip())  # '2' from a command line is a position
        elif isinstance(col, str):
            col = col.strip()
        out[r] = col
    for role in ("user", "item"):
        if role not in out:
            raise DataError(f"the column mapping has no '{role}' column", file=src.label, fix=_MAPPING_FIX)
    return out


def _resolve(mapping: dict | None, columns: list, header: bool, src: Source, first_row: list[str]) -> dict:
    """{role: frame column} with every role checked against the file's columns."""
    if mapping is None:
        if header:
            roles = guess_roles([str(c) for c in columns])
            missing = [r for r in ("user", "item") if r not in roles]
            if missing:
                raise DataError(
                    f"could not tell which column holds the {' and the '.join(missing)} ids "
                    f"(header: {[str(c) for c in columns]})",
                    file=src.label, row=1, column=None, fix=_MAPPING_FIX)
            return roles
        return {role: i for i, role in enumerate(HEADERLESS_DEFAULT) if i < len(columns)}
    roles = {}
    for role, col in mapping.items():
        if isinstance(col, int):
            if not 0 <= col < len(columns):
                raise DataError(
                    f"the mapping puts {role} in column position {col}, but the file has only "
                    f"{len(columns)} columns (positions 0–{len(columns) - 1})",
                    file=src.label, column=str(col), fix=_MAPPING_FIX)
            roles[role] = columns[col]
        elif col in columns:
            roles[role] = col
        else:
            low = {str(c).lower(): c for c in columns}
            if header and col.lower() in low:
                roles[role] = low[col.lower()]
                continue
            if header:
                have = f"its header has {[str(c) for c in columns]}"
                fix = f"use one of those names for {role}, or a 0-based position"
            else:
                preview = ", ".join(f"{i}={v.strip()[:15]!r}" for i, v in enumerate(first_row))
                have = (f"the file has no header line, so its columns are positions 0–{len(columns) - 1} "
                        f"(first line: {preview})")
                fix = (f"map {role} to a 0-based position, e.g. {{'{role}': {0 if role == 'user' else 1}}}, "
                       "or add a header line to the file (or pass header=True if it already has one)")
            raise DataError(f"the mapping names column {col!r} for {role}, but there is no such column; {have}",
                            file=src.label, column=str(col), fix=fix)
    return roles

