"""The NCF paper's files (He et al., 2017): `NAME.train.rating`, `NAME.test.rating` (tab-separated
user, item, rating, timestamp; 0-based integer ids; one test row per user) and
`NAME.test.negative` (`(user,item)<TAB>neg1<TAB>neg2...`, usually 99 negatives a line).

The result is one `Interactions` holding every train and test row (train rows first; `meta`
records how many of each) plus `given_test`: the held-out (user, item) of each line of
`.test.negative` and its negatives, all in internal ids. The item id space is the union of the
items in the train rows, the test rows and the negatives, so that a negative nobody interacted
with still has an id."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recviz.data.arrays import unique
from recviz.data.interactions import GivenTest, Interactions
from recviz.data.formats import chunked
from recviz.data.formats.delimited import estimate_rows, iter_delimited
from recviz.data.formats.textfile import Source, as_source
from recviz.data.validate import DEDUP_FIX, check_dedup, check_int64
from recviz.errors import DataError

_ROLES = {0: "user", 1: "item", 2: "rating", 3: "timestamp"}
SUFFIXES = (".train.rating", ".test.rating", ".test.negative")


def ncf_stem(filename: str) -> str | None:
    for suffix in SUFFIXES:
        if filename.endswith(suffix):
            return filename[: -len(suffix)]
    return None


def _read_rating_file(src: Source, dedup: str) -> chunked.Assembled:
    """One .rating file, streamed (`chunked`): its rows and the raw integer id of each."""
    chunks = iter_delimited(src, sep="\t", min_columns=2, str_columns=[0, 1],
                            what="an NCF .rating file (user, item, rating, timestamp)")
    return chunked.assemble_columns(chunks, to_roles=lambda raw: raw.iloc[:, :4].rename(columns=_ROLES),
                                    file=src.label, int_ids=True, dedup=dedup, expected_rows=estimate_rows(src))


def _raw(ids: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """The integer each row's id is (the ids are digits: `int_ids`)."""
    return ids.astype(np.int64)[codes]


def read_negatives(path: str | Path | Source) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(users, items, negatives [n, N], line numbers) as raw integer ids, in file order; streamed,
    a chunk of lines at a time."""
    src = as_source(path)
    fix = "each line must be '(user,item)' followed by the same number of tab-separated negative item ids"
    parts, width = [], None
    for raw, line_of in iter_delimited(src, sep="\t", min_columns=2, what="an NCF .test.negative file",
                                       fix_hint=fix):
        if width is None:  # a trailing tab on every line gives an all-empty last column: drop it
            filled = raw.notna().any(axis=0).to_numpy()
            width = int(filled.nonzero()[0].max()) + 1 if filled.any() else 0
            if width < 2:
                raise DataError("no negative items after the '(user,item)' field", file=src.label,
                                row=int(line_of[0]), fix=fix)
        parts.append(_negative_lines(raw, line_of, width, src, fix))
    users, items, negs, lines = (np.concatenate([p[k] for p in parts]) for k in range(4))
    return users, items, negs, lines


def _negative_lines(raw: pd.DataFrame, line_of: np.ndarray, width: int, src: Source, fix: str):
    """One chunk of `.test.negative` lines, `width` fields each, checked and parsed."""
    beyond = raw.iloc[:, width:].notna().to_numpy()
    if beyond.any():  # more fields than the first chunk's lines had
        k = int(np.flatnonzero(beyond.any(axis=1))[0])
        raise DataError(f"this line has {int(raw.iloc[k].notna().sum()) - 1} negatives, the first line has "
                        f"{width - 1}", file=src.label, row=int(line_of[k]), fix=fix)
    raw = raw.iloc[:, :width]
    pair = raw.iloc[:, 0].astype(str).str.strip().str.extract(r"^\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
    bad = pair[0].isna().to_numpy()
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise DataError(f"the first field {str(raw.iat[k, 0])[:40]!r} is not '(user,item)'",
                        file=src.label, row=int(line_of[k]), column="1", fix=fix)
    neg = raw.iloc[:, 1:]
    empty = neg.isna().to_numpy()
    if empty.any():
        k = int(np.flatnonzero(empty.any(axis=1))[0])
        have = int((~empty[k]).sum())
        raise DataError(f"this line has {have} negatives, the first line has {neg.shape[1]}",
                        file=src.label, row=int(line_of[k]), fix=fix)
    arr = neg.to_numpy(dtype=str)
    arr = np.char.strip(arr)
    ok = np.char.isdigit(arr)
    if not ok.all():
        k, j = (int(x[0]) for x in np.nonzero(~ok))
        raise DataError(f"negative item {arr[k, j][:40]!r} is not a non-negative integer id",
                        file=src.label, row=int(line_of[k]), column=str(j + 2), fix=fix)
    check_int64(arr, file=src.label, line_of=line_of, what="negative item id")
    check_int64(pair[[0, 1]].to_numpy(dtype=str), file=src.label, line_of=line_of, what="the (user,item) pair's id",
                column="1")
    users = pair[0].astype(np.int64).to_numpy()
    items = pair[1].astype(np.int64).to_numpy()
    return users, items, arr.astype(np.int64), line_of


def read_ncf(
    train: str | Path | Source,
    test: str | Path | Source | None = None,
    negative: str | Path | Source | None = None,
    *,
    dedup: str | None = None,
    name: str | None = None,
    source: str | Path | None = None,
) -> Interactions:
    """Read the three NCF files. `test` / `negative` default to the files with the same stem
    beside `train` (e.g. `ml-1m.train.rating` → `ml-1m.test.rating`, `ml-1m.test.negative`)."""
    src = as_source(train)
    dedup = check_dedup(dedup, "error")
    stem = ncf_stem(src.name) or Path(src.name).stem
    test_src = as_source(test) if test is not None else src.sibling(stem + ".test.rating")
    neg_src = as_source(negative) if negative is not None else src.sibling(stem + ".test.negative")
    missing = [s for s, f in ((".test.rating", test_src), (".test.negative", neg_src)) if f is None]
    if missing:
        raise DataError(f"the NCF files {', '.join(stem + m for m in missing)} are missing beside this file",
                        file=src.label,
                        fix="put NAME.train.rating, NAME.test.rating and NAME.test.negative in one folder "
                            "and load that folder; or read the train file alone as a generic table")

    tr = _read_rating_file(src, dedup)
    te = _read_rating_file(test_src, dedup)
    common = [c for c in ("rating", "timestamp") if getattr(tr, c) is not None and getattr(te, c) is not None]

    nu, ni, negs, neg_lines = read_negatives(neg_src)
    tu, ti, eu, ei = _raw(tr.user_ids, tr.user), _raw(tr.item_ids, tr.item), _raw(te.user_ids, te.user), \
        _raw(te.item_ids, te.item)
    width = int(max(ti.max(initial=0), ei.max(initial=0), ni.max(initial=0))) + 1
    tr_key, te_key, neg_key = tu * width + ti, eu * width + ei, nu * width + ni

    # a test pair that is also a train pair
    clash = np.isin(tr_key, te_key)
    keep = np.ones(len(tr), bool)
    if clash.any():
        if dedup == "error":
            k = int(np.flatnonzero(clash)[0])
            j = int(np.flatnonzero(te_key == tr_key[k])[0])
            raise DataError(
                f"duplicate row: user {str(tr.user_ids[tr.user[k]])!r}, item {str(tr.item_ids[tr.item[k]])!r} is "
                f"both in the train file (line {tr.line(k)}) and in {test_src.label} (line {te.line(j)})",
                file=src.label, row=tr.line(k),
                fix=DEDUP_FIX + " (the test row is kept, the train row dropped)")
        if dedup in ("last", "first"):
            keep = ~clash

    # every given test pair must be one of the test rows
    found = np.isin(neg_key, te_key)
    if not found.all():
        k = int(np.flatnonzero(~found)[0])
        raise DataError(f"the pair ({nu[k]},{ni[k]}) is not a row of {test_src.label}",
                        file=neg_src.label, row=int(neg_lines[k]),
                        fix="use the .test.rating and .test.negative files that were made together")

    u_raw, i_raw = np.concatenate([tu[keep], eu]), np.concatenate([ti[keep], ei])
    user_space = unique(np.concatenate([u_raw, nu]))
    item_space = unique(np.concatenate([i_raw, ni, negs.ravel()]))
    enc_u = lambda a: np.searchsorted(user_space, a).astype(np.int64)  # noqa: E731
    enc_i = lambda a: np.searchsorted(item_space, a).astype(np.int64)  # noqa: E731
    given = GivenTest(user=enc_u(nu), item=enc_i(ni), negatives=enc_i(negs).reshape(negs.shape))
    meta = {"format": "ncf", "files": [src.label, test_src.label, neg_src.label],
            "train_rows": int(keep.sum()), "test_rows": int(len(te)),
            "negatives_per_user": int(negs.shape[1])}
    return Interactions(
        user=enc_u(u_raw), item=enc_i(i_raw),
        user_ids=user_space.astype(str), item_ids=item_space.astype(str),
        rating=np.concatenate([tr.rating[keep], te.rating]) if "rating" in common else None,
        timestamp=np.concatenate([tr.timestamp[keep], te.timestamp]) if "timestamp" in common else None,
        name=name or stem, source=str(source if source is not None else src.label),
        given_test=given, meta=meta)
