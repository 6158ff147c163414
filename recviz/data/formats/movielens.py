"""GroupLens MovieLens files: 100K (`u.data` + `u.item`), 1M (`ratings.dat` + `movies.dat`) and
the "latest" CSV layout (`ratings.csv` + `movies.csv`, also ml-20m / ml-25m / ml-32m)."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from recviz.data.interactions import Interactions
from recviz.data.formats import chunked
from recviz.data.formats.delimited import estimate_rows, iter_delimited, read_delimited
from recviz.data.formats.textfile import Source, as_source
from recviz.data.validate import check_dedup, default_name
from recviz.errors import DataError

ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                 "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                 "Romance", "Sci-Fi", "Thriller", "War", "Western")
_GENERIC_STEMS = ("u", "ratings", "rating", "data")
_ROLES4 = {0: "user", 1: "item", 2: "rating", 3: "timestamp"}


def _stream(src: Source, chunks, *, fmt: str, items, name: str | None,
            source: str | Path | None, extra_meta: dict | None = None, encoding: str = "utf-8",
            **checks) -> Interactions:
    """u.data / ratings.dat, four positional columns, streamed (`chunked`)."""
    meta = {"format": fmt, "files": [src.label]}
    meta.update(extra_meta or {})
    return chunked.assemble(chunks, to_roles=lambda raw: raw.iloc[:, :4].rename(columns=_ROLES4), file=src.label,
                            int_ids=True, items=items, name=name or default_name(src, _GENERIC_STEMS),
                            source=str(source if source is not None else src.label), meta=meta,
                            expected_rows=estimate_rows(src, encoding), **checks)


def items_table(ids: pd.Series, titles: pd.Series, genres: pd.Series) -> pd.DataFrame:
    """Index = raw item id (str); a later line for the same id wins."""
    table = pd.DataFrame({"title": titles.to_numpy(dtype=object), "genres": genres.to_numpy(dtype=object)},
                         index=pd.Index(ids.astype(str).str.strip().to_numpy(dtype=object)))
    table = table[~table.index.duplicated(keep="last")]
    return table


def blank_to_nan(s: pd.Series) -> pd.Series:
    s = s.astype(object)
    return s.where(s.notna() & (s.astype(str).str.strip() != ""), np.nan)


# ---- 100K ---------------------------------------------------------------------------------------
def read_ml100k(
    data: str | Path | Source,
    items: str | Path | Source | None = None,
    *,
    dedup: str | None = None,
    name: str | None = None,
    source: str | Path | None = None,
) -> Interactions:
    """MovieLens-100K: `u.data` (tab-separated user, item, rating 1–5, timestamp; no header) and
    `u.item` (pipe-separated, latin-1; id | title | release date | video date | IMDb URL | 19 genre
    flags). `items=None` picks up `u.item` beside `data` if there is one."""
    src = as_source(data)
    dedup = check_dedup(dedup, "error")
    chunks = iter_delimited(src, sep="\t", encoding="latin-1", min_columns=4, str_columns=[0, 1],
                            what="MovieLens-100K u.data (user, item, rating, timestamp)")
    item_src = as_source(items) if items is not None else src.sibling("u.item")
    table = (lambda: read_ml100k_items(item_src)) if item_src is not None else None
    extra = {"item_file": item_src.label} if item_src is not None else {}
    return _stream(src, chunks, fmt="ml-100k", items=table, name=name, source=source,
                   extra_meta=extra, encoding="latin-1", rating_range=(1, 5), rating_step=1, dedup=dedup)


def read_ml100k_items(path: str | Path | Source) -> pd.DataFrame:
    src = as_source(path)
    raw, _ = read_delimited(src, sep="|", encoding="latin-1", min_columns=2,
                            what="MovieLens-100K u.item (id|title|...|19 genre flags)")
    genres = pd.Series(np.nan, index=raw.index, dtype=object)
    if raw.shape[1] >= 5 + len(ML100K_GENRES):
        flags = raw.iloc[:, 5:5 + len(ML100K_GENRES)].apply(pd.to_numeric, errors="coerce")
        flags = flags.fillna(0).to_numpy() > 0
        names = np.array(ML100K_GENRES, dtype=object)
        joined = ["|".join(names[row]) for row in flags]  # 1,682 rows: fine
        genres = blank_to_nan(pd.Series(joined, index=raw.index, dtype=object))
    return items_table(raw.iloc[:, 0], blank_to_nan(raw.iloc[:, 1]), genres)


# ---- 1M -----------------------------------------------------------------------------------------
def read_ml1m(
    ratings: str | Path | Source,
    movies: str | Path | Source | None = None,
    *,
    dedup: str | None = None,
    name: str | None = None,
    source: str | Path | None = None,
) -> Interactions:
    """MovieLens-1M (and 10M): `ratings.dat` (`UserID::MovieID::Rating::Timestamp`) and
    `movies.dat` (`MovieID::Title::Genres`, genres `A|B`, latin-1). Ratings are whole stars 1–5
    (10M: half stars 0.5–5, accepted too)."""
    src = as_source(ratings)
    dedup = check_dedup(dedup, "error")
    chunks = iter_delimited(src, sep="::", encoding="latin-1", min_columns=4, str_columns=[0, 1],
                            what="MovieLens-1M ratings.dat (UserID::MovieID::Rating::Timestamp)")
    movie_src = as_source(movies) if movies is not None else src.sibling("movies.dat")
    table = (lambda: read_ml1m_movies(movie_src)) if movie_src is not None else None
    extra = {"item_file": movie_src.label} if movie_src is not None else {}
    return _stream(src, chunks, fmt="ml-1m", items=table, name=name, source=source,
                   extra_meta=extra, encoding="latin-1", rating_scale=_StarScale(), dedup=dedup)


class _StarScale:
    """ml-1m uses whole stars; ml-10m (same layout) half stars: the finer scale is allowed once a
    half star has been seen (a chunk's scale, for `chunked.assemble`'s `rating_scale`)."""

    def __init__(self) -> None:
        self.half = False

    def __call__(self, ratings: np.ndarray) -> tuple[tuple[float, float], float]:
        self.half = self.half or bool(np.any(np.mod(ratings, 1) == 0.5))
        return ((0.5, 5), 0.5) if self.half else ((1, 5), 1)


def read_ml1m_movies(path: str | Path | Source) -> pd.DataFrame:
    src = as_source(path)
    raw, _ = read_delimited(src, sep="::", encoding="latin-1", min_columns=2,
                            what="MovieLens-1M movies.dat (MovieID::Title::Genres)")
    genres = blank_to_nan(raw.iloc[:, 2]) if raw.shape[1] >= 3 else pd.Series(np.nan, index=raw.index)
    genres = genres.where(genres != "(no genres listed)", np.nan)
    return items_table(raw.iloc[:, 0], blank_to_nan(raw.iloc[:, 1]), genres)


# ---- latest (csv) ------------------------------------------------------------------------------
LATEST_RATING_COLUMNS = {"userId": "user", "movieId": "item", "rating": "rating", "timestamp": "timestamp"}


def read_ml_latest(
    ratings: str | Path | Source,
    movies: str | Path | Source | None = None,
    *,
    dedup: str | None = None,
    name: str | None = None,
    source: str | Path | None = None,
) -> Interactions:
    """MovieLens "latest" layout (ml-latest, ml-latest-small, ml-20m, ml-25m, ml-32m):
    `ratings.csv` with header userId,movieId,rating,timestamp (half stars 0.5–5) and `movies.csv`
    with header movieId,title,genres (UTF-8, quoted titles)."""
    src = as_source(ratings)
    dedup = check_dedup(dedup, "error")
    # streamed (ml-25m's ratings.csv is 678 MB): read chunk by chunk into compact arrays
    chunks = iter_delimited(src, sep=",", header=True, encoding="utf-8", min_columns=2,
                            str_columns=[0, 1], quoting=csv.QUOTE_MINIMAL,
                            what="MovieLens ratings.csv (userId,movieId,rating,timestamp)")
    first = next(chunks)
    missing = [c for c in ("userId", "movieId", "rating") if c not in first[0].columns]
    if missing:
        raise DataError(f"the header has no {', '.join(repr(m) for m in missing)} column "
                        f"(it has {list(first[0].columns)})", file=src.label, row=1, column=missing[0],
                        fix="MovieLens ratings.csv starts with 'userId,movieId,rating,timestamp'; for a "
                            "different layout read the file as a generic table with a column mapping")
    cols = {c: role for c, role in LATEST_RATING_COLUMNS.items() if c in first[0].columns}
    movie_src = as_source(movies) if movies is not None else src.sibling("movies.csv")
    table = read_ml_latest_movies(movie_src) if movie_src is not None else None
    meta = {"format": "ml-latest", "files": [src.label]}
    meta.update({"item_file": movie_src.label} if movie_src is not None else {})
    return chunked.assemble(itertools.chain([first], chunks), to_roles=lambda raw: raw[list(cols)].rename(columns=cols),
                            file=src.label, dedup=dedup, int_ids=True, rating_range=(0.5, 5), rating_step=0.5,
                            columns={v: k for k, v in cols.items()}, items=table,
                            name=name or default_name(src, _GENERIC_STEMS),
                            source=str(source if source is not None else src.label), meta=meta,
                            expected_rows=estimate_rows(src))


def read_ml_latest_movies(path: str | Path | Source) -> pd.DataFrame:
    src = as_source(path)
    raw, _ = read_delimited(src, sep=",", header=True, encoding="utf-8", min_columns=2,
                            quoting=csv.QUOTE_MINIMAL, what="MovieLens movies.csv (movieId,title,genres)")
    if "movieId" not in raw.columns or "title" not in raw.columns:
        raise DataError(f"the header should be movieId,title,genres (it is {list(raw.columns)})",
                        file=src.label, row=1, fix="check that this is the MovieLens movies.csv")
    genres = blank_to_nan(raw["genres"]) if "genres" in raw.columns else pd.Series(np.nan, index=raw.index)
    genres = genres.where(genres != "(no genres listed)", np.nan)
    return items_table(raw["movieId"], blank_to_nan(raw["title"]), genres)
