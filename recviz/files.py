"""Files RecViz writes: atomically and durably, and JSON the same way everywhere.

Every file RecViz keeps (run artifacts, stored datasets and their index, splits, downloads, the
catalog's marker, settings) goes through `write_atomic`: written under a temporary name beside its
target, flushed to disk, renamed over the target, and the folder flushed too, so after a crash or a
power cut the file is either the old one or the whole new one, and two writers of the same file
never interleave. Imports nothing from RecViz at import time: every layer may use it.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any, BinaryIO, Callable

Content = bytes | str | Callable[[BinaryIO], Any]


def write_atomic(path: str | Path, content: Content, *, suffix: str = ".tmp") -> Path:
    """Make `content` the file `path`, atomically and durably; returns `path`.

    `content` is bytes, text (UTF-8), or a function that writes to the binary file handle it is
    given (`np.savez`, `torch.save`, `pyarrow.parquet.write_table`, a download's stream). Whatever
    it raises propagates, and the temporary file (`.NAME.RANDOM<suffix>` beside `path`) is removed:
    a failure leaves `path` as it was and nothing beside it. The folder must exist."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")
    try:
        with open(tmp, "xb") as fh:
            if callable(content):
                content(fh)
            else:
                fh.write(content.encode() if isinstance(content, str) else content)
            fh.flush()
            os.fsync(fh.fileno())
        move_into_place(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def move_into_place(tmp: str | Path, path: str | Path) -> None:
    """Rename `tmp` over `path` (same folder) and flush the folder, so the rename survives a crash:
    the last step of `write_atomic`, and of a drain lock taken over (`experiments.launch`), whose
    new file must be locked before anyone can open it under its name."""
    os.replace(tmp, path)
    folder = os.open(Path(path).parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def json_text(obj: Any, *, indent: int | None = None) -> str:
    """`obj` as JSON; numpy scalars and arrays become numbers and lists, anything else unknown its str."""
    return json.dumps(obj, indent=indent, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))


def write_json(path: str | Path, obj: Any, *, indent: int | None = None) -> Path:
    """`obj` as the JSON file `path` (`json_text`), written with `write_atomic`; returns `path`."""
    return write_atomic(path, json_text(obj, indent=indent))


def read_json(path: str | Path, max_bytes: int | None = None) -> Any:
    """The JSON file `path`. Raises OSError (missing, unreadable), UnicodeDecodeError or ValueError
    (not JSON, or larger than `max_bytes`: checked before a byte is read; default: the
    `JSON_BYTES` limit) for the caller to word."""
    if max_bytes is None:
        from recviz.limits import JSON_BYTES

        max_bytes = JSON_BYTES.value()
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > max_bytes:
            raise ValueError(f"it is {size:,} bytes, more than the {max_bytes:,} a stored JSON file may have "
                             "(RECVIZ_MAX_JSON_BYTES raises it)")
        data = fh.read(max_bytes + 1)  # a file that grows meanwhile is still bounded
    if len(data) > max_bytes:
        raise ValueError(f"it is more than the {max_bytes:,} bytes a stored JSON file may have")
    return json.loads(data.decode("utf-8"))
