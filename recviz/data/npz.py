"""Arrays on disk without pickle, written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recviz.files import write_atomic


def check(path: str | Path) -> None:
    """Refuse an .npz whose arrays would unpack to more than the limits allow, from the zip's
    directory and each array's header, before anything is loaded: a 2 MB file can otherwise ask
    for gigabytes (a zip bomb, or a header that claims a huge shape). Raises ValueError (the
    caller words it: a damaged file); OSError and zipfile.BadZipFile pass through."""
    import zipfile

    from recviz.limits import NPZ_MEMBER_BYTES, NPZ_RATIO

    most, ratio = NPZ_MEMBER_BYTES.value(), NPZ_RATIO.value()
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if info.file_size > most:
                raise ValueError(f"{info.filename} unpacks to {info.file_size:,} bytes, more than the {most:,} "
                                 "a stored array may have (RECVIZ_MAX_ARRAY_BYTES raises it)")
            if info.file_size > 16 << 20 and info.file_size > ratio * max(info.compress_size, 1):
                raise ValueError(f"{info.filename} unpacks to {info.file_size:,} bytes from "
                                 f"{info.compress_size:,}: not an array RecViz wrote")
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                shape, _, dtype = read(fh)
                if dtype.hasobject:
                    raise ValueError(f"{info.filename} holds Python objects, not numbers or text")
                claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if claimed > info.file_size:
                    raise ValueError(f"{info.filename} claims {claimed:,} bytes of array in {info.file_size:,}")


def load(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of a stored .npz (no pickles), its sizes checked first (`check`)."""
    check(path)
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


# zlib's fastest level: `np.savez_compressed` (level 6) spent 12.4 of a 10M-row split's 19 s
# compressing its 77 MB of row indices and candidates; level 1 takes 2.0 s for the same size
COMPRESS_LEVEL = 1


def save_atomic(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write a compressed .npz next to `path`, then rename it into place: a crash never leaves a
    half-written file, and two processes writing the same file (two workers drawing the same
    split) never interleave, since each writes its own temporary file. The file is what
    `np.savez_compressed` writes (an .npy per array in a deflated zip, read by `np.load`), at
    `COMPRESS_LEVEL`."""
    import zipfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(fh) -> None:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL,
                             allowZip64=True) as zf:
            for name, array in arrays.items():
                with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)

    return write_atomic(path, write)
