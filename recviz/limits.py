"""The bounds on what an input may make RecViz read, each declared once here.

Why they exist: a small file can ask a parser for unbounded memory (a 2 MB line of a million
columns, a 10 MB zip that unpacks to a gigabyte). Each limit is checked before the memory it
protects is allocated, and each can be raised by an environment variable for real large data on a
machine that has the memory. `LIMITS` lists them for the README's "Limits and guarantees" (a test
checks that the README states each number and variable).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from recviz.errors import DataError

SNIFF_BYTES = 64 * 1024  # the prefix every file is sniffed from (format, encoding, delimiter, shape)
SNIFF_LINES = 50


@dataclass(frozen=True)
class Limit:
    name: str  # what it bounds, for people
    default: int
    env: str | None  # the variable that raises it (None: fixed)
    unit: str  # "bytes" or a noun ("columns")

    def value(self) -> int:
        """The limit in force: the environment variable if set (an integer; 2e9 is accepted),
        else the default."""
        raw = os.environ.get(self.env, "").strip() if self.env else ""
        if not raw:
            return self.default
        try:
            return int(float(raw))
        except ValueError:
            raise DataError(f"{self.env}={raw!r} is not a whole number of {self.unit}",
                            fix=f"set {self.env} to an integer such as {self.default * 2}, or unset it") from None


FILE_BYTES = Limit("a data file's size", 1 << 30, "RECVIZ_MAX_FILE_BYTES", "bytes")
# One zip's members, unpacked, together. The members RecViz reads of the largest MovieLens release
# (ml-25m: ratings.csv + movies.csv) unpack to 681 MB; a 10 MB zip unpacking to a gigabyte is a bomb.
ARCHIVE_BYTES = Limit("the bytes unpacked from one zip", 768 << 20, "RECVIZ_MAX_ARCHIVE_BYTES", "bytes")
# A row of interaction data is a few fields and well under a kilobyte; a parser asked for a million
# columns allocates gigabytes before it can complain.
COLUMNS = Limit("a table's columns", 1000, "RECVIZ_MAX_COLUMNS", "columns")
LINE_BYTES = Limit("a line's length", 32 * 1024, None, "bytes")
# Interactions read from one file: each costs ~20 bytes once stored and more while validated. The
# largest public log we read (Taobao UserBehavior, 100,150,807 rows) fits; a file of a billion
# tiny lines is stopped while it streams, before its arrays grow.
ROWS = Limit("a file's rows", 150_000_000, "RECVIZ_MAX_ROWS", "rows")
# Parquet: every row group costs its own buffers and metadata when read, so a file of 200,000
# one-row groups took 2.7 GB; writers use a handful (pandas: one per million rows). Counted from the
# footer, whose own size is bounded first (it is parsed whole).
ROW_GROUPS = Limit("a Parquet file's row groups", 10_000, "RECVIZ_MAX_ROW_GROUPS", "row groups")
FOOTER_BYTES = Limit("a Parquet file's footer", 32 << 20, None, "bytes")
# Stored .npz files (run artifacts, saved datasets, splits): each member's unpacked size is read
# from the zip directory and its array's shape from its header before anything is loaded. A member
# may unpack to at most 4 GiB, and one that unpacks more than 500 times its packed size while over
# 16 MiB is a zip bomb (numbers RecViz stores pack 2–50×; deflate tops out near 1,000×).
NPZ_MEMBER_BYTES = Limit("one stored array, unpacked", 4 << 30, "RECVIZ_MAX_ARRAY_BYTES", "bytes")
NPZ_RATIO = Limit("how far a large stored array may unpack", 500, None, "times its packed size")
# Stored JSON (meta.json, history.json, the dataset index, settings) is parsed whole: a few MB at most.
JSON_BYTES = Limit("a stored JSON file's size", 64 << 20, "RECVIZ_MAX_JSON_BYTES", "bytes")
LIMITS = (FILE_BYTES, ARCHIVE_BYTES, COLUMNS, LINE_BYTES, ROWS, ROW_GROUPS, FOOTER_BYTES, NPZ_MEMBER_BYTES,
          NPZ_RATIO, JSON_BYTES)


def human_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} GiB"  # pragma: no cover


def describe(limit: Limit) -> str:
    """'768 MiB' / '1,000 columns': the default as the README states it."""
    if limit.unit == "bytes":
        return human_bytes(limit.default).replace(".0 ", " ")
    return f"{limit.default:,} {limit.unit}"
