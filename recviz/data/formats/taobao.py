"""Taobao / Tianchi `UserBehavior.csv`: comma-separated, no header, five columns
user_id, item_id, category_id, behavior_type (pv, cart, fav, buy), timestamp (Unix seconds).

Repeated (user, item, behaviour) rows are normal here (a user views an item many times), so the
default duplicate rule is 'last': keep the latest row of each (user, item, behaviour) by timestamp,
the later line on equal timestamps."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recviz.data.interactions import Interactions
from recviz.data.formats import chunked
from recviz.data.formats.delimited import estimate_rows, iter_delimited
from recviz.data.formats.textfile import Source, as_source, check_file, head_text
from recviz.data.validate import check_dedup, default_name

BEHAVIORS = ("pv", "cart", "fav", "buy")
_COLUMNS = ("user", "item", "category", "behavior", "timestamp")


def looks_like_taobao(lines: list[str]) -> bool:
    """Five comma-separated fields whose 4th is a Taobao behaviour, on every sampled line (a
    header line with the column names is allowed first)."""
    rows = [ln.split(",") for ln in lines if ln.strip()]
    if rows and rows[0][3:4] and rows[0][3].strip().lower() in ("behavior_type", "behaviour_type", "behavior"):
        rows = rows[1:]
    return bool(rows) and all(len(r) == 5 and r[3].strip() in BEHAVIORS for r in rows)


def read_taobao(
    path: str | Path | Source,
    *,
    dedup: str | None = None,
    name: str | None = None,
    source: str | Path | None = None,
) -> Interactions:
    """Read UserBehavior.csv, streamed (`chunked`: the full log is 100M rows). The item table has
    one row per item with its category id as `genres` — the one on the item's last line (an item
    has one category in practice) — and no titles: the data set is anonymised."""
    src = as_source(path)
    dedup = check_dedup(dedup, "last")
    encoding = check_file(src)
    first = head_text(src, encoding, lines=1)
    header = bool(first) and not first[0].split(",")[0].strip().lstrip("-").isdigit()
    chunks = iter_delimited(src, sep=",", header=header, encoding=encoding, min_columns=5, str_columns=[0, 1, 2, 3],
                            what="Taobao UserBehavior.csv (user_id,item_id,category_id,behavior_type,timestamp)")

    def to_roles(raw: pd.DataFrame) -> pd.DataFrame:
        frame = raw.iloc[:, :5]
        frame.columns = list(_COLUMNS)
        return frame

    meta = {"format": "taobao", "files": [src.label], "dedup": dedup}
    return chunked.assemble(chunks, to_roles=to_roles, file=src.label, int_ids=True, behaviors=BEHAVIORS,
                            dedup=dedup, dup_keys=("user", "item", "behavior"), item_column="category",
                            columns={"user": "user_id", "item": "item_id", "behavior": "behavior_type",
                                     "timestamp": "timestamp"},
                            expected_rows=estimate_rows(src, encoding), name=name or default_name(src, ("UserBehavior",)),
                            source=str(source if source is not None else src.label), meta=meta)
