"""Readers: every supported format on tiny hand-made files, every bad-input case as a DataError
for people, and the real data in ../shared/data when it is there."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recviz.data.formats.detect import read_path
from recviz.data.formats.movielens import read_ml1m, read_ml100k, read_ml_latest
from recviz.data.formats.ncf import read_ncf
from recviz.data.formats.recbole import read_recbole
from recviz.data.formats.table import read_table
from recviz.data.formats.taobao import BEHAVIORS, read_taobao
from recviz.data.formats.textfile import MAX_FILE_BYTES_ENV, sniff_delimiter
from recviz.data.validate import validate_frame
from recviz.errors import DataError, RecvizError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
ML100K = SHARED / "ml-100k"
TAOBAO = SHARED / "taobao-sample" / "UserBehavior.csv"

GENRE_FLAGS = "|".join(["0"] * 19)


def write(path: Path, text: str | bytes, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_bytes(text.encode(encoding))
    return path


def flags(*on: int) -> str:
    f = ["0"] * 19
    for i in on:
        f[i] = "1"
    return "|".join(f)


def raises(fn, *args, file: str, line: int | None = None, column: str | None = None,
           contains: tuple[str, ...] = (), **kwargs) -> DataError:
    """Run fn, expect a DataError naming `file`, the line or column, with a Fix; return it."""
    with pytest.raises(DataError) as info:
        fn(*args, **kwargs)
    err = info.value
    msg = str(err)
    assert isinstance(err, RecvizError)
    assert file in msg, msg
    assert "Fix:" in msg, msg
    if line is not None:
        assert err.row == line, msg
        assert f"line {line}" in msg, msg
    if column is not None:
        assert column in msg, msg
    for text in contains:
        assert text.lower() in msg.lower(), f"{text!r} not in {msg!r}"
    return err


def raw(d, col: str = "item") -> list[str]:
    ids = d.item_ids if col == "item" else d.user_ids
    return [str(x) for x in ids[getattr(d, col)]]


# ---- formats on tiny files ----------------------------------------------------------------------
def test_ml100k_tiny(tmp_path):
    write(tmp_path / "ml-100k" / "u.data", "1\t10\t5\t881250949\n2\t10\t3\t881250950\n1\t20\t1\t881250951\n")
    write(tmp_path / "ml-100k" / "u.item",
          f"10|Toy Story (1995)|01-Jan-1995||http://x|{flags(3, 4, 5)}\n"
          f"20|Misérables, Les (1995)|01-Jan-1995||http://y|{flags(8, 12)}\n", encoding="latin-1")
    d = read_ml100k(tmp_path / "ml-100k" / "u.data")
    assert d.name == "ml-100k" and d.meta["format"] == "ml-100k"
    assert (d.n_users, d.n_items, len(d)) == (2, 2, 3)
    assert raw(d, "user") == ["1", "2", "1"] and raw(d) == ["10", "10", "20"]
    assert d.rating.tolist() == [5.0, 3.0, 1.0] and d.rating.dtype == np.float32
    assert d.timestamp.tolist() == [881250949, 881250950, 881250951] and d.timestamp.dtype == np.int64
    assert d.item_title(0) == "Toy Story (1995)" and d.item_title(1) == "Misérables, Les (1995)"
    assert d.items.at[0, "genres"] == "Animation|Children's|Comedy"
    assert d.items.at[1, "genres"] == "Drama|Musical"


def test_reader_output_survives_save_and_load(tmp_path):
    write(tmp_path / "d" / "u.data", "1\t10\t5\t1\n2\t20\t4\t2\n")
    write(tmp_path / "d" / "u.item", f"10|Café (1990)|||x|{flags(1)}\n20|B (1991)|||y|{flags()}\n",
          encoding="latin-1")
    d = read_path(tmp_path / "d")
    from recviz.data.interactions import Interactions
    e = Interactions.load(d.save(tmp_path / "d.npz"))
    assert e.fingerprint() == d.fingerprint() and e.item_title(0) == "Café (1990)"
    assert e.items.at[0, "genres"] == "Action" and pd.isna(e.items.at[1, "genres"])


def test_ml1m_tiny(tmp_path):
    write(tmp_path / "ml-1m" / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    write(tmp_path / "ml-1m" / "movies.dat", "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
                                              "661::Cité des enfants perdus, La (1995)::Adventure|Sci-Fi\n",
          encoding="latin-1")
    d = read_path(tmp_path / "ml-1m")
    assert d.meta["format"] == "ml-1m" and d.name == "ml-1m"
    assert raw(d, "user") == ["1", "1", "2"] and raw(d) == ["1193", "661", "1193"]
    assert d.rating.tolist() == [5, 3, 4] and d.timestamp.tolist() == [978300760, 978302109, 978298413]
    assert list(d.item_ids) == ["661", "1193"]  # numeric order
    assert d.item_title(0) == "Cité des enfants perdus, La (1995)"
    assert d.items.at[0, "genres"] == "Adventure|Sci-Fi"


def test_ml_latest_tiny(tmp_path):
    write(tmp_path / "ml-latest-small" / "ratings.csv",
          "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,0.5,964981247\n2,1,3.5,964982224\n")
    write(tmp_path / "ml-latest-small" / "movies.csv",
          'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n'
          '3,"American President, The (1995)",(no genres listed)\n')
    d = read_path(tmp_path / "ml-latest-small")
    assert d.meta["format"] == "ml-latest" and d.name == "ml-latest-small"
    assert d.rating.tolist() == [4.0, 0.5, 3.5]
    assert d.item_title(1) == "American President, The (1995)"
    assert d.items.at[0, "genres"] == "Adventure|Animation" and pd.isna(d.items.at[1, "genres"])


def test_recbole_tiny(tmp_path):
    write(tmp_path / "toy.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                  "u1\ti9\t4\t100.0\nu2\ti9\t2.5\t101\nu1\ti7\t1\t99.7\n")
    write(tmp_path / "toy.item", "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
                                 "i9\tToy Story\t1995\tAnimation Children's Comedy\ni7\tHeat\t1995\tAction\n")
    d = read_path(tmp_path / "toy.inter")
    assert d.meta["format"] == "recbole" and d.name == "toy"
    assert raw(d, "user") == ["u1", "u2", "u1"] and raw(d) == ["i9", "i9", "i7"]
    assert d.rating.tolist() == [4.0, 2.5, 1.0] and d.timestamp.tolist() == [100, 101, 99]
    assert d.item_title(list(d.item_ids).index("i9")) == "Toy Story"
    assert d.items.at[list(d.item_ids).index("i9"), "genres"] == "Animation|Children's|Comedy"


def test_recbole_behaviour_field(tmp_path):
    write(tmp_path / "tb.inter", "user_id:token\titem_id:token\tbehavior_type:token\ttimestamp:float\tlabel:float\n"
                                 "1\t5\tclick\t10\t1\n1\t5\tbuy\t11\t1\n")
    d = read_recbole(tmp_path / "tb.inter")
    assert d.rating is None  # 'label' is not a rating
    assert d.behaviors == ("buy", "click") and d.to_frame()["behavior"].tolist() == ["click", "buy"]


NCF_TRAIN = "0\t1\t5\t100\n0\t2\t3\t101\n1\t1\t4\t102\n1\t3\t2\t103\n"
NCF_TEST = "0\t3\t4\t200\n1\t2\t5\t201\n"
NCF_NEG = "(0,3)\t7\t1000\t4\n(1,2)\t4\t12\t7\n"


def test_ncf_tiny_keeps_given_negatives(tmp_path):
    for suffix, text in ((".train.rating", NCF_TRAIN), (".test.rating", NCF_TEST), (".test.negative", NCF_NEG)):
        write(tmp_path / f"toy{suffix}", text)
    d = read_path(tmp_path)
    assert d.meta["format"] == "ncf" and d.name == "toy"
    assert d.meta["train_rows"] == 4 and d.meta["test_rows"] == 2 and d.meta["negatives_per_user"] == 3
    assert len(d) == 6 and raw(d) == ["1", "2", "1", "3", "3", "2"]
    g = d.given_test
    assert d.user_ids[g.user].tolist() == ["0", "1"] and d.item_ids[g.item].tolist() == ["3", "2"]
    assert d.item_ids[g.negatives].tolist() == [["7", "1000", "4"], ["4", "12", "7"]]
    assert g.negatives.dtype == np.int64 and g.negatives.shape == (2, 3)
    # negatives nobody rated still have ids; the id space is the union, in numeric order
    assert list(d.item_ids) == ["1", "2", "3", "4", "7", "12", "1000"]
    assert d.stats()["given_test"] == {"users": 2, "negatives_per_user": 3}
    # any of the three files identifies the set
    assert read_path(tmp_path / "toy.test.negative").given_test.negatives.tolist() == g.negatives.tolist()


def test_taobao_tiny_keeps_latest(tmp_path):
    text = ("1,10,100,pv,50\n"
            "1,10,100,pv,40\n"   # older duplicate: dropped
            "1,10,100,buy,60\n"
            "2,11,101,fav,70\n"
            "2,11,101,fav,70\n"  # same timestamp: the later line wins (identical here)
            "2,12,102,cart,80\n")
    write(tmp_path / "UserBehavior.csv", text)
    d = read_taobao(tmp_path / "UserBehavior.csv")
    assert d.behaviors == BEHAVIORS == ("pv", "cart", "fav", "buy")
    f = d.to_frame(raw_ids=True)
    assert f.values.tolist() == [["1", "10", 50, "pv"], ["1", "10", 60, "buy"], ["2", "11", 70, "fav"],
                                 ["2", "12", 80, "cart"]]
    assert d.meta["duplicates_dropped"] == 2
    assert d.items.at[list(d.item_ids).index("12"), "genres"] == "102"
    keep = read_taobao(tmp_path / "UserBehavior.csv", dedup="keep")
    assert len(keep) == 6


def test_dedup_rules_ties_follow_file_order():
    df = pd.DataFrame({"user": ["a", "a", "a", "b"], "item": ["x", "x", "x", "x"],
                       "rating": ["1", "2", "3", "4"], "timestamp": ["5", "9", "9", "1"]})
    last = validate_frame(df, file="f.csv", dedup="last")
    assert last["rating"].tolist() == [3.0, 4.0]  # ts 9 twice: the later line
    first = validate_frame(df, file="f.csv", dedup="first")
    assert first["rating"].tolist() == [1.0, 4.0]
    no_ts = validate_frame(df.drop(columns="timestamp"), file="f.csv", dedup="last")
    assert no_ts["rating"].tolist() == [3.0, 4.0]
    assert len(validate_frame(df, file="f.csv", dedup="keep")) == 4


# ---- generic tables ------------------------------------------------------------------------------
@pytest.mark.parametrize("sep", [",", "\t", ";", "::", "|"])
def test_table_sniffs_delimiter(tmp_path, sep):
    rows = [["user", "item", "rating"], ["u1", "i1", "4"], ["u2", "i1", "2"], ["u1", "i2", "5"]]
    p = write(tmp_path / "t.txt", "\n".join(sep.join(r) for r in rows) + "\n")
    d = read_path(p)
    assert d.meta["format"] == "table" and d.meta["delimiter"] == sep and d.meta["header"] is True
    assert raw(d, "user") == ["u1", "u2", "u1"] and d.rating.tolist() == [4, 2, 5]


def test_sniff_delimiter_unit():
    assert sniff_delimiter(["1,2,3", "4,5,6"]) == ","
    assert sniff_delimiter(["1\t2\t3", "4\t5\t6"]) == "\t"
    assert sniff_delimiter(["a;b;c", "d;e;f"]) == ";"
    assert sniff_delimiter(["1::2::3", "4::5::6"]) == "::"
    assert sniff_delimiter(['1,"a; b",3', '2,"c; d",4']) == ","


def test_table_guesses_header_roles_and_dates(tmp_path):
    p = write(tmp_path / "events.csv", "Time,Customer_ID,product_id,Event,Score\n"
                                       "2017-11-25 00:00:10,0042,p1,view,1\n"
                                       "2017-11-25T00:00:20Z,42,p1,buy,2\n")
    d = read_table(p, None, None, None, "error")
    assert d.meta["mapping"] == {"user": "Customer_ID", "item": "product_id", "rating": "Score",
                                 "timestamp": "Time", "behavior": "Event"}
    assert list(d.user_ids) == ["0042", "42"]  # distinct ids, as written
    assert d.timestamp.tolist() == [1511568010, 1511568020]
    assert d.behaviors == ("buy", "view")


def test_table_headerless_mapping_by_position(tmp_path):
    p = write(tmp_path / "log.tsv", "1700000000123\tA\tx\n1700000005000\tB\ty\n")
    d = read_table(p, {"user": 1, "item": "2", "timestamp": 0}, None, None, "error")
    assert d.meta["header"] is False
    assert raw(d, "user") == ["A", "B"] and raw(d) == ["x", "y"] and d.rating is None
    assert d.timestamp.tolist() == [1700000000, 1700000005]  # milliseconds → seconds
    # no mapping, no header: columns 0, 1, 2 are user, item, rating
    q = write(tmp_path / "plain.csv", "a,b,3\nc,d,4\n")
    e = read_path(q)
    assert raw(e, "user") == ["a", "c"] and e.rating.tolist() == [3, 4]


def test_non_utf8_text_is_read_as_latin1(tmp_path):
    p = write(tmp_path / "old.csv", "user,item,rating\nJosé,Café,4\n", encoding="latin-1")
    d = read_path(p)
    assert list(d.user_ids) == ["José"] and list(d.item_ids) == ["Café"]


def test_bom_and_crlf(tmp_path):
    p = write(tmp_path / "t.csv", b"\xef\xbb\xbfuser,item\r\na,b\r\nc,b\r\n")
    d = read_path(p)
    assert d.meta["mapping"] == {"user": "user", "item": "item"} and list(d.user_ids) == ["a", "c"]


def test_mapping_names_decide_the_header(tmp_path):
    p = write(tmp_path / "t.csv", "cust;prod\nx;y\n")  # all text: only the mapping tells it is a header
    d = read_path(p, mapping={"user": "cust", "item": "prod"})
    assert d.meta["header"] is True and d.meta["delimiter"] == ";" and list(d.item_ids) == ["y"]


# ---- detection: folders, zips, side files --------------------------------------------------------
def _ml100k_files(root: Path) -> None:
    write(root / "u.data", "1\t10\t5\t1\n2\t20\t4\t2\n")
    write(root / "u.item", f"10|A (1990)|||x|{flags(1)}\n20|B (1991)|||y|{flags(2)}\n")


def test_zip_official_layout_and_root_members(tmp_path):
    src = tmp_path / "src"
    _ml100k_files(src)
    z = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(src / "u.data", "ml-100k/u.data")
        zf.write(src / "u.item", "ml-100k/u.item")
        zf.writestr("ml-100k/README", "readme")
    before = sorted(p.name for p in tmp_path.iterdir())
    d = read_path(z)
    assert d.name == "ml-100k" and d.meta["format"] == "ml-100k" and d.source == str(z)
    assert d.item_title(1) == "B (1991)"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written beside the zip
    flat = tmp_path / "mine.zip"
    with zipfile.ZipFile(flat, "w") as zf:
        zf.writestr("UserBehavior.csv", "1,2,3,pv,4\n")
    assert read_path(flat).meta["format"] == "taobao"


def test_taobao_detected_by_content(tmp_path):
    p = write(tmp_path / "sample.csv", "1,2,3,pv,4\n1,5,3,buy,6\n")
    assert read_path(p).meta["format"] == "taobao"


def test_side_file_points_at_the_main_file(tmp_path):
    _ml100k_files(tmp_path)
    raises(read_path, tmp_path / "u.item", file="u.item", contains=("u.data",))


def test_folder_with_two_datasets_is_ambiguous(tmp_path):
    _ml100k_files(tmp_path / "a")
    _ml100k_files(tmp_path / "b")
    raises(read_path, tmp_path, file=str(tmp_path), contains=("a/u.data", "b/u.data"))


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


def test_unknown_taobao_behaviour(tmp_path):
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


# ---- real data (../shared/data) ------------------------------------------------------------------
def _need(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"real data not available at {path}")


ML100K_RATINGS = {1: 6110, 2: 11370, 3: 27145, 4: 34174, 5: 21201}


def _check_ml100k(d, *, full_titles: bool) -> None:
    s = d.stats()
    assert (s["users"], s["items"], s["interactions"]) == (943, 1682, 100000)
    assert s["ratings"] == ML100K_RATINGS
    ids = list(d.item_ids)
    if full_titles:
        assert d.item_title(ids.index("1")) == "Toy Story (1995)"
        assert d.item_title(ids.index("543")) == "Misérables, Les (1995)"
    else:
        assert d.item_title(ids.index("1")) == "Toy Story"
        assert d.item_title(ids.index("543")) == "Misérables, Les"
    assert d.items.at[ids.index("1"), "genres"] == "Animation|Children's|Comedy"
    genres = d.items["genres"].str.split("|").explode().value_counts()
    assert genres["Drama"] == 725 and genres["Comedy"] == 505 and genres["unknown"] == 2


@pytest.mark.realdata
def test_real_ml100k_grouplens():
    _need(ML100K / "u.data")
    d = read_path(ML100K / "u.data")
    assert d.meta["format"] == "ml-100k" and d.name == "ml-100k"
    _check_ml100k(d, full_titles=True)


@pytest.mark.realdata
def test_real_ml100k_recbole():
    _need(ML100K / "ml-100k.inter")
    d = read_path(ML100K / "ml-100k.inter")
    assert d.meta["format"] == "recbole" and d.name == "ml-100k"
    _check_ml100k(d, full_titles=False)
    g = read_path(ML100K / "u.data")
    assert np.array_equal(d.user, g.user) and np.array_equal(d.item, g.item)
    assert np.array_equal(d.rating, g.rating) and np.array_equal(d.timestamp, g.timestamp)


@pytest.mark.realdata
def test_real_ml100k_directory():
    _need(ML100K)
    d = read_path(ML100K)  # holds both layouts: the GroupLens one is preferred
    assert d.meta["format"] == "ml-100k" and d.source == str(ML100K)
    _check_ml100k(d, full_titles=True)


@pytest.mark.realdata
def test_real_ml100k_zip(tmp_path):
    _need(ML100K / "u.data")
    z = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.write(ML100K / "u.data", "ml-100k/u.data")
        zf.write(ML100K / "u.item", "ml-100k/u.item")
    d = read_path(z)
    assert d.meta["format"] == "ml-100k" and d.name == "ml-100k"
    _check_ml100k(d, full_titles=True)


@pytest.mark.realdata
def test_real_taobao_sample():
    _need(TAOBAO)
    every = read_path(TAOBAO, dedup="keep")
    s = every.stats()
    assert (s["users"], s["items"], s["interactions"]) == (43, 3276, 4321)
    assert s["behaviors"] == {"pv": 3926, "cart": 190, "fav": 128, "buy": 77}
    d = read_path(TAOBAO)  # default: the latest row of each (user, item, behaviour)
    assert d.meta["format"] == "taobao" and d.meta["dedup"] == "last"
    frame = pd.read_csv(TAOBAO, header=None, names=["u", "i", "c", "b", "t"], dtype=str)
    frame["t"] = frame["t"].astype(np.int64)
    expected = frame.sort_values("t", kind="stable").drop_duplicates(["u", "i", "b"], keep="last")
    assert len(d) == len(expected)
    got = d.to_frame(raw_ids=True)
    got_ts = dict(zip(zip(got["user"], got["item"], got["behavior"]), got["timestamp"]))
    assert got_ts == dict(zip(zip(expected["u"], expected["i"], expected["b"]), expected["t"]))
    assert d.items["genres"].notna().all()
