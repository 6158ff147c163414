"""A plain-text table whose columns are as wide as their widest cell, so a long cell (a protocol
label carrying ", split seed 3") widens its column instead of pushing the rest out of line."""

from __future__ import annotations

from collections.abc import Sequence


def text_table(headers: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[bool]) -> list[str]:
    """Lines of a table: `headers`, then each row; column i right-aligned where `right[i]`, each
    column as wide as its widest cell (header included), one space between columns. Trailing
    spaces are dropped so the last column does not pad the line."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(headers))]
    return [" ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(line, widths, right)).rstrip()
            for line in cells]
