"""Where an unexpected error goes: its full traceback into a log file under the data directory,
and one short sentence to the person, naming that file. Used by the CLI's and the app's top-level
error boundary, so no traceback ever reaches a user.

If the data directory cannot be written (read-only, full disk), the log goes to a directory of
this user's own in the system's temporary directory (`recviz-<uid>`, mode 0700, refused when it is a
link, another user's or open to others), and the message says so by naming that path. Log files are
opened without following links, so nobody who can write the shared temporary directory can make
RecViz append to a file of the user's.
"""

from __future__ import annotations

import os
import stat
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
    for root in (_data_dir, _private_temp):
        try:
            folder = root() / LOG_DIR
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            path = folder / f"errors-{time.strftime('%Y%m%d')}.log"
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(text)
            return path
        except OSError:
            continue
    return None


def _private_temp() -> Path:
    """`recviz-<uid>` in the system's temporary directory, made 0700 for this user; an OSError
    when what is there is a link, not a directory, someone else's, or open to others."""
    path = Path(tempfile.gettempdir()) / f"recviz-{os.getuid()}"
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise OSError(f"{path} is not a private directory of this user")
    return path


def message(exc: BaseException, log: Path | None) -> str:
    """'internal error (KeyError: 'x'); the full traceback is in …'."""
    first = (str(exc).splitlines() or [""])[0][:300]
    what = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    where = f"; the full traceback is in {log}" if log else "; no log file could be written"
    return f"internal error ({what}){where}. Please report it with that file."


def _data_dir() -> Path:
    from recviz import paths

    return paths.home()
