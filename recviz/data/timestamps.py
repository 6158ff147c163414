"""Timestamps of a whole column: numbers in one Unix unit, or dates, to whole int64 seconds.

Parsing and finishing are apart so that a file read in chunks (`recviz.data.formats.chunked`)
parses each chunk on its own and decides the unit once, from every value: one stray value must
never rescale the others, and values in different units are an error naming a line.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recviz.data.rows import first as _first, line as _line, show as _show
from recviz.errors import DataError


def parse_timestamps(col: pd.Series, *, file: str, line_of: np.ndarray, column: str,
                     auto: bool) -> tuple[np.ndarray, bool]:
    """(float64 values as written — seconds for dates —, whether they were dates). Unit and range
    are `finish_timestamps`' business: they are decided from the whole column."""
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        return _datetime_seconds(col).astype(np.float64), True
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        num = col.to_numpy(dtype=np.float64)
        text = None
    else:
        text = col.astype(str).str.strip()
        num = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isnan(num)
    if bad.any():
        if not auto or not bad.all():
            k = _first(bad)
            extra = "" if auto else " (Unix seconds)"
            raise DataError(f"timestamp {_show(text.iat[k] if text is not None else num[k])} is not a number{extra}",
                            file=file, row=_line(line_of, k), column=column,
                            fix="timestamps must be Unix seconds" + (" or dates, not a mix of both"
                                                                     if auto else "; fix or delete that line"))
        return _parse_dates(text, file=file, line_of=line_of, column=column).astype(np.float64), True
    if not np.isfinite(num).all():
        k = _first(~np.isfinite(num))
        raise DataError(f"timestamp {_show(num[k])} is not a finite number", file=file,
                        row=_line(line_of, k), column=column, fix="fix or delete that line")
    return num, False


def finish_timestamps(num: np.ndarray, *, dates: bool, auto: bool, file: str, line_of: np.ndarray,
                      column: str, inplace: bool = False) -> np.ndarray:
    """Whole int64 seconds from a whole column's parsed values: the unit (for `auto` numbers)
    decided from all of them, the range checked. `inplace`: `num` may be overwritten (it is
    the caller's own array; a large column is then not copied twice)."""
    num = np.require(num, np.float64, ["C", "W"]) if inplace else np.array(num, dtype=np.float64, order="C")
    if not len(num):
        return num.astype(np.int64)
    if auto and not dates:
        np.divide(num, _unit(num, file=file, line_of=line_of, column=column), out=num)
    if max(num.max(), -num.min()) > 2**62:
        k = _first(np.abs(num) > 2**62)
        raise DataError(f"timestamp {_show(num[k])} is out of range", file=file, row=_line(line_of, k),
                        column=column, fix="timestamps must be Unix seconds")
    np.floor(num, out=num)
    seconds = num.view(np.int64)  # converted in place, a block at a time: no second full-size array
    for s, e in _blocks(len(num)):
        seconds[s:e] = num[s:e].astype(np.int64)
    return seconds


# Unix time in seconds, milliseconds or microseconds: for any date from 1973 to 5138 each unit has its
# own magnitude band, so the unit of a value can be read off its size.
TIME_UNITS = ((1e11, 1.0, "seconds"), (1e14, 1e3, "milliseconds"), (1e17, 1e6, "microseconds"))


_BLOCK = 1 << 20  # values per step of a whole-column pass, so that its temporaries stay a few MB


def _blocks(n: int):
    return ((s, min(s + _BLOCK, n)) for s in range(0, n, _BLOCK))


def _bands(values: np.ndarray) -> np.ndarray:
    return np.searchsorted([u[0] for u in TIME_UNITS], np.abs(values), side="right")  # 3 = beyond every unit


def _unit(num: np.ndarray, *, file: str, line_of: np.ndarray, column: str) -> float:
    """The one unit of a whole timestamp column, decided from all its values (never from the
    largest alone: one stray value must not rescale every other row). Values in different units,
    or beyond microseconds, are an error naming the first line that disagrees with the majority."""
    counts = sum(np.bincount(_bands(num[s:e]), minlength=len(TIME_UNITS) + 1) for s, e in _blocks(len(num)))
    major = int(np.argmax(counts[:len(TIME_UNITS)]))
    if counts[major] == len(num):
        return TIME_UNITS[major][1]
    for s, e in _blocks(len(num)):
        band = _bands(num[s:e])
        if (band != major).any():
            k = s + _first(band != major)
            break
    this = "beyond any Unix time unit" if band[k - s] == len(TIME_UNITS) else f"in {TIME_UNITS[band[k - s]][2]}"
    raise DataError(f"timestamp {_show(num[k])} is {this}, while most of this column is in "
                    f"{TIME_UNITS[major][2]}", file=file, row=_line(line_of, k), column=column,
                    fix="write every timestamp in one unit (Unix seconds, milliseconds or microseconds), "
                        "or fix or delete that line")


def _parse_dates(text: pd.Series, *, file: str, line_of: np.ndarray, column: str) -> np.ndarray:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dt = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
        if dt.isna().any():
            dt = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
    bad = dt.isna().to_numpy()
    if bad.any():
        k = _first(bad)
        raise DataError(f"timestamp {_show(text.iat[k])} is neither a number nor a date", file=file,
                        row=_line(line_of, k), column=column,
                        fix="write timestamps as Unix seconds or as dates like 2017-11-25 14:03:00")
    return _datetime_seconds(dt)


def _datetime_seconds(dt: pd.Series) -> np.ndarray:
    if getattr(dt.dt, "tz", None) is None:
        dt = dt.dt.tz_localize("UTC")
    delta = dt - pd.Timestamp(0, tz="UTC")
    return (delta // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)


