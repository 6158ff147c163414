"""Interactions that are already columns: a pandas DataFrame (`recviz.load(df)`) and Parquet files
or folders of them. Nothing is parsed from text, but everything else is what a text table gets: the
roles come from the same column mapping (a name or 0-based position per role) or are guessed from
the column names the same way (`table.guess_roles`), and the values pass the same validation, chunk
by chunk (`chunked.assemble`: a DataFrame in slices, a Parquet file in batches of its row groups), so
a DataFrame or a Parquet file is refused with the same messages as the CSV it came from, and a large
one is read in memory of the order of the arrays it becomes.

Row numbers in messages count data rows from 1 (a Parquet folder's files in name order).
"""

from __future__ import annotations

import os

from pathlib import Path

import numpy as np
import pandas as pd

from recviz.data.formats import chunked, delimited
from recviz.data.formats.table import _check_mapping_keys, _resolve
from recviz.data.formats.textfile import Source
from recviz.data.interactions import Interactions
from recviz.data.validate import check_dedup
from recviz.errors import DataError
from recviz.limits import ROWS

PARQUET_SUFFIXES = (".parquet", ".pq")
BATCH_ROWS = 1 << 18  # rows of a Parquet file read at a time: a few MB of columns


def read_frame(frame: pd.DataFrame, mapping: dict | None = None, dedup: str | None = None, *,
               label: str = "DataFrame", name: str = "", source: str = "", meta: dict | None = None
               ) -> Interactions:
    """Validate a table of interactions held in memory and index it.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per interaction: a user and an item column at least; rating, timestamp and
        behavior columns when present.
    mapping : dict, optional
        ``{role: column name or 0-based position}`` for roles user, item, rating, timestamp,
        behavior. Without it the roles are guessed from the column names (``userId``,
        ``movie_id``, ``stars``, ...), as for a CSV file with a header.
    dedup : {"error", "last", "first", "keep"}, optional
        What repeated (user, item) rows do; refused by default, as for files.
    label : str
        What messages call the table.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"expected a pandas DataFrame, not {type(frame).__name__}", file=label)
    src = Source(data=b"", label=label)
    dedup = check_dedup(dedup, "error")
    mapping = _check_mapping_keys(mapping, src)
    repeated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if repeated:
        raise DataError(f"the table has more than one column named {', '.join(repr(c) for c in repeated)}",
                        file=label, fix="rename or drop the repeated columns so that each name is used once")
    if len(frame) == 0:
        raise DataError("the table has no rows", file=label, fix="pass a table with one row per interaction")
    roles = _resolve(mapping, list(frame.columns), True, src, first_row=[])
    positions = [list(frame.columns).index(roles[r]) for r in roles]

    def slices():  # a chunk at a time, so that checking the table takes memory of a chunk, not a copy of it
        step = delimited.CHUNK_ROWS
        for s in range(0, len(frame), step):
            part = frame.iloc[s:s + step, positions]
            yield part, np.arange(s + 1, s + len(part) + 1)

    return _assemble(slices(), roles, dedup, label=label, name=name, source=source or label,
                     meta={"format": "table", "files": [label], "mapping": {r: str(c) for r, c in roles.items()},
                           **(meta or {})},
                     rows=len(frame))


def _assemble(chunks, roles: dict, dedup: str, *, label: str, name: str, source: str, meta: dict,
              rows: int) -> Interactions:
    """Chunks whose columns are the role columns in `roles` order, through `chunked.assemble`."""
    def to_roles(part: pd.DataFrame) -> pd.DataFrame:
        part = part.set_axis(list(roles), axis=1)
        part.index = pd.RangeIndex(len(part))
        return part

    return chunked.assemble(chunks, to_roles=to_roles, file=label, timestamps="auto", dedup=dedup,
                            columns={r: str(c) for r, c in roles.items()}, expected_rows=rows, name=name,
                            source=source, meta=meta)


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in PARQUET_SUFFIXES


def parquet_files(folder: Path) -> list[Path]:
    """The Parquet files of a folder (partitioned datasets keep them in sub-folders), name order."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_parquet(p)
                  and not any(part.startswith((".", "_")) for part in p.relative_to(folder).parts))


def parquet_footer(path: str | Path):
    """A Parquet file's metadata (schema, rows, row groups), read before any data and refused when
    reading the file would cost far more than its data: a footer over `FOOTER_BYTES` (it is parsed
    whole) or more than `ROW_GROUPS` row groups (each is read with its own buffers: 200,000
    one-row groups took 2.7 GB)."""
    import pyarrow.parquet as pq

    from recviz.limits import FOOTER_BYTES, ROW_GROUPS

    fix = "write it again with fewer, larger row groups (e.g. DataFrame.to_parquet(row_group_size=1_000_000))"
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size >= 12:
                fh.seek(size - 8)
                tail = fh.read(8)
                footer_bytes = int.from_bytes(tail[:4], "little")
                if tail[4:] == b"PAR1" and footer_bytes > FOOTER_BYTES.value():
                    raise DataError(f"its Parquet footer is {footer_bytes:,} bytes, more than "
                                    f"{FOOTER_BYTES.value():,} ({FOOTER_BYTES.name} is bounded)", file=str(path), fix=fix)
        footer = pq.ParquetFile(path).metadata  # the schema and row count, before any data is read
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 — pyarrow raises several kinds for a damaged file
        raise DataError(f"this is not a readable Parquet file ({exc})", file=str(path),
                        fix="write it again (e.g. DataFrame.to_parquet) or export the table as CSV") from None
    if footer.num_row_groups > ROW_GROUPS.value():
        raise DataError(f"it has {footer.num_row_groups:,} row groups, more than {ROW_GROUPS.value():,} "
                        f"({ROW_GROUPS.name} is bounded: each costs memory of its own when read)", file=str(path),
                        fix=f"{fix}, or set {ROW_GROUPS.env} higher")
    return footer


def read_parquet(path: str | Path, mapping: dict | None = None, dedup: str | None = None, *,
                 name: str | None = None) -> Interactions:
    """A `.parquet` file, or a folder of them read as one table, with roles mapped as for CSV.
    Only the mapped columns are read (Parquet stores columns apart, so a wide file costs no more
    than its user, item, rating, timestamp and behaviour columns), `BATCH_ROWS` rows at a time
    (`chunked`), so reading takes memory of the order of the arrays the table becomes."""
    import pyarrow.parquet as pq

    path = Path(path)
    files = parquet_files(path) if path.is_dir() else [path]
    if not files:
        raise DataError("this folder holds no .parquet files", file=str(path),
                        fix="point at a .parquet file or a folder of them")
    rows = 0
    for f in files:
        rows += parquet_footer(f).num_rows
    schema = pq.read_schema(files[0])
    if rows > ROWS.value():
        raise DataError(f"has {rows:,} rows, more than {ROWS.value():,} ({ROWS.name} is bounded)", file=str(path),
                        fix=f"set {ROWS.env} to a larger number on a machine with the memory "
                            "(each row costs about 20 bytes), or sample the data first")
    src = Source(data=b"", label=str(path))
    wanted = _check_mapping_keys(mapping, src)
    roles = _resolve(wanted, list(schema.names), True, src, first_row=[])
    if rows == 0:
        raise DataError("the table has no rows", file=str(path), fix="pass a table with one row per interaction")
    dedup = check_dedup(dedup, "error")
    return _assemble(_batches(files, list(roles.values()), path), roles, dedup, label=str(path),
                     name=name or path.name.split(".")[0], source=str(path),
                     meta={"format": "parquet", "files": [str(f) for f in files],
                           "mapping": {r: str(c) for r, c in roles.items()}},
                     rows=rows)


def _batches(files: list[Path], columns: list[str], path: Path):
    """(frame of `columns`, row numbers) per batch of at most BATCH_ROWS rows, file after file."""
    import pyarrow.parquet as pq

    start = 0
    for f in files:
        try:
            batches = pq.ParquetFile(f).iter_batches(batch_size=BATCH_ROWS, columns=list(dict.fromkeys(columns)))
            for batch in batches:
                part = batch.to_pandas()
                yield part[columns], np.arange(start + 1, start + len(part) + 1)
                start += len(part)
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"could not read the Parquet data ({exc})", file=str(path),
                            fix="check that every file of the folder has the same columns") from None
