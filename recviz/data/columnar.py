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
BATCH_ROWS = 1 << 20


def items_path(path: Path) -> Path:
    return path.with_name(path.name.replace(".parquet", ".items.parquet"))


def save(data: Interactions, path: str | Path, fingerprint) -> Path:
    """Write `data` to `path` (+ its items file), atomically, and check that it reads back the same
    (`fingerprint(data)` on both sides). Written `BATCH_ROWS` rows at a time (the raw ids of a
    batch as text), so that saving takes memory of a batch, not of the table as text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if data.given_test is not None:
        raise DataError("this dataset carries a given test set (the NCF paper's files), which the Parquet "
                        "layout does not hold", fix="save it without --to parquet (the default npz keeps it)")
    path = Path(path)
    header = {"name": data.name, "source": data.source, "behaviors": list(data.behaviors), "meta": data.meta}
    fields = [("user", pa.string()), ("item", pa.string())]
    fields += [(c, t) for c, t in (("rating", pa.float32()), ("timestamp", pa.int64())) if getattr(data, c) is not None]
    if data.behavior is not None:
        fields.append(("behavior", pa.dictionary(pa.int8(), pa.string())))
    schema = pa.schema(fields, metadata={META_KEY: json.dumps(header, default=str).encode()})
    names = pa.array(list(data.behaviors), pa.string())

    def batch(s: int, e: int):
        columns = [pa.array(data.user_ids[data.user[s:e]], pa.string()),
                   pa.array(data.item_ids[data.item[s:e]], pa.string())]
        columns += [pa.array(getattr(data, c)[s:e]) for c in ("rating", "timestamp") if getattr(data, c) is not None]
        if data.behavior is not None:
            columns.append(pa.DictionaryArray.from_arrays(pa.array(data.behavior[s:e], pa.int8()), names))
        return pa.table(columns, schema=schema)

    def write(fh) -> None:
        with pq.ParquetWriter(fh, schema, compression="zstd") as writer:
            for s in range(0, max(len(data), 1), BATCH_ROWS):
                writer.write_table(batch(s, min(s + BATCH_ROWS, len(data))))

    files = [(path, write)]
    if data.items is not None and len(data.items):
        items = data.items.fillna("").astype(str).assign(item=data.item_ids.astype(str))
        table = pa.Table.from_pandas(items, preserve_index=False)
        files.append((items_path(path), lambda fh: pq.write_table(table, fh, compression="zstd")))
    for target, content in files:
        write_atomic(target, content)
    if fingerprint(load(path)) != fingerprint(data):
        for target, _ in files:
            target.unlink(missing_ok=True)
        raise DataError("this dataset does not read back identically from Parquet (its internal ids were "
                        "not made from its raw ids in their sorted order)",
                        fix="save it without --to parquet (the default npz keeps it exactly)")
    return path


def load(path: str | Path) -> Interactions:
    """A version written by `save`, read a batch at a time (`recviz.data.formats.chunked`): the raw
    ids are re-indexed exactly as every reader does."""
    import pyarrow.parquet as pq

    from recviz.data.formats import chunked
    from recviz.data.formats.frame import parquet_footer

    path = Path(path)
    parquet_footer(path)  # its row groups and footer bounded before a byte of data is read
    if items_path(path).exists():
        parquet_footer(items_path(path))
    parquet = pq.ParquetFile(path)
    header = json.loads(parquet.schema_arrow.metadata[META_KEY])
    items = None
    if items_path(path).exists():
        items = pq.read_table(items_path(path)).to_pandas().set_index("item").replace("", np.nan)

    def batches():
        start = 0
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
            frame = batch.to_pandas()
            if "behavior" in frame:
                frame["behavior"] = frame["behavior"].astype(str)
            yield frame, np.arange(start + 1, start + len(frame) + 1)
            start += len(frame)

    return chunked.assemble(batches(), to_roles=lambda frame: frame, file=str(path), dedup="keep",
                            behaviors=tuple(header["behaviors"]) or None, expected_rows=parquet.metadata.num_rows,
                            items=items, name=header["name"], source=header["source"],
                            meta=header.get("meta", {}))
