"""Parsing delimited text with pandas' C parser, whole or in chunks, with every parser and codec
error turned into a `DataError` naming the file and the line.

`read_delimited` returns one frame (small files, side files); `iter_delimited` yields frames of at
most `CHUNK_ROWS` rows with the file line of each row, so that a reader can turn each chunk into
compact arrays before the next is parsed — a table of text cells costs ~60 bytes per cell as
Python strings, many times the arrays it becomes (`recviz.data.formats.chunked`).
"""

from __future__ import annotations

import csv
import io
import re
from typing import Iterator

import numpy as np
import pandas as pd

from recviz.limits import ROWS
from recviz.data.formats.textfile import DOUBLE_COLON_SUB, Source, check_file, delimiter_name, head_text, sniff_delimiter
from recviz.errors import DataError

CHUNK_ROWS = 50_000  # rows parsed at a time when streaming: some 10 MB of text cells, whatever the file size


def read_delimited(src: Source, **options) -> tuple[pd.DataFrame, np.ndarray]:
    """Read a delimited text file whole. Returns the frame (header names as columns, else
    0..k-1) and `line_of` (1-based file line of each row); see `iter_delimited` for the options."""
    frames, lines = [], []
    for frame, line_of in iter_delimited(src, chunk_rows=None, **options):
        frames.append(frame)
        lines.append(line_of)
    return frames[0], lines[0]


def iter_delimited(
    src: Source,
    *,
    sep: str,
    header: bool = False,
    encoding: str = "utf-8",
    min_columns: int = 1,
    str_columns: list[int] | None = None,
    quoting: int = csv.QUOTE_NONE,
    skipinitialspace: bool = False,
    what: str = "",
    fix_hint: str | None = None,
    fixed_delimiter: bool = True,
    chunk_rows: int | None = 0,
) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """Parse a delimited text file with the C parser, `chunk_rows` rows at a time (0: `CHUNK_ROWS`,
    None: whole),
    yielding (frame, line_of) per chunk, blank lines dropped. Columns in `str_columns` (by
    position; None = all) are read as strings verbatim; empty cells are NaN, nothing else is.
    Parser / codec errors become `DataError`s naming the line; a file without a data row is one.
    `fixed_delimiter`: the format prescribes `sep` (the fix then does not suggest another one)."""
    encoding = check_file(src, encoding=encoding)
    if sep == "::":
        handle, pd_sep = io.BufferedReader(_DoubleColons(src.open())), DOUBLE_COLON_SUB
    else:
        handle, pd_sep = src.handle(), sep
    dtype = str if str_columns is None else {c: str for c in str_columns}
    chunk_rows = CHUNK_ROWS if chunk_rows == 0 else chunk_rows
    context = dict(src=src, sep=sep, encoding=encoding, fix_hint=fix_hint, header=header)
    max_rows = ROWS.value()
    try:
        with _errors_for_people(**context):
            parsed = pd.read_csv(handle, sep=pd_sep, header=0 if header else None, dtype=dtype,
                                 keep_default_na=False, na_values=[""], skip_blank_lines=False,
                                 quoting=quoting, encoding=encoding, engine="c", low_memory=False,
                                 skipinitialspace=skipinitialspace, index_col=False, chunksize=chunk_rows)
        chunks = iter([parsed]) if chunk_rows is None else parsed
        start, rows = (2 if header else 1), 0
        while True:
            with _errors_for_people(**context):
                df = next(chunks, None)
            if df is None:
                break
            # blank lines are all-empty rows: drop them, keep the physical line numbers of the rest
            line_of = np.arange(start, start + len(df), dtype=np.int64)
            start += len(df)
            blank = df.isna().all(axis=1).to_numpy()
            if blank.any():
                df = df.loc[~blank].reset_index(drop=True)
                line_of = line_of[~blank]
            if header:
                df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
            if df.shape[1] < min_columns:
                raise delimiter_error(src, sep, df.shape[1], min_columns, encoding, what=what, fix_hint=fix_hint,
                                      fixed=fixed_delimiter)
            if len(df):
                rows += len(df)
                if rows > max_rows:
                    raise DataError(f"has more than {max_rows:,} rows ({ROWS.name} is bounded)", file=src.label,
                                    row=int(line_of[len(df) - (rows - max_rows)]),  # the first row too many
                                    fix=f"set {ROWS.env} to a larger number on a machine with the memory "
                                        "(each row costs about 20 bytes), or sample the file first")
                yield df, line_of
        if rows == 0:
            raise empty_error(src, header)
    finally:
        if not isinstance(handle, str):
            handle.close()


class _DoubleColons(io.RawIOBase):
    """A binary stream with every '::' replaced by `DOUBLE_COLON_SUB` (the C parser splits on one
    character), a block at a time, as `bytes.replace` would on the whole file: a run of colons at a
    block's end is paired from its start, and an odd last colon waits for the next block."""

    BLOCK = 1 << 20

    def __init__(self, raw) -> None:
        self.raw, self.carry, self.out = raw, b"", b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self.out:
            block = self.raw.read(self.BLOCK)
            data, self.carry = self.carry + block, b""
            if not data:
                return 0
            if block:
                run = len(data) - len(data.rstrip(b":"))
                if run % 2:  # an odd trailing colon may pair with the next block's first
                    data, self.carry = data[:-1], b":"
            self.out = data.replace(b"::", DOUBLE_COLON_SUB.encode())
        n = min(len(buffer), len(self.out))
        buffer[:n] = self.out[:n]
        self.out = self.out[n:]
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


class _errors_for_people:
    """Parser, codec and memory errors of pandas as DataErrors (a context manager)."""

    def __init__(self, *, src: Source, sep: str, encoding: str, fix_hint: str | None, header: bool):
        self.src, self.sep, self.encoding, self.fix_hint, self.header = src, sep, encoding, fix_hint, header

    def __enter__(self):
        return self

    def __exit__(self, kind, e, tb) -> bool:
        src, sep = self.src, self.sep
        if kind is None or not issubclass(kind, Exception) or isinstance(e, DataError):
            return False
        if isinstance(e, pd.errors.EmptyDataError):
            raise empty_error(src, self.header) from None
        if isinstance(e, pd.errors.ParserError):
            raise _parser_error(src, e, sep, self.encoding, self.fix_hint) from None
        if isinstance(e, UnicodeDecodeError):
            raise _decode_error(src, self.encoding) from None
        if isinstance(e, (ValueError, OverflowError)):  # dtype/low-level conversion problems
            raise DataError(f"could not be parsed as a {delimiter_name(sep)}-separated table: {e}",
                            file=src.label, fix=self.fix_hint or "check the delimiter and the file's layout") from None
        if isinstance(e, MemoryError):
            raise DataError("not enough memory to read this file", file=src.label,
                            fix="k-core filter or sample it first, then load the smaller file") from None
        return False


def _decode_error(src: Source, encoding: str) -> DataError:
    """Where the first undecodable byte is (line and byte value)."""
    data = src.read_bytes()
    try:
        data.decode(encoding)
        line, detail = None, ""
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        detail = f": byte 0x{data[e.start]:02x} is not valid there"
    return DataError(f"the file is not valid {encoding.upper()} text{detail}", file=src.label, row=line,
                     fix=f"re-save the file as {encoding.upper()} (in a text editor or spreadsheet: Save As > "
                         "Encoding: UTF-8), or fix that line")


def empty_error(src: Source, header: bool = False) -> DataError:
    if header:
        problem = "the file has no data rows (at most a header line)"
    else:
        problem = "the file is empty (no data rows)"
    return DataError(problem, file=src.label,
                     fix="check that this is the right file and that it was fully downloaded / exported")


def delimiter_error(src: Source, sep: str, found: int, need: int, encoding: str = "utf-8", *,
                    what: str = "", fix_hint: str | None = None, fixed: bool = True) -> DataError:
    """Too few columns after splitting: name the delimiter tried and, if the text suggests one,
    the delimiter the file seems to use."""
    guess = sniff_delimiter(head_text(src, encoding))
    cols = "column" if found == 1 else "columns"
    problem = (f"splitting on {delimiter_name(sep)} gave {found} {cols}, but "
               f"{what or 'this format'} needs at least {need}")
    if guess and guess != sep:
        problem += f"; the file looks like it uses {delimiter_name(guess)} instead"
        if fixed:
            fix = fix_hint or (f"this format is always {delimiter_name(sep)}-separated: check that this is the "
                               f"right file, or load it as a generic table with delimiter={guess!r} and a "
                               "column mapping")
        else:
            fix = fix_hint or f"pass delimiter={guess!r} (or let RecViz sniff it by not passing one)"
    else:
        fix = fix_hint or "check that this is the right file; every line needs the columns listed above"
    return DataError(problem, file=src.label, fix=fix)


def _parser_error(src: Source, e: Exception, sep: str, encoding: str, fix_hint: str | None) -> DataError:
    msg = str(e)
    m_line = re.search(r"line (\d+)", msg)
    m_fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", msg)
    line = int(m_line.group(1)) if m_line else None
    m_quote = re.search(r"EOF inside string starting at row (\d+)", msg)  # pandas counts rows from 0
    if m_fields:
        expected, line, saw = int(m_fields.group(1)), int(m_fields.group(2)), int(m_fields.group(3))
        problem = (f"this line has {saw} fields when split on {delimiter_name(sep)}, but the first "
                   f"line has {expected}")
        fix = (fix_hint or f"make every line have the same number of fields: quote values that contain "
               f"{delimiter_name(sep)}, or pass the right delimiter")
    elif m_quote:
        line = int(m_quote.group(1)) + 1
        problem = "a quote opens on this line and is never closed, so the rest of the file reads as one value"
        fix = fix_hint or 'close the quote on this line, or remove it (a value containing " is written ""like this"")'
    else:
        problem = f"the file could not be parsed as a {delimiter_name(sep)}-separated table ({msg.strip()})"
        fix = fix_hint or "check the delimiter and look for unbalanced quotes around this line"
    return DataError(problem, file=src.label, row=line, fix=fix)


def estimate_rows(src: Source, encoding: str = "utf-8") -> int:
    """About how many lines `src` has, from its size and its first lines' mean length (to size
    arrays filled chunk by chunk; a tenth more, so that a slightly long estimate needs no growing)."""
    lines = head_text(src, encoding, lines=1000)
    mean = sum(len(ln.encode(encoding, errors="replace")) + 1 for ln in lines) / max(1, len(lines))
    return int(1.1 * src.size() / max(mean, 2)) + 16
