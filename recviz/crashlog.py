"""Where an unexpected error goes: its full traceback into a log file under the data directory,
and one short sentence to the person, naming that file. Used by the CLI's and the app's top-level
error boundary, so no traceback ever reaches a user.

If the data directory cannot be written (read-only, full disk), the log goes to the system's
temporary directory instead, and the message says so by naming that path.
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from pathlib import Path

LOG_DIR = "logs"


def write(exc: BaseException, where: str) -> Path | None:
    """Append `exc`'s traceback to today's log file; returns the file, or None if nothing could be
    written anywhere."""
    text = (f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {where} (pid {os.getpid()})\n"
            + "".join(traceback.format_exception(exc)))
    for root in (_data_dir(), Path(tempfile.gettempdir()) / "recviz"):
        if root is None:
            continue
        try:
            folder = root / LOG_DIR
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"errors-{time.strftime('%Y%m%d')}.log"
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(text)
            return path
        except OSError:
            continue
    return None


def message(exc: BaseException, log: Path | None) -> str:
    """'internal error (KeyError: 'x'); the full traceback is in …'."""
    first = (str(exc).splitlines() or [""])[0][:300]
    what = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    where = f"; the full traceback is in {log}" if log else "; no log file could be written"
    return f"internal error ({what}){where}. Please report it with that file."


def _data_dir() -> Path | None:
    try:
        from recviz import paths

        return paths.home()
    except OSError:
        return None
