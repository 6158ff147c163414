"""Messages as the app's pages say them. A fix written for the CLI or the API ("--address local",
"pass dedup='last' (CLI: --dedup last)") names the page's own widget instead; Ray's and other
tools' commands, in backticks, stay as they are."""

from __future__ import annotations

import re

from recviz.config import RUN_OPTIONS
from recviz.data.validate import DEDUP_FIX, DEDUP_LABEL

RAY_ADDRESS_LABEL = "Ray address"  # the Train page's field for a Ray executor's address
# whole phrases said differently on a page
PHRASES = ((DEDUP_FIX, f"set “{DEDUP_LABEL}” to last to keep the latest row, or first to keep the earliest"),)
FLAG = re.compile(r"--([a-z][a-z-]*)(?: (?!-)([^\s,;)`]+))?")


def labels() -> dict[str, str]:
    """CLI flag (without --) → the page's label for it."""
    out = {o.name.replace("_", "-"): o.label for o in RUN_OPTIONS if o.label}
    return {**out, "address": RAY_ADDRESS_LABEL, "dedup": DEDUP_LABEL}


def for_page(text: str) -> str:
    """`text` with CLI flags the pages have a widget for said by the widget's label:
    "--address local" → "“Ray address” set to local"; other flags as they are."""
    for cli, page in PHRASES:
        text = text.replace(cli, page)
    names = labels()

    def say(m: re.Match) -> str:
        label = names.get(m.group(1))
        if label is None:
            return m.group(0)
        return f"“{label}” set to {m.group(2)}" if m.group(2) else f"“{label}”"

    parts = text.split("`")  # odd parts are quoted commands: left alone
    return "`".join(FLAG.sub(say, p) if k % 2 == 0 else p for k, p in enumerate(parts))
