"""Readers: every supported format on tiny hand-made files, detection of folders and zips, and the
real data in ../shared/data when it is there. Bad input: tests/test_bad_input.py."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recviz.data.formats.detect import read_path
from recviz.data.formats.movielens import read_ml100k
from recviz.data.formats.recbole import read_recbole
from recviz.data.formats.table import read_table
from recviz.data.formats.taobao import BEHAVIORS, read_taobao
from recviz.data.formats.textfile import sniff_delimiter
from recviz.data.validate import validate_frame
from tests.helpers import NCF_NEG, NCF_TEST, NCF_TRAIN, flags, raises, raw, write

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
ML100K = SHARED / "ml-100k"
TAOBAO = SHARED / "taobao-sample" / "UserBehavior.csv"



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


def test_recbole_behavior_field(tmp_path):
    write(tmp_path / "tb.inter", "user_id:token\titem_id:token\tbehavior_type:token\ttimestamp:float\tlabel:float\n"
                                 "1\t5\tclick\t10\t1\n1\t5\tbuy\t11\t1\n")
    d = read_recbole(tmp_path / "tb.inter")
    assert d.rating is None  # 'label' is not a rating
    assert d.behaviors == ("buy", "click") and d.to_frame()["behavior"].tolist() == ["click", "buy"]




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
