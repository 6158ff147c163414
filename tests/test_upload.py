"""What the upload form relies on: the preview of a file and saving it under a name."""

import pytest

from recviz.data.formats.table import preview
from recviz.data.load import load, save_named
from recviz.errors import DataError


def test_preview_sniffs_delimiter_header_and_roles(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("userId;movieId;stars;ts\n1;10;4;100\n2;10;5;200\n")
    pv = preview(f)
    assert pv.delimiter == ";" and pv.header
    assert pv.roles == {"user": "userId", "item": "movieId", "rating": "stars", "timestamp": "ts"}
    assert pv.rows.shape == (2, 4) and pv.rows.iloc[1, 2] == "5"


def test_preview_without_header_proposes_positions(tmp_path):
    f = tmp_path / "u.txt"
    f.write_text("1\t10\t4\t100\n2\t11\t3\t200\n")
    pv = preview(f)
    assert pv.delimiter == "\t" and not pv.header
    assert pv.roles == {"user": "0", "item": "1", "rating": "2", "timestamp": "3"}


def test_save_named_applies_kcore_and_reloads(tmp_path):
    f = tmp_path / "r.csv"
    rows = [(u, i) for u in range(6) for i in range(5)] + [(9, 0)]  # user 9 has one interaction
    f.write_text("user,item\n" + "".join(f"{u},{i}\n" for u, i in rows))
    saved = save_named("kc", str(f), min_user=2)
    assert saved.n_users == 6 and len(saved) == 30
    again = load("kc")
    assert again.name == "kc" and len(again) == 30


def test_save_named_refuses_bad_names(tmp_path):
    with pytest.raises(DataError, match="not a usable dataset name"):
        save_named("../escape", "synthetic")
