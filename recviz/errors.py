"""Errors meant for people.

Every error RecViz raises on bad input is a `RecvizError`: it says what is wrong, where (file, row,
column) and how to fix it. The CLI prints it without a traceback; the app shows it inline.
"""

from __future__ import annotations


class RecvizError(Exception):
    """A problem the user can fix. `str(err)` is a complete, readable message."""

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = None if file is None else str(file)
        self.row = row
        self.column = column
        self.fix = fix
        super().__init__(self.message())

    def message(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.row is not None:
            where.append(f"line {self.row}")
        if self.column:
            where.append(f"column '{self.column}'")
        text = (", ".join(where) + ": " if where else "") + self.problem
        if self.fix:
            text += f"\n  Fix: {self.fix}"
        return text


class StoreError(RecvizError):
    """The run store cannot be used as it is (damaged, full, not writable). Unlike other
    RecvizErrors its cause is also logged with its traceback (`recviz.crashlog`), since someone
    may need to look closer."""


class DataError(RecvizError):
    """A data file that is not what it claims to be (format, values, size)."""


class DatasetUnavailable(RecvizError):
    """A catalog dataset that is neither cached nor downloadable right now."""


class ProtocolError(RecvizError):
    """Data that cannot feed the requested evaluation protocol."""


class ModelError(RecvizError):
    """A model that cannot be trained on this data or with these options."""


class Cancelled(Exception):
    """Training was asked to stop (`should_stop()` turned true). The best weights seen so far are
    back in the model; `history` holds the epochs that finished, so whoever records the run can
    store them and mark it cancelled. Not a RecvizError: nothing went wrong."""

    def __init__(self, history: list[dict]):
        super().__init__(f"training cancelled after {len(history)} finished epoch(s)")
        self.history = history
