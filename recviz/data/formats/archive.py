"""Zip members as streams, under one budget of unpacked bytes per archive.

Why: a 10 MB zip can unpack to a gigabyte (or far more). Members are never unpacked whole to be
sniffed (`Source.head` reads a prefix from a stream) nor extracted beside the user's file; and the
bytes unpacked from one zip, all members RecViz reads together, may not exceed `ARCHIVE_BYTES`
(`RECVIZ_MAX_ARCHIVE_BYTES` raises it).

The budget is enforced twice. When a member is first asked for, its declared size is admitted
against what is left: Python's `zipfile` never yields more than a member's declared size (it stops
there and the CRC check fails), so that sum is a true upper bound and a bomb is refused before a
byte of it is decompressed. Then, while a member streams, the bytes actually produced are counted
(the furthest point read of each member, so re-reading a prefix costs nothing), so the bound holds
even for a reader that does not trust the directory.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from recviz.limits import ARCHIVE_BYTES, SNIFF_BYTES, human_bytes
from recviz.data.formats.textfile import Source, check_size
from recviz.errors import DataError

_UNPACK_FIX = "download the zip again, or unpack it with another tool and load the folder"


class Archive:
    """An open zip (a context manager): its data members, each as a streaming `Source`."""

    def __init__(self, path: Path):
        self.path = path
        check_size(Source(path))
        try:
            self.zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as e:
            raise DataError(f"this is not a readable zip file ({e})", file=str(path),
                            fix="download it again, or unpack it and load the folder") from None
        self.infos = {i.filename: i for i in self.zf.infolist()
                      if not i.is_dir() and not i.filename.startswith("__MACOSX/")
                      and not PurePosixPath(i.filename).name.startswith("._")}
        self.limit = ARCHIVE_BYTES.value()
        self._declared: dict[str, int] = {}  # admitted members: declared size
        self._read: dict[str, int] = {}  # the furthest byte read of each member

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc) -> None:
        self.zf.close()

    def source(self, rel: str) -> Source:
        """The member `rel`, admitted against the archive's budget by its declared size."""
        info = self.infos[rel]
        label = f"{self.path}:{rel}"
        if info.flag_bits & 0x1:
            raise DataError("this zip member is encrypted", file=label,
                            fix="unpack the zip with its password and load the folder")
        if rel not in self._declared:
            total = sum(self._declared.values()) + info.file_size
            if total > self.limit:
                self._refuse(label, total, declared=True)
            self._declared[rel] = info.file_size
        return Source(label=label, size=info.file_size, opener=lambda: self._open(rel, label))

    def _open(self, rel: str, label: str) -> io.BufferedReader:
        try:
            raw = self.zf.open(rel)
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as e:
            raise DataError(f"could not unpack {rel} from the zip ({e})", file=str(self.path),
                            fix=_UNPACK_FIX) from None
        return io.BufferedReader(_Counted(self, rel, label, raw), buffer_size=SNIFF_BYTES)

    def charge(self, rel: str, upto: int, label: str) -> None:
        """Member `rel` has been read up to byte `upto`: refuse once the archive is over budget."""
        if upto > self._read.get(rel, 0):
            self._read[rel] = upto
            total = sum(self._read.values())
            if total > self.limit:
                self._refuse(label, total, declared=False)

    def _refuse(self, label: str, total: int, *, declared: bool) -> None:
        how = "would unpack to" if declared else "unpacked to more than"
        raise DataError(
            f"this zip {how} {human_bytes(total)} ({total:,} bytes), over RecViz's limit of "
            f"{human_bytes(self.limit)} per archive; it was not unpacked",
            file=label,
            fix=f"a zip that small holding that much is suspect; if it is real data, unpack it and load the "
                f"file, or raise the limit with {ARCHIVE_BYTES.env}=<bytes> if this machine has the memory")


class _Counted(io.RawIOBase):
    """A member's decompressed stream that reports its position to the archive's budget and turns
    a damaged member (bad CRC, truncated data) into a `DataError`."""

    def __init__(self, archive: Archive, rel: str, label: str, raw):
        self.archive, self.rel, self.label, self.raw, self.pos = archive, rel, label, raw, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self.raw.read(len(buffer))
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as e:
            raise DataError(f"could not unpack {self.rel} from the zip ({e})", file=str(self.archive.path),
                            fix=_UNPACK_FIX) from None
        n = len(data)
        buffer[:n] = data
        self.pos += n
        self.archive.charge(self.rel, self.pos, self.label)
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()
