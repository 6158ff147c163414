"""A saved dataset version as Parquet (`recviz import --to parquet`): for large logs, column-wise and
compressed on disk, and readable by any tool that reads Parquet.

Layout: `vN.parquet` holds one row per interaction with the raw user and item ids (as text, so an id
such as "0042" keeps its spelling) and rating / timestamp / behaviour where the data has them; the
header (name, source, behaviour names, provenance) sits in the file's metadata under `recviz`. Item
titles and genres, when known, go to `vN.items.parquet`. Reading re-indexes the raw ids exactly as
every reader does (`Interactions.from_frame`), so the contiguous ids come back the same; `save`
reads the file back and compares fingerprints before the version counts, so a dataset that would
not come back identical is refused rather than silently changed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from recviz.data.interactions import Interactions
from recviz.errors import DataError
from recviz.files import write_atomic

META_KEY = b"recviz"


def items_path(path: Path) -> Path:
    return path.with_name(path.name.replace(".parquet", ".items.parquet"))


def save(data: Interactions, path: str | Path, fingerprint) -> Path:
    """Write `data` to `path` (+ its items file), atomically, and check that it reads back the same
    (`fingerprint(data)` on both sides)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if data.given_test is not None:
        raise DataError("this dataset carries a given test set (the NCF paper's files), which the Parquet "
                        "layout does not hold", fix="save it without --to parquet (the default npz keeps it)")
    path = Path(path)
    columns = {"user": pa.array(data.user_ids[data.user]), "item": pa.array(data.item_ids[data.item])}
    if data.rating is not None:
        columns["rating"] = pa.array(data.rating)
    if data.timestamp is not None:
        columns["timestamp"] = pa.array(data.timestamp)
    if data.behavior is not None:
        columns["behavior"] = pa.DictionaryArray.from_arrays(data.behavior, list(data.behaviors))
    header = {"name": data.name, "source": data.source, "behaviors": list(data.behaviors), "meta": data.meta}
    table = pa.table(columns).replace_schema_metadata({META_KEY: json.dumps(header, default=str).encode()})
    files = [(path, table)]
    if data.items is not None and len(data.items):
        items = data.items.fillna("").astype(str).assign(item=data.item_ids.astype(str))
        files.append((items_path(path), pa.Table.from_pandas(items, preserve_index=False)))
    for target, tab in files:
        write_atomic(target, lambda fh, tab=tab: pq.write_table(tab, fh, compression="zstd"))
    if fingerprint(load(path)) != fingerprint(data):
        for target, _ in files:
            target.unlink(missing_ok=True)
        raise DataError("this dataset does not read back identically from Parquet (its internal ids were "
                        "not made from its raw ids in their sorted order)",
                        fix="save it without --to parquet (the default npz keeps it exactly)")
    return path


def load(path: str | Path) -> Interactions:
    """A version written by `save`."""
    import pyarrow.parquet as pq

    from recviz.data.formats.frame import parquet_footer

    path = Path(path)
    parquet_footer(path)
    if items_path(path).exists():
        parquet_footer(items_path(path))
    table = pq.read_table(path)
    header = json.loads(table.schema.metadata[META_KEY])
    frame = table.to_pandas()
    if "behavior" in frame:
        frame["behavior"] = frame["behavior"].astype(str)
    items = None
    if items_path(path).exists():
        items = pq.read_table(items_path(path)).to_pandas().set_index("item").replace("", np.nan)
    data = Interactions.from_frame(frame, name=header["name"], source=header["source"], items=items,
                                   behaviors=tuple(header["behaviors"]) or None, meta=header.get("meta", {}))
    return data
