"""What ended a run, said so a person can act on it: disk full, a data directory or run store that
cannot be written, out of memory — recognised from the exception (and what caused it) wherever
training raised it. Deaths the worker cannot report itself (a signal, the OOM killer) are named by
the reaper (`recviz.experiments.liveness`).
"""

from __future__ import annotations

import errno
import sqlite3
import traceback
from pathlib import Path

from recviz.errors import RecvizError


def cause(exc: BaseException) -> str | None:
    """The known cause of `exc` (or of an exception it was raised from), in one sentence, or None."""
    for e in _chain(exc):
        if isinstance(e, MemoryError):
            return ("out of memory (MemoryError): the model or the data did not fit; try a smaller batch size "
                    "or embedding size, or k-core filter the data")
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            where = f" while writing {e.filename}" if e.filename else ""
            return (f"disk full: no space left on the device{where}; free some space under the data directory "
                    f"({_home()}) and try again")
        if isinstance(e, OSError) and e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            where = e.filename or _home()
            return (f"cannot write {where} ({e.strerror or e}): the data directory is not writable; make it "
                    f"writable (or point RECVIZ_HOME at one that is) and try again")
        if isinstance(e, sqlite3.OperationalError):
            text = str(e).lower()
            if "disk is full" in text or "disk i/o error" in text:
                return (f"disk full: the run store ({_home() / 'runs.db'}) could not be written ({e}); free "
                        "some space and try again")
            if "readonly" in text or "read-only" in text or "unable to open" in text:
                return (f"the run store ({_home() / 'runs.db'}) is not writable ({e}); make the data directory "
                        "writable and try again")
    return None


def describe(exc: BaseException, log_path: Path | None = None) -> str:
    """The error text stored with a failed run: a RecvizError's own message; otherwise the known
    cause (if any), the exception and the last few frames, pointing to the full traceback in the log."""
    if isinstance(exc, RecvizError):
        return str(exc)
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = [f"  at {Path(f.filename).name}:{f.lineno} in {f.name}: {f.line or ''}".rstrip() for f in frames]
    tail = [f"  (full traceback in {log_path})"] if log_path else []
    known = cause(exc)
    return "\n".join([*([known] if known else []), f"{type(exc).__name__}: {exc}", *where, *tail])


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _home() -> Path:
    from recviz import paths

    return paths.root()
