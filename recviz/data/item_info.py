"""Item titles and genres from a file of their own, beside the interactions or added later.

Interaction logs rarely carry titles; without them every list reads "item 2492". MovieLens ships
them beside its ratings (`u.item`, `movies.dat`, `movies.csv`), and those are read by their own
readers; any other file is a delimited table with a header naming an id column and a title column
(genres optional, several joined by "|"):

    item_id,title,genres
    1036,Die Hard (1988),Action|Thriller

Titles are matched to items by raw id, so they describe every version of a saved dataset (a new
version keeps its item ids), and a saved dataset can get titles long after it was saved: they are
kept beside its versions as `items.csv`, not inside them, and change no version's fingerprint.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pandas as pd

from recviz import limits
from recviz.data.formats import movielens
from recviz.data.formats.delimited import read_delimited
from recviz.data.formats.textfile import Source, head_text, regular_file, sniff_delimiter
from recviz.data.interactions import Interactions
from recviz.errors import DataError
from recviz.files import write_atomic

ID_COLUMNS = ("item", "item_id", "itemid", "movieid", "movie_id", "product_id", "asin", "id")
TITLE_COLUMNS = ("title", "name", "item_name", "movie_title", "product_title")
GENRE_COLUMNS = ("genres", "genre", "categories", "category", "tags")
FILE = "items.csv"  # beside a saved dataset's versions
HOW = ("a table with a header naming the item id column (item, item_id, movieId, …) and a title column "
       "(title or name), genres optional — or MovieLens' u.item, movies.dat or movies.csv")


def read(path: str | Path) -> pd.DataFrame:
    """The titles (and genres) in `path`, indexed by raw item id (str), columns `title`, `genres`."""
    src = path if isinstance(path, Source) else Source(regular_file(path, "item titles"))
    name = Path(src.label).name.lower()
    if name == "u.item":
        return movielens.read_ml100k_items(src)
    if name == "movies.dat":
        return movielens.read_ml1m_movies(src)
    lines = head_text(src)
    sep = sniff_delimiter(lines, default=",")
    raw, _ = read_delimited(src, sep=sep, header=True, min_columns=2, quoting=csv.QUOTE_MINIMAL,
                            fixed_delimiter=False, what="item titles (" + HOW + ")")
    by_name = {_norm(c): c for c in raw.columns}
    id_col = next((by_name[c] for c in ID_COLUMNS if c in by_name), None)
    title_col = next((by_name[c] for c in TITLE_COLUMNS if c in by_name), None)
    if id_col is None or title_col is None:
        missing = "item id" if id_col is None else "title"
        raise DataError(f"the header names no {missing} column (it has {list(raw.columns)})", file=src.label, row=1,
                        fix=f"item titles come as {HOW}")
    genre_col = next((by_name[c] for c in GENRE_COLUMNS if c in by_name), None)
    genres = raw[genre_col] if genre_col is not None else pd.Series(np.nan, index=raw.index, dtype=object)
    return movielens.items_table(raw[id_col], movielens.blank_to_nan(raw[title_col]), movielens.blank_to_nan(genres))


def attach(data: Interactions, table: pd.DataFrame, *, file: str = "") -> Interactions:
    """`data` with its items' titles and genres taken from `table` (by raw id; titles `data`
    already had stay for items the table lacks); an error when not one item id matches (the wrong
    file, or ids written differently)."""
    table = table.copy()
    table.index = table.index.astype(str)
    items = table.reindex(np.asarray(data.item_ids, dtype=str))
    matched = int(items["title"].notna().sum())
    if matched == 0:
        raise DataError(f"none of the {len(table):,} item ids in the titles file matches an item of "
                        f"'{data.name or 'this dataset'}' (its ids look like {', '.join(map(str, data.item_ids[:3]))}; "
                        f"the file's like {', '.join(map(str, table.index[:3]))})", file=file or None,
                        fix="give the titles file of this dataset, with the same item ids as the interactions")
    items.index = pd.RangeIndex(data.n_items)
    items = items[["title", "genres"]]
    if data.items is not None:  # titles the data came with stay where the file has none
        items = items.combine_first(data.items.reindex(columns=["title", "genres"]))[["title", "genres"]]
    data.items = items
    data.meta = {**data.meta, "titles": {"file": Path(file).name if file else "", "matched": matched,
                                         "items": int(data.n_items)}}
    return data


def save(folder: Path, table: pd.DataFrame) -> Path:
    """Keep `table` as `folder/items.csv` (atomically: a crash never leaves half a file)."""
    folder.mkdir(parents=True, exist_ok=True)
    return write_atomic(folder / FILE, table.rename_axis("item").to_csv())


def load(folder: Path) -> pd.DataFrame | None:
    """The titles kept in `folder`, or None. Stored content is not trusted: a damaged or edited
    file (not text, ragged rows, other columns, a folder or pipe in its place, over the input size
    limit) is one DataError naming it, never a parser's exception."""
    path = folder / FILE
    if not os.path.lexists(path):
        return None
    fix = (f"give the titles again (`recviz titles {folder.name} FILE`), or delete {path} to go without "
           "titles")
    if not path.is_file():
        raise DataError("the saved item titles are not a regular file", file=str(path), fix=fix)
    if path.stat().st_size > limits.FILE_BYTES.value():
        raise DataError(f"the saved item titles are larger than {limits.describe(limits.FILE_BYTES)}", file=str(path),
                        fix=fix)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8")
    except (OSError, ValueError, pd.errors.ParserError) as exc:  # UnicodeDecodeError is a ValueError
        raise DataError(f"the saved item titles cannot be read ({str(exc).splitlines()[0][:200]})", file=str(path),
                        fix=fix) from None
    if list(table.columns) != ["item", "title", "genres"]:
        raise DataError(f"the saved item titles have columns {list(table.columns)[:5]}, not item, title, genres",
                        file=str(path), fix=fix)
    return table.set_index("item")


def _norm(column) -> str:
    return str(column).strip().lower().replace(" ", "_")
