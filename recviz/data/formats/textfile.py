"""Reading text files for every reader: size and binary checks, delimiter sniffing, parsing.

Every problem is raised as a `DataError` that names the file, the 1-based line of the file (header
lines counted) or the column, and a concrete fix. No bare pandas / numpy / codec exception escapes
from here.

The pieces, in the order a reader uses them:

- `Source` / `as_source`: a file on disk or a (streamed) zip member, plus the label that
  messages use for it (``ml-100k.zip:ml-100k/u.data``);
- `check_file`: exists, not larger than `max_file_bytes()`, and text rather than binary;
- `sniff_delimiter`: which of ``, \\t ; |`` or ``::`` a text uses;
- parsing itself is `recviz.data.formats.delimited` (whole, or in chunks).
"""

from __future__ import annotations

import csv
import errno
import io
import os
import re
from pathlib import Path

import numpy as np

from recviz.limits import COLUMNS, FILE_BYTES, LINE_BYTES, SNIFF_BYTES, SNIFF_LINES, human_bytes
from recviz.errors import DataError

MAX_FILE_BYTES_ENV = FILE_BYTES.env  # the names tests and messages use
MAX_COLUMNS_ENV = COLUMNS.env
DELIMITER_CANDIDATES = (",", "\t", ";", "|")
_DELIM_NAMES = {",": "comma (',')", "\t": "tab ('\\t')", ";": "semicolon (';')", "|": "pipe ('|')",
                "::": "double colon ('::')", " ": "space (' ')"}
_DELIM_ALIASES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|",
                  "space": " ", "colon": ":", "doublecolon": "::"}
DOUBLE_COLON_SUB = "\x1f"  # what '::' becomes before the C parser sees it (ASCII unit separator)
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"PK\x03\x04", "zip / xlsx"), (b"PAR1", "parquet"),
          (b"BZh", "bzip2"), (b"\xfd7zXZ", "xz"), (b"7z\xbc\xaf", "7z"), (b"\x93NUMPY", "npy"),
          (b"SQLite format 3", "SQLite"), (b"\xd0\xcf\x11\xe0", "xls"), (b"%PDF", "pdf"),
          (b"\x89HDF", "HDF5"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"Rar!", "rar"))


def max_file_bytes() -> int:
    """The size limit: `RECVIZ_MAX_FILE_BYTES` if set (an integer), else 1 GiB."""
    return FILE_BYTES.value()


def delimiter_name(sep: str) -> str:
    return _DELIM_NAMES.get(sep, repr(sep))


def normalize_delimiter(sep: str | None) -> str | None:
    """Accept the delimiter itself or a word for it ('tab', '\\t', 'comma', ...)."""
    if sep is None or sep == "":
        return None
    return _DELIM_ALIASES.get(sep.strip().lower() if sep.strip() else sep, sep)


# ---- sources -----------------------------------------------------------------------------------
class Source:
    """One file to read: a path on disk, bytes in memory, or a zip member. `label` is the name
    every message uses; `size` may be given up front (a zip member's declared size) so that an
    oversize member is refused before it is decompressed.

    A zip member comes as `opener`, a callable returning a fresh binary stream of it: sniffing
    reads a prefix from a stream (never the whole member) and parsing streams it, so a member's
    bytes are never all held in memory just to look at them."""

    def __init__(self, path: str | Path | None = None, *, data: bytes | None = None,
                 label: str | None = None, size: int | None = None, opener=None) -> None:
        if path is None and data is None and opener is None:
            raise ValueError("Source needs a path, data or an opener")
        self.path = None if path is None else Path(path)
        self._data = data
        self._opener = opener
        self.label = label or str(path)
        self._size = size

    def __str__(self) -> str:
        return self.label

    def __repr__(self) -> str:
        return f"Source({self.label!r})"

    @property
    def name(self) -> str:
        """The base file name (no directories)."""
        return re.split(r"[/\\:]", self.label)[-1] if self.path is None else self.path.name

    @property
    def in_memory(self) -> bool:
        return self.path is None

    def exists(self) -> bool:
        return self.path is None or self.path.is_file()

    def size(self) -> int:
        if self._size is not None:
            return self._size
        if self.path is not None:
            return self.path.stat().st_size
        return len(self.read_bytes())

    def open(self):
        """A fresh binary stream from the start."""
        if self.path is not None:
            return open(self.path, "rb")
        if self._data is not None:
            return io.BytesIO(self._data)
        return self._opener()

    def head(self, n: int = SNIFF_BYTES) -> bytes:
        with self.open() as fh:
            return fh.read(n)

    def read_bytes(self) -> bytes:
        if self._data is not None:
            return self._data
        with self.open() as fh:
            return fh.read()

    def handle(self):
        """What pandas reads from: the path, or a stream."""
        return str(self.path) if self.path is not None else self.open()

    def sibling(self, name: str) -> Source | None:
        """A file with this name in the same directory (disk files only)."""
        if self.path is None:
            return None
        p = self.path.parent / name
        return Source(p) if p.is_file() else None


def as_source(x: str | Path | Source) -> Source:
    return x if isinstance(x, Source) else Source(local_path(x))


def local_path(ref: str | Path) -> Path:
    """`ref` as a path with `~` expanded; a `~name` of no user here is a DataError, not a crash."""
    try:
        return Path(ref).expanduser()
    except RuntimeError:  # Python: "Could not determine home directory."
        user = str(ref).split("/")[0]
        raise DataError(f"{user} is no user's home folder on this machine", file=_shorten(str(ref)),
                        fix=f"check the path; for a folder really named {user}, write ./{ref}") from None


def path_exists(path: Path) -> bool:
    """`path.exists()`, where a path too long for the file system is a DataError saying so."""
    try:
        return path.exists()
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise DataError(f"this is {len(str(path)):,} characters long, too long to be a file's path (the file "
                            "system allows 255 bytes per name), a saved dataset's name (at most 100 characters) "
                            "or a catalog name", file=_shorten(str(path)),
                            fix="check what was passed (a pasted file's contents instead of its path?); run "
                                "`recviz datasets` to see the names that work") from None
        return False


def _shorten(text: str, keep: int = 80) -> str:
    return text if len(text) <= keep else f"{text[:keep]}… ({len(text):,} characters)"


def missing_path_error(path: str | Path) -> DataError:
    return DataError("no such file or directory", file=str(path),
                     fix="check the path (spelling, current directory), or run `recviz datasets` to "
                         "list the datasets RecViz can fetch by name")


def regular_file(ref: str | Path, what: str) -> Path:
    """`ref` as the path of an existing regular file; a DataError naming it when it is missing, a
    folder, or a pipe, device or socket (reading a FIFO would block for ever)."""
    path = local_path(ref)
    if not path_exists(path):
        raise missing_path_error(path)
    if path.is_dir():
        raise DataError(f"this is a folder; {what} come as one file", file=str(path),
                        fix="give the path of the file inside it")
    if not path.is_file():
        raise DataError("this is not a regular file (a pipe, device or socket)", file=str(path),
                        fix="save it to a regular file first and give its path")
    return path


# ---- file-level checks ---------------------------------------------------------------------------
def check_size(src: Source) -> None:
    limit = max_file_bytes()
    size = src.size()
    if size > limit:
        raise DataError(
            f"the file is {human_bytes(size)}{f' ({size:,} bytes)' if size >= 1024 else ''}, over RecViz's limit of "
            f"{human_bytes(limit)}; it was not read",
            file=src.label,
            fix="shrink it first: k-core filter it (drop users/items with few interactions) or sample "
                f"users with a script, then load the smaller file; or raise the limit with "
                f"{MAX_FILE_BYTES_ENV}=<bytes> if this machine has the memory")


def check_file(src: Source, *, encoding: str = "utf-8") -> str:
    """Exists, not too large, and text. Returns the encoding to read with: `encoding`, or
    'latin-1' for a text file whose first 64 KiB are not valid UTF-8 (an old 8-bit export)."""
    if not src.exists():
        raise missing_path_error(src.label)
    if src.path is not None and not os.access(src.path, os.R_OK):
        raise DataError("the file cannot be read (permission denied)", file=src.label,
                        fix="check the file's permissions")
    check_size(src)
    head = src.head(SNIFF_BYTES)
    kind = binary_kind(head)
    if kind is None and encoding.replace("_", "-").lower() in ("utf-8", "utf8"):
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as e:
            if e.start < len(head) - 4:  # not just a character cut at the 64 KiB boundary
                if _control_ratio(head) > 0.05:
                    kind = "undecodable bytes"
                else:
                    encoding = "latin-1"
    if kind is not None:
        raise DataError(
            f"this looks like a binary file ({kind}), not a text table",
            file=src.label,
            fix="give RecViz the plain-text data file: unpack a .gz/.bz2/.xz first (a .zip can be "
                "given as it is), or export a spreadsheet / parquet file as CSV")
    check_shape(src, head)
    return encoding


def check_shape(src: Source, head: bytes) -> None:
    """Refuse, before any parser allocates, a table whose lines are longer than `LINE_BYTES` or
    have more than `COLUMNS` fields (in any candidate delimiter), judged on the sniffed prefix."""
    lines = head.split(b"\n")
    longest = LINE_BYTES.value()
    for k, line in enumerate(lines, start=1):  # the last piece may be cut: it is still that long
        if len(line) > longest:
            raise DataError(f"line {k} is longer than {human_bytes(longest)}: this is not a table of "
                            "interactions", file=src.label, row=k,
                            fix="give RecViz a table with one interaction per line")
    limit = COLUMNS.value()
    for k, line in enumerate(lines[:SNIFF_LINES], start=1):
        fields = 1 + max(line.count(d.encode()) for d in (*DELIMITER_CANDIDATES, " "))
        if fields > limit:
            raise DataError(f"line {k} has about {fields:,} columns, more than RecViz reads ({limit:,})",
                            file=src.label, row=k,
                            fix=f"check the delimiter and the file; a table with that many columns needs "
                                f"{MAX_COLUMNS_ENV}=<columns>")


def binary_kind(head: bytes) -> str | None:
    """None for text; otherwise a guess at what the bytes are."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if b"\x00" in head:
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            return "UTF-16 text; save it as UTF-8"
        return "it contains NUL bytes: gzip? xlsx? parquet?"
    return None


def _control_ratio(head: bytes) -> float:
    if not head:
        return 0.0
    arr = np.frombuffer(head, dtype=np.uint8)
    ctrl = (arr < 32) & (arr != 9) & (arr != 10) & (arr != 13)
    return float(ctrl.mean())


def head_text(src: Source, encoding: str = "utf-8", lines: int = SNIFF_LINES) -> list[str]:
    """The first non-blank lines (decoded leniently) for sniffing."""
    text = src.head(SNIFF_BYTES).decode(encoding, errors="replace").lstrip("\ufeff")
    out = [ln for ln in text.splitlines()[: lines + 1] if ln.strip()]
    if len(text) >= SNIFF_BYTES - 4 and len(out) > 1:
        out = out[:-1]  # the last line may be cut
    return out[:lines]


def sniff_delimiter(lines: list[str] | str, default: str | None = None) -> str | None:
    """Guess the delimiter of some lines: '::' when every line has it, else csv.Sniffer over
    `, \\t ; |`, checked by a consistency count (the same number per line, > 0)."""
    if isinstance(lines, str):
        lines = [ln for ln in lines.splitlines() if ln.strip()][:SNIFF_LINES]
    if not lines:
        return default
    if all("::" in ln for ln in lines) and len({ln.count("::") for ln in lines}) == 1:
        return "::"
    counts = {d: [ln.count(d) for ln in lines] for d in DELIMITER_CANDIDATES}
    consistent = [d for d, c in counts.items() if min(c) > 0 and len(set(c)) == 1]
    try:
        sniffed = csv.Sniffer().sniff("\n".join(lines), delimiters="".join(DELIMITER_CANDIDATES)).delimiter
    except csv.Error:
        sniffed = None
    if sniffed in consistent or (sniffed and not consistent and min(counts[sniffed]) > 0):
        return sniffed
    if consistent:
        # several consistent candidates: the one that splits into the most columns, tab first on ties
        return max(consistent, key=lambda d: (counts[d][0], d == "\t", d == ","))
    present = [d for d in DELIMITER_CANDIDATES if min(counts[d]) > 0]
    if present:
        return max(present, key=lambda d: sum(counts[d]))
    return default
