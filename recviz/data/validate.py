"""Validation shared by every reader: check and convert the role columns of a parsed frame.

`validate_frame` checks user, item, rating, timestamp and behavior columns (ids, ranges, NaNs, date
parsing) and applies the duplicate rule; every problem is a `DataError` naming the file, the
1-based file line or the column, and a concrete fix. Parsing the file itself lives in
`recviz.data.formats.textfile`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from recviz.data.formats.textfile import Source
from recviz.data.rows import first as _first, line as _line, show as _show
from recviz.data.timestamps import finish_timestamps, parse_timestamps
from recviz.errors import DataError

ROLES = ("user", "item", "rating", "timestamp", "behavior")
RATING_MAX = float(np.finfo(np.float32).max)
DEDUP_RULES = ("error", "last", "first", "keep")
DEDUP_LABEL = "Duplicate (user, item) rows"  # the Data page's field for the rule
DEDUP_FIX = ("pass dedup='last' (CLI: --dedup last) to keep the latest row, or 'first' to keep the "
             "earliest")

# ---- frame validation -------------------------------------------------------------------------
_ID_FIX = ("check that this is the right file for this format and that its columns are in the expected "
           "order; a file with other ids can be read as a generic table")


def validate_with_lines(df: pd.DataFrame, **kwargs) -> tuple[pd.DataFrame, np.ndarray]:
    """`validate_frame`, also returning the file line of each kept row (after `dedup`)."""
    return _validate(df, **kwargs)


def validate_frame(
    df: pd.DataFrame,
    *,
    file: str,
    line_of: np.ndarray | None = None,
    int_ids: bool = False,
    rating_range: tuple[float, float] | None = None,
    rating_step: float | None = None,
    behaviors: tuple[str, ...] | None = None,
    timestamps: str = "seconds",
    dedup: str = "error",
    dup_keys: tuple[str, ...] | None = None,
    columns: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Check and convert the role columns of a raw frame; return a new frame with only
    user, item (str values; a categorical of them when the file had integer ids), rating (float64), timestamp (int64 seconds), behavior (str), whichever are
    present, in file order, with duplicates handled by `dedup`.

    `line_of[k]` is the file line of row k (default k + 1). `int_ids`: ids must be integers >= 0
    (kept as the strings written). `rating_range` / `rating_step`: the format's scale, e.g.
    (1, 5) / 1. `behaviors`: the allowed behaviour values. `columns` maps roles to the names the
    file uses, for messages. `timestamps='seconds'` needs numbers (floored to whole seconds);
    `'auto'` also takes dates (ISO 8601 or other parseable text, naive = UTC) and epoch
    milliseconds / microseconds (values above 1e11 / 1e14). `dedup` is one of 'error' (raise on a
    repeated `dup_keys` tuple, naming both lines), 'last' / 'first' (keep the latest / earliest by
    timestamp, file order on ties or without timestamps) or 'keep' (keep every row). `dup_keys`
    defaults to (user, item), plus behavior when there is a behaviour column.
    `frame.attrs['duplicates_dropped']` counts the rows `dedup` dropped."""
    return _validate(df, file=file, line_of=line_of, int_ids=int_ids, rating_range=rating_range,
                     rating_step=rating_step, behaviors=behaviors, timestamps=timestamps, dedup=dedup,
                     dup_keys=dup_keys, columns=columns)[0]


def _validate(
    df: pd.DataFrame,
    *,
    file: str,
    line_of: np.ndarray | None = None,
    int_ids: bool = False,
    rating_range: tuple[float, float] | None = None,
    rating_step: float | None = None,
    behaviors: tuple[str, ...] | None = None,
    timestamps: str = "seconds",
    dedup: str = "error",
    dup_keys: tuple[str, ...] | None = None,
    columns: dict[str, str] | None = None,
    defer_timestamps: bool = False,
    keep_int_ids: bool = False,
) -> tuple[pd.DataFrame, np.ndarray]:
    """See `validate_frame`. `defer_timestamps`: one chunk of a file — leave the timestamps as
    parsed (float64, unit not yet decided; `attrs['timestamp_dates']` says whether they were
    dates) for `finish_timestamps` over the whole column. `keep_int_ids`: ids of an integer column
    stay int64 (checked the same way) instead of becoming their text — a chunked reader
    (`recviz.data.formats.chunked`) encodes them as numbers. The steps below run in this order; each
    raises the DataError of the first problem it finds."""
    file = str(file)
    names = {**{r: r for r in ROLES}, **(columns or {})}
    _check_request(df, file=file, dedup=dedup)
    line_of = np.arange(1, len(df) + 1, dtype=np.int64) if line_of is None else np.asarray(line_of)
    present = [r for r in ROLES if r in df.columns]
    _refuse_empty_cells(df, present, file=file, line_of=line_of, names=names)
    out: dict[str, object] = {role: _ids(df[role], role, int_ids=int_ids, file=file, line_of=line_of,
                                         column=names[role], keep_int=keep_int_ids) for role in ("user", "item")}
    if "rating" in present:
        out["rating"] = _ratings(df["rating"], rating_range, rating_step, file=file, line_of=line_of,
                                 column=names["rating"])
    dates = False
    if "timestamp" in present:
        out["timestamp"], dates = _timestamps(df["timestamp"], timestamps, defer_timestamps, file=file,
                                              line_of=line_of, column=names["timestamp"])
    if "behavior" in present:
        out["behavior"] = _behaviors(df["behavior"], behaviors, file=file, line_of=line_of,
                                     column=names["behavior"])
    result = pd.DataFrame(out)
    if dup_keys is None:
        dup_keys = ("user", "item", "behavior") if "behavior" in result else ("user", "item")
    result, kept = apply_dedup(result, line_of, file=file, dedup=dedup, keys=tuple(dup_keys))
    result.attrs["duplicates_dropped"] = int(len(df) - len(result))
    result.attrs["timestamp_dates"] = dates
    return result, line_of[kept]


def _check_request(df: pd.DataFrame, *, file: str, dedup: str) -> None:
    """A known duplicate rule, a user and an item column, and at least one row."""
    if dedup not in DEDUP_RULES:
        raise DataError(f"unknown duplicate rule dedup={dedup!r}", file=file,
                        fix=f"use one of {list(DEDUP_RULES)}")
    for role in ("user", "item"):
        if role not in df.columns:
            raise DataError(f"there is no {role} column (columns: {list(map(str, df.columns))})",
                            file=file, fix=f"map a column to the '{role}' role")
    if len(df) == 0:
        raise DataError("the file has no data rows", file=file,
                        fix="check that this is the right file and that it was fully written")


def _refuse_empty_cells(df: pd.DataFrame, present: list[str], *, file: str, line_of: np.ndarray,
                        names: dict[str, str]) -> None:
    """No role column may have an empty cell: the first one is named, with the count of all."""
    for role in present:
        na = df[role].isna().to_numpy()
        if na.any():
            k = _first(na)
            raise DataError(
                f"empty {role} value ({int(na.sum()):,} row{'s' if na.sum() > 1 else ''} in all, this is the first)",
                file=file, row=_line(line_of, k), column=names[role],
                fix=f"fill in or delete rows without a {role}; check that the line has every field")


def _ids(col: pd.Series, role: str, *, int_ids: bool, file: str, line_of: np.ndarray, column: str,
         keep_int: bool = False) -> pd.Series:
    """User or item ids, kept as the strings the file has ("0042" stays "0042"): numbers (whole
    floats become integers) as a categorical of their text (`keep_int`: as int64), text stripped."""
    if pd.api.types.is_float_dtype(col.dtype):
        col = _whole_numbers(col, role, file=file, line_of=line_of, column=column)
    if pd.api.types.is_integer_dtype(col.dtype):
        s = _integer_ids(col, role, int_ids=int_ids, file=file, line_of=line_of, column=column, keep_int=keep_int)
    else:
        s = _text_ids(col, role, int_ids=int_ids, file=file, line_of=line_of, column=column)
    return s.reset_index(drop=True)


def _whole_numbers(col: pd.Series, role: str, *, file: str, line_of: np.ndarray, column: str) -> pd.Series:
    """Float ids (a column with an empty cell reads as float) as int64; a fraction is an error."""
    frac = np.mod(col.to_numpy(dtype=np.float64), 1) != 0
    if frac.any():
        k = _first(frac)
        raise DataError(f"{role} id {_show(col.iat[k])} is not an integer", file=file,
                        row=_line(line_of, k), column=column,
                        fix=f"{role} ids must be whole numbers or text labels")
    return col.astype(np.int64)


def _integer_ids(col: pd.Series, role: str, *, int_ids: bool, file: str, line_of: np.ndarray,
                 column: str, keep_int: bool = False) -> pd.Series:
    """Integer ids (>= 0 where the format says so) as a categorical of their text, each distinct
    id's string made once (`keep_int`: as int64 numbers)."""
    neg = (col.to_numpy() < 0) if int_ids else np.zeros(len(col), dtype=bool)
    if neg.any():
        k = _first(neg)
        raise DataError(f"{role} id {_show(col.iat[k])} is negative; this format's ids are "
                        "integers >= 0", file=file, row=_line(line_of, k), column=column,
                        fix=_ID_FIX)
    if keep_int:
        return pd.Series(col.to_numpy(dtype=np.int64))
    codes, uniq = pd.factorize(col.to_numpy(), sort=False)
    return pd.Series(pd.Categorical.from_codes(codes, categories=pd.Index(uniq.astype(str), dtype=object)))


def _text_ids(col: pd.Series, role: str, *, int_ids: bool, file: str, line_of: np.ndarray,
              column: str) -> pd.Series:
    """Text ids, stripped; none blank, and where the format's ids are integers, digits that fit int64."""
    s = col.astype(str).str.strip()
    blank = (s == "").to_numpy(dtype=bool)
    if blank.any():
        k = _first(blank)
        raise DataError(f"empty {role} value", file=file, row=_line(line_of, k),
                        column=column, fix=f"fill in or delete rows without a {role}")
    if int_ids:
        plain = s.str.fullmatch(r"\d+").to_numpy(dtype=bool, na_value=False)
        if not plain.all():
            k = _first(~plain)
            v = s.iat[k]
            kind = "negative" if re.fullmatch(r"-\d+", v) else "not a whole number"
            raise DataError(f"{role} id {_show(v)} is {kind}; this format's ids are integers >= 0",
                            file=file, row=_line(line_of, k), column=column, fix=_ID_FIX)
        check_int64(s.to_numpy(dtype=str), file=file, line_of=line_of, what=f"{role} id", column=column)
    return s


def _ratings(col: pd.Series, rating_range: tuple[float, float] | None, rating_step: float | None, *,
             file: str, line_of: np.ndarray, column: str) -> np.ndarray:
    """Ratings as float64: numbers, finite, storable as float32, and on the format's scale."""
    r = _rating_numbers(col, file=file, line_of=line_of, column=column)
    _check_storable(r, file=file, line_of=line_of, column=column)
    if rating_range is not None:
        check_scale(r, rating_range, rating_step, file=file, line_of=line_of, column=column)
    return r


def _rating_numbers(col: pd.Series, *, file: str, line_of: np.ndarray, column: str) -> np.ndarray:
    """A numeric column as it is; text parsed, where a cell that is not a number is an error."""
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        return col.to_numpy(dtype=np.float64)
    text = col.astype(str).str.strip()
    r = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isnan(r)
    if bad.any():
        k = _first(bad)
        raise DataError(f"rating {_show(text.iat[k])} is not a number", file=file,
                        row=_line(line_of, k), column=column,
                        fix="ratings must be numbers; check the column order / mapping and "
                            "the delimiter, or fix that line")
    return r


def _check_storable(r: np.ndarray, *, file: str, line_of: np.ndarray, column: str) -> None:
    """Finite, and small enough for the float32 ratings are kept in (larger ones would become inf)."""
    if not np.isfinite(r).all():
        k = _first(~np.isfinite(r))
        raise DataError(f"rating {_show(r[k])} is not a finite number", file=file,
                        row=_line(line_of, k), column=column, fix="fix or delete that line")
    too_big = np.abs(r) > RATING_MAX
    if too_big.any():
        k = _first(too_big)
        raise DataError(f"rating {_show(r[k])} is too large to store (ratings are 32-bit floats, at most "
                        f"{RATING_MAX:.3g})", file=file, row=_line(line_of, k), column=column,
                        fix="fix or delete that line")


def check_scale(r: np.ndarray, rating_range: tuple[float, float], rating_step: float | None, *,
                 file: str, line_of: np.ndarray, column: str) -> None:
    """Every rating within the format's range, and on its steps when it has any."""
    lo, hi = rating_range
    bad = (r < lo) | (r > hi)
    if rating_step:
        steps = (r - lo) / rating_step
        bad |= np.abs(steps - np.round(steps)) > 1e-6
    if bad.any():
        k = _first(bad)
        allowed = f"{_num(lo)}–{_num(hi)}"
        if rating_step:
            allowed += " in steps of " + _num(rating_step)
        raise DataError(
            f"rating {_show(_num(r[k]))} is outside this format's scale ({allowed}); "
            f"{int(bad.sum()):,} row(s) in all",
            file=file, row=_line(line_of, k), column=column,
            fix="check that this is the right file for this format; to load a file with another "
                "scale, read it as a generic table with a column mapping")


def _timestamps(col: pd.Series, timestamps: str, defer: bool, *, file: str, line_of: np.ndarray,
                column: str) -> tuple[np.ndarray, bool]:
    """(timestamps, whether they were dates): int64 seconds, or as parsed when `defer` (a chunk)."""
    auto = timestamps == "auto"
    num, dates = parse_timestamps(col, file=file, line_of=line_of, column=column, auto=auto)
    if defer:
        return num, dates
    return finish_timestamps(num, dates=dates, auto=auto, file=file, line_of=line_of, column=column), dates


def _behaviors(col: pd.Series, behaviors: tuple[str, ...] | None, *, file: str, line_of: np.ndarray,
               column: str) -> pd.Series:
    """Behaviours as stripped text, each one of the format's `behaviors` when it names them."""
    b = col.astype(str).str.strip()
    if behaviors:
        ok = b.isin(list(behaviors)).to_numpy()
        if not ok.all():
            k = _first(~ok)
            raise DataError(f"unknown behaviour {_show(b.iat[k])}; this format has {list(behaviors)}",
                            file=file, row=_line(line_of, k), column=column,
                            fix=f"keep only rows whose behaviour is one of {list(behaviors)}")
    return b.reset_index(drop=True)


INT64_MAX = str(np.iinfo(np.int64).max)


def check_int64(digits: np.ndarray, *, file: str, line_of: np.ndarray, what: str, column: str | None = None) -> None:
    """Digit strings (any shape; rows = file lines) must fit a 64-bit integer, the type integer ids
    are kept in: a 20-digit id is an error naming its line, not an OverflowError."""
    lengths = np.char.str_len(digits)
    over = (lengths > len(INT64_MAX)) | ((lengths == len(INT64_MAX)) & (digits > INT64_MAX))
    if over.any():
        first = tuple(int(i[0]) for i in np.nonzero(over))  # (row,) or (row, column)
        k, v = first[0], digits[first]
        raise DataError(f"{what} {_show(v)} is too large: this format's ids are integers below 2^63 "
                        f"({int(over.sum()):,} in all)", file=file, row=_line(line_of, k), column=column,
                        fix=_ID_FIX)


def _num(v: float) -> str:
    v = float(v)
    return str(int(v)) if v.is_integer() else f"{v:g}"


def apply_dedup(df: pd.DataFrame, line_of: np.ndarray, *, file: str, dedup: str,
                keys: tuple[str, ...]) -> tuple[pd.DataFrame, np.ndarray]:
    """Apply a duplicate rule to a validated frame; returns (frame, positions of the kept rows)."""
    keys = tuple(k for k in keys if k in df.columns)
    everything = np.arange(len(df))
    if dedup == "keep" or len(df) < 2:
        return df.reset_index(drop=True), everything
    if dedup == "error":
        dup = _duplicated(df, keys, keep="first")
        if not dup.any():
            return df.reset_index(drop=True), everything
        k2 = _first(dup)
        same = np.ones(len(df), dtype=bool)
        for key in keys:
            same &= (df[key].to_numpy() == df[key].iat[k2])
        k1 = _first(same)
        what = ", ".join(f"{key} {df[key].iat[k2]!r}" for key in keys)
        raise DataError(
            f"duplicate row: lines {_line(line_of, k1)} and {_line(line_of, k2)} have the same "
            f"{'/'.join(keys)} ({what}); {int(dup.sum()):,} repeated row(s) in all",
            file=file, row=_line(line_of, k2), fix=DEDUP_FIX)
    n = len(df)
    pos = np.arange(n)
    if "timestamp" in df.columns:
        order = np.lexsort((pos, df["timestamp"].to_numpy()))
    else:
        order = pos
    drop = _duplicated(df, keys, keep="last" if dedup == "last" else "first", order=order)
    if not drop.any():
        return df.reset_index(drop=True), everything
    kept = np.sort(order[~drop])
    return df.iloc[kept].reset_index(drop=True), kept


def _duplicated(df: pd.DataFrame, keys: tuple[str, ...], keep: str, order: np.ndarray | None = None) -> np.ndarray:
    """`df.iloc[order].duplicated(keys, keep=keep)` as a bool array, fast for 10M-row logs: each
    key column is factorized once (a categorical's codes are used as they are) and the codes are
    combined into one int64 per row, so only integers are hashed."""
    combined, size = np.zeros(len(df), dtype=np.int64), 1
    for key in keys:
        col = df[key]
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes, n = col.cat.codes.to_numpy().astype(np.int64), len(col.cat.categories)
        else:
            codes, uniq = pd.factorize(col, sort=False)
            n = len(uniq)
        if size * max(n, 1) >= 2**62:  # would overflow: let pandas combine them
            frame = df if order is None else df.iloc[order]
            return frame.duplicated(list(keys), keep=keep).to_numpy()
        combined, size = combined * max(n, 1) + codes, size * max(n, 1)
    if order is not None:
        combined = combined[order]
    return pd.Series(combined).duplicated(keep=keep).to_numpy()


# ---- small helpers for readers ------------------------------------------------------------------
def check_dedup(dedup: str | None, default: str) -> str:
    dedup = default if dedup is None else str(dedup).strip().lower()
    if dedup not in DEDUP_RULES:
        raise DataError(f"unknown duplicate rule {dedup!r}", fix=f"use one of {list(DEDUP_RULES)}")
    return dedup


def default_name(src: Source, generic_stems: tuple[str, ...] = ()) -> str:
    """A dataset name from a file: its stem, or its directory's name when the stem is generic
    (u.data → the directory name, e.g. 'ml-100k')."""
    stem = src.name.split(".")[0] if src.name.count(".") > 1 else Path(src.name).stem
    if stem.lower() in {g.lower() for g in generic_stems}:
        if src.path is not None:
            parent = src.path.resolve().parent.name
            if parent:
                return parent
        parts = re.split(r"[/\\]", src.label.split(":", 1)[-1] if ":" in src.label else src.label)
        if len(parts) >= 2 and parts[-2]:
            return parts[-2]
    return stem
