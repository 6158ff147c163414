"""Every bad-input case is a DataError for people: it names the file, the line or column, and the
fix; nothing escapes as a bare pandas/numpy traceback."""

from __future__ import annotations

import gzip
import zipfile

import pytest

from recviz.data.formats.detect import read_path
from recviz.data.formats.movielens import read_ml1m, read_ml100k, read_ml_latest
from recviz.data.formats.ncf import read_ncf
from recviz.data.formats.recbole import read_recbole
from recviz.data.formats.table import read_table
from recviz.data.formats.taobao import read_taobao
from recviz.data.formats.textfile import MAX_FILE_BYTES_ENV
from tests.helpers import GENRE_FLAGS, NCF_TEST, NCF_TRAIN, peak_child_memory, raises, write


# ---- bad input: one test per case ------------------------------------------------------------------
def test_missing_path(tmp_path):
    raises(read_path, tmp_path / "nope.csv", file="nope.csv", contains=("recviz datasets",))


def test_empty_file(tmp_path):
    raises(read_ml100k, write(tmp_path / "u.data", ""), file="u.data", contains=("empty",))
    raises(read_path, write(tmp_path / "blank.csv", "\n\n"), file="blank.csv", contains=("empty",))


def test_header_but_no_rows(tmp_path):
    raises(read_path, write(tmp_path / "t.csv", "user,item,rating\n"), file="t.csv", contains=("no data rows",))


def test_wrong_delimiter_explicit_format(tmp_path):
    p = write(tmp_path / "u.data", "1,10,5,881250949\n2,10,3,881250950\n")
    raises(read_ml100k, p, file="u.data", contains=("tab", "1 column", "looks like it uses comma"))


def test_wrong_delimiter_given_for_table(tmp_path):
    p = write(tmp_path / "t.csv", "user,item\na,b\nc,d\n")
    raises(read_path, p, delimiter=";", file="t.csv", contains=("semicolon", "comma"))


def test_too_few_columns(tmp_path):
    p = write(tmp_path / "u.data", "1\t10\t5\n2\t10\t3\n")
    raises(read_ml100k, p, file="u.data", contains=("3 columns", "at least 4"))


def test_ragged_line(tmp_path):
    p = write(tmp_path / "ratings.dat", "1::10::5::881250949\n\n2::10::3::881250950::9\n")
    raises(read_ml1m, p, file="ratings.dat", line=3, contains=("5 fields",))


def test_headerless_mapping_names_missing_column(tmp_path):
    p = write(tmp_path / "r.csv", "1,10,5\n2,11,3\n")
    raises(read_table, p, {"user": "userId", "item": 1}, None, None, "error", file="r.csv", column="userId",
           contains=("no header", "0–2"))


def test_mapping_position_out_of_range(tmp_path):
    p = write(tmp_path / "r.csv", "1,10,5\n2,11,3\n")
    raises(read_table, p, {"user": 0, "item": 1, "rating": 5}, None, None, "error", file="r.csv",
           column="5", contains=("only 3 columns",))


def test_header_mapping_names_missing_column(tmp_path):
    p = write(tmp_path / "r.csv", "uid,iid,stars\n1,10,5\n")
    raises(read_table, p, {"user": "uid", "item": "product"}, None, None, "error", file="r.csv",
           column="product", contains=("'uid', 'iid', 'stars'",))


def test_unguessable_header(tmp_path):
    p = write(tmp_path / "r.csv", "who,what,when\nx,y,5\n")  # a header (text over a number) naming no role
    raises(read_path, p, file="r.csv", line=1, contains=("mapping", "'who', 'what', 'when'"))


def test_non_numeric_rating(tmp_path):
    p = write(tmp_path / "u.data", "1\t10\t5\t1\n2\t10\tfive\t2\n")
    raises(read_ml100k, p, file="u.data", line=2, column="rating", contains=("'five'",))


def test_rating_out_of_range_ml100k(tmp_path):
    p = write(tmp_path / "u.data", "1\t10\t5\t1\n2\t10\t7\t2\n")
    raises(read_ml100k, p, file="u.data", line=2, column="rating", contains=("'7'", "1–5"))
    q = write(tmp_path / "x" / "u.data", "1\t10\t3.5\t1\n")
    raises(read_ml100k, q, file="u.data", line=1, contains=("3.5",))


def test_rating_out_of_range_ml_latest(tmp_path):
    p = write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.5,1\n1,2,0.25,2\n")
    raises(read_ml_latest, p, file="ratings.csv", line=3, column="rating", contains=("0.25", "0.5–5"))


def test_negative_id(tmp_path):
    p = write(tmp_path / "UserBehavior.csv", "1,2,3,pv,4\n-5,2,3,pv,4\n")
    raises(read_taobao, p, file="UserBehavior.csv", line=2, column="user_id", contains=("negative",))


def test_non_integer_id(tmp_path):
    p = write(tmp_path / "u.data", "1\t10\t5\t1\n2\tabc\t5\t1\n")
    raises(read_ml100k, p, file="u.data", line=2, column="item", contains=("'abc'",))
    q = write(tmp_path / "ratings.dat", "1::2.5::5::1\n")
    raises(read_ml1m, q, file="ratings.dat", line=1, column="item", contains=("2.5",))


@pytest.mark.parametrize("line,col", [("\t10\t5\t1", "user"), ("2\t10\t\t1", "rating"), ("2\t10\t5\t", "timestamp")])
def test_empty_cells(tmp_path, line, col):
    p = write(tmp_path / "u.data", f"1\t10\t5\t1\n{line}\n")
    raises(read_ml100k, p, file="u.data", line=2, column=col, contains=("empty",))


def test_non_numeric_timestamp(tmp_path):
    p = write(tmp_path / "u.data", "1\t10\t5\t1\n1\t11\t5\tyesterday\n")
    raises(read_ml100k, p, file="u.data", line=2, column="timestamp", contains=("'yesterday'",))


def test_duplicates_error_names_both_lines(tmp_path):
    p = write(tmp_path / "u.data", "1\t10\t5\t1\n2\t10\t5\t1\n1\t10\t3\t2\n")
    raises(read_ml100k, p, file="u.data", line=3, contains=("lines 1 and 3", "dedup='last'", "--dedup last"))
    d = read_ml100k(p, dedup="last")
    assert d.rating.tolist() == [5.0, 3.0] and d.meta["duplicates_dropped"] == 1  # file order kept
    t = write(tmp_path / "t.csv", "user,item\na,b\nc,d\na,b\n")
    raises(read_path, t, file="t.csv", line=4, contains=("lines 2 and 4",))
    assert len(read_path(t, dedup="first")) == 2


def test_ncf_duplicate_between_train_and_test(tmp_path):
    write(tmp_path / "toy.train.rating", NCF_TRAIN)
    write(tmp_path / "toy.test.rating", "0\t1\t4\t200\n1\t2\t5\t201\n")  # (0,1) is also a train row
    write(tmp_path / "toy.test.negative", "(0,1)\t7\n(1,2)\t4\n")
    raises(read_ncf, tmp_path / "toy.train.rating", file="toy.train.rating", line=1,
           contains=("toy.test.rating (line 1)",))


def test_ncf_bad_negatives(tmp_path):
    write(tmp_path / "toy.train.rating", NCF_TRAIN)
    write(tmp_path / "toy.test.rating", NCF_TEST)
    write(tmp_path / "toy.test.negative", "(0,3)\t7\t9\n(1,2)\t4\n")
    raises(read_path, tmp_path, file="toy.test.negative", line=2, contains=("1 negatives",))
    write(tmp_path / "toy.test.negative", "(0,3)\t7\t9\n1,2\t4\t5\n")
    raises(read_path, tmp_path, file="toy.test.negative", line=2, contains=("(user,item)",))


def test_unknown_taobao_behavior(tmp_path):
    p = write(tmp_path / "UserBehavior.csv", "1,2,3,pv,4\n1,2,3,like,5\n")
    raises(read_taobao, p, file="UserBehavior.csv", line=2, column="behavior_type", contains=("'like'",))


def test_recbole_header_without_types(tmp_path):
    p = write(tmp_path / "x.inter", "user_id\titem_id\n1\t2\n")
    raises(read_recbole, p, file="x.inter", line=1, contains=("typed header",))


def test_binary_file(tmp_path):
    p = write(tmp_path / "ratings.csv", b"user,item\n\x00\x01\x02binary")
    raises(read_path, p, file="ratings.csv", contains=("binary",))
    g = write(tmp_path / "u.data", gzip.compress(b"1\t2\t3\t4\n"))
    raises(read_path, g, file="u.data", contains=("binary", "gzip"))
    x = tmp_path / "book.xlsx"
    with zipfile.ZipFile(x, "w") as zf:
        zf.writestr("xl/workbook.xml", "<x/>")
    raises(read_path, x, file="book.xlsx", contains=("no data file", "xl/workbook.xml", "MovieLens"))


def test_invalid_utf8_after_the_sniffed_block(tmp_path):
    # the first 64 KiB decide the encoding; a bad byte past them is an error naming its line
    p = write(tmp_path / "ratings.csv", b"userId,movieId,rating\n" + b"1,2,3\n" * 20000 + b"1,\xff\xfe,3\n")
    raises(read_ml_latest, p, file="ratings.csv", line=20002, contains=("UTF-8", "0xff"))


def test_oversize_zip_member_refused_before_unpacking(tmp_path, monkeypatch):
    z = tmp_path / "ml-1m.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ml-1m/ratings.dat", "1::2::3::4\n" * 5000)
    monkeypatch.setenv(MAX_FILE_BYTES_ENV, "20000")
    raises(read_path, z, file="ml-1m/ratings.dat", contains=("55,000 bytes", "k-core"))


def test_a_zip_is_bounded_by_what_its_members_unpack_to_together(tmp_path, monkeypatch):
    # each member is under the limit; the two the reader needs are over it together
    z = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ml-100k/u.data", "".join(f"{k}\t{k % 50 + 1}\t3\t881250949\n" for k in range(1, 4001)))
        zf.writestr("ml-100k/u.item", "".join(f"{k}|Movie {k} (1995)|01-Jan-1995||http://x|{GENRE_FLAGS}\n"
                                              for k in range(1, 1001)))  # about 60 KB each
    monkeypatch.setenv("RECVIZ_MAX_ARCHIVE_BYTES", "100000")
    raises(read_path, z, file="ml-100k/u.item", contains=("per archive", "RECVIZ_MAX_ARCHIVE_BYTES"))
    monkeypatch.setenv("RECVIZ_MAX_ARCHIVE_BYTES", "1000000")
    data = read_path(z)
    assert len(data) == 4000 and data.item_title(0) == "Movie 1 (1995)"


def test_a_zip_member_streams_under_the_budget_even_past_its_declared_size(tmp_path, monkeypatch):
    # the streaming count: a budget smaller than what is read, with the admission of declared sizes bypassed
    from recviz.data.formats.archive import Archive

    z = tmp_path / "t.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("t.csv", "user,item\n" + "a,b\n" * 50_000)
    monkeypatch.setenv("RECVIZ_MAX_ARCHIVE_BYTES", "300000")
    with Archive(z) as archive:
        src = archive.source("t.csv")
        assert len(src.head()) == 64 * 1024  # sniffing reads a prefix only
        archive.limit = 100_000
        raises(src.read_bytes, file="t.csv", contains=("unpacked to more than", "per archive"))


@pytest.mark.slow  # large data
def test_a_zip_bomb_is_refused_in_bounded_memory(tmp_path):
    # ~1 GB of u.data lines in a zip of about a megabyte: refused before it is unpacked
    z = tmp_path / "ml-100k.zip"
    line = b"196\t242\t3\t881250949\n"
    chunk = line * ((4 << 20) // len(line))  # 4 MiB of lines per write
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("ml-100k/u.data", "w", force_zip64=True) as fh:
            for _ in range(1_000_000_000 // len(chunk)):
                fh.write(chunk)
    assert z.stat().st_size < 10e6
    peak, out = peak_child_memory(
        "from recviz.data.formats.detect import read_path\nfrom recviz.errors import DataError\n"
        f"try:\n    read_path({str(z)!r})\nexcept DataError as e:\n    print('REFUSED', e)\n")
    assert "REFUSED" in out and "u.data" in out and "per archive" in out, out
    assert peak < 1.5e9, peak


def test_oversize_file_refused_before_reading(tmp_path, monkeypatch):
    p = write(tmp_path / "big.csv", "user,item\n" + "a,b\n" * 100)
    monkeypatch.setenv(MAX_FILE_BYTES_ENV, "100")
    raises(read_path, p, file="big.csv", contains=("410 bytes", "k-core"))


def test_zip_without_known_files(tmp_path):
    z = tmp_path / "stuff.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("notes.md", "hi")
        zf.writestr("data/a.json", "{}")
    raises(read_path, z, file="stuff.zip", contains=("notes.md", "data/a.json", "u.data", "UserBehavior.csv"))


# ---- accepted but wrong, before: now refused or kept right -----------------------------------------
def _rows(n=240, ts=lambda k: 1_500_000_000 + 60 * k):
    return "user,item,rating,timestamp\n" + "".join(f"u{k % 20},i{k},{1 + k % 5},{ts(k)}\n" for k in range(n))


def test_one_huge_timestamp_does_not_rescale_the_others(tmp_path):
    text = _rows().replace("u3,i3,4,1500000180", "u3,i3,4,99999999999999999999999")
    raises(read_path, write(tmp_path / "t.csv", text), file="t.csv", line=5, contains=("beyond any Unix time unit",))


def test_seconds_and_milliseconds_mixed_is_an_error_naming_a_line(tmp_path):
    text = _rows(ts=lambda k: 1_500_000_000 + 60 * k if k != 7 else 1_500_000_420_000)
    raises(read_path, write(tmp_path / "t.csv", text), file="t.csv", line=9,
           contains=("in milliseconds", "most of this column is in seconds"))


def test_a_column_in_one_unit_is_read_in_seconds(tmp_path):
    ms = read_path(write(tmp_path / "ms.csv", _rows(ts=lambda k: (1_500_000_000 + 60 * k) * 1000)))
    s = read_path(write(tmp_path / "s.csv", _rows()))
    assert (ms.timestamp == s.timestamp).all() and len(set(s.timestamp.tolist())) == 240


def test_a_rating_too_large_for_float32_is_refused(tmp_path):
    text = _rows().replace("u2,i2,3,", "u2,i2,1e308,")
    raises(read_path, write(tmp_path / "t.csv", text), file="t.csv", line=4, contains=("too large",))


def test_a_fifo_or_a_device_is_refused_at_once(tmp_path):
    import os
    import time

    fifo = tmp_path / "ratings.csv"
    os.mkfifo(fifo)
    start = time.monotonic()
    raises(read_path, fifo, file="ratings.csv", contains=("not a regular file",))
    raises(read_path, "/dev/zero", file="zero", contains=("not a regular file",))
    assert time.monotonic() - start < 5


@pytest.mark.slow  # large data
@pytest.mark.parametrize("line", ["1," * 1_000_000 + "1\n", "1," * 10_000_000 + "1\n"])
def test_a_line_of_a_million_columns_or_megabytes_is_refused_in_bounded_memory(tmp_path, line):
    path = write(tmp_path / "bomb.csv", "user,item\n" + line)
    peak, out = peak_child_memory(
        "from recviz.data.formats.detect import read_path\nfrom recviz.errors import DataError\n"
        f"try:\n    read_path({str(path)!r})\nexcept DataError as e:\n    print('REFUSED', e)\n")
    assert "REFUSED" in out and "bomb.csv" in out and ("columns" in out or "longer than" in out), out
    assert peak < 1.5e9, peak


def test_the_readme_states_every_input_limit_and_how_to_raise_it():
    from pathlib import Path

    from recviz.limits import LIMITS, describe

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Limits and guarantees")[1].split("\n## ")[0]
    for limit in LIMITS:
        assert describe(limit) in section, describe(limit)
        assert limit.env is None or f"`{limit.env}`" in section, limit.env


def test_rows_are_bounded_while_a_file_streams_and_from_parquet_footers(tmp_path, monkeypatch):
    import pandas as pd

    from recviz.data.load import load
    from recviz.errors import DataError

    monkeypatch.setenv("RECVIZ_MAX_ROWS", "1000")
    path = tmp_path / "log.csv"
    path.write_text("user,item\n" + "".join(f"u{i % 50},i{i}\n" for i in range(1500)))
    with pytest.raises(DataError) as err:
        load(str(path))
    assert "more than 1,000 rows" in str(err.value) and "line 1002" in str(err.value)
    assert "RECVIZ_MAX_ROWS" in err.value.fix
    pd.DataFrame({"user": [f"u{i % 50}" for i in range(1500)], "item": [f"i{i}" for i in range(1500)]}) \
        .to_parquet(tmp_path / "log.parquet")
    with pytest.raises(DataError, match="has 1,500 rows, more than 1,000"):
        load(str(tmp_path / "log.parquet"))
    monkeypatch.setenv("RECVIZ_MAX_ROWS", "2000")
    assert len(load(str(path))) == 1500 and len(load(str(tmp_path / "log.parquet"))) == 1500
