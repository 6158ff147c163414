"""Taobao / Tianchi `UserBehavior.csv`: comma-separated, no header, five columns
user_id, item_id, category_id, behavior_type (pv, cart, fav, buy), timestamp (Unix seconds).

Repeated (user, item, behaviour) rows are normal here (a user views an item many times), so the
default duplicate rule is 'last': keep the latest row of each (user, item, behaviour) by timestamp,
the later line on equal timestamps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recviz.data.interactions import Interactions
from recviz.data.formats.delimited import read_delimited
from recviz.data.formats.textfile import Source, as_source, check_file, head_text
from recviz.data.validate import check_dedup, default_name, validate_with_lines

BEHAVIORS = ("pv", "cart", "fav", "buy")


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
    """Read UserBehavior.csv. The item table has one row per item with its category id as
    `genres` (no titles: the data set is anonymised)."""
    src = as_source(path)
    dedup = check_dedup(dedup, "last")
    encoding = check_file(src)
    first = head_text(src, encoding, lines=1)
    header = bool(first) and not first[0].split(",")[0].strip().lstrip("-").isdigit()
    raw, line_of = read_delimited(src, sep=",", header=header, min_columns=5, str_columns=[0, 1, 2, 3],
                                  what="Taobao UserBehavior.csv (user_id,item_id,category_id,behavior_type,timestamp)")
    raw = raw.iloc[:, :5]
    raw.columns = ["user", "item", "category", "behavior", "timestamp"]
    df, kept_lines = validate_with_lines(
        raw[["user", "item", "behavior", "timestamp"]], file=src.label, line_of=line_of, int_ids=True,
        behaviors=BEHAVIORS, dedup=dedup, dup_keys=("user", "item", "behavior"),
        columns={"user": "user_id", "item": "item_id", "behavior": "behavior_type", "timestamp": "timestamp"})
    # category of each item: the one on its last line (an item has one category in practice)
    cat = pd.DataFrame({"item": raw["item"].astype(str).str.strip(),
                        "genres": raw["category"].astype(str).str.strip().replace("nan", np.nan)})
    items = cat.drop_duplicates("item", keep="last").set_index("item")[["genres"]]
    meta = {"format": "taobao", "files": [src.label], "dedup": dedup}
    if df.attrs.get("duplicates_dropped"):
        meta["duplicates_dropped"] = int(df.attrs["duplicates_dropped"])
    return Interactions.from_frame(df, name=name or default_name(src, ("UserBehavior",)),
                                   source=str(source if source is not None else src.label),
                                   items=items, behaviors=BEHAVIORS, meta=meta)
