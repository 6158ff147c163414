"""Item titles from a file of their own: read from a generic table or MovieLens' files, matched by
raw id, kept beside a saved dataset for all its versions, and shown by the runs trained on it —
added with the upload, later on the Data page, or with `recviz import --titles` / `recviz titles`."""

import os
import subprocess
import sys

import pandas as pd
import pytest

from recviz.config import RunConfig
from recviz.data import item_info, saved
from recviz.data.load import save_named
from recviz.errors import DataError
from recviz.experiments import artifacts, record
from recviz.experiments.store import RunStore
from tests.helpers import frame
from tests.test_app import app, app_env, assert_clean  # noqa: F401  (app_env: the fixture)

RATINGS = "user,item,rating,timestamp\n" + "".join(
    f"u{u},{100 + (u * 7 + k) % 30},{1 + k % 5},{u * 100 + k}\n" for u in range(25) for k in range(8))
TITLES = "item_id;Title;Genres\n" + "".join(f"{100 + i};Film {i} (1999);Drama|Comedy\n" for i in range(30))


def _files(tmp_path):
    (tmp_path / "ratings.csv").write_text(RATINGS)
    (tmp_path / "titles.csv").write_text(TITLES)
    return str(tmp_path / "ratings.csv"), str(tmp_path / "titles.csv")


def test_a_generic_table_is_read_by_its_header(tmp_path):
    _, titles = _files(tmp_path)
    table = item_info.read(titles)
    assert table.loc["103", "title"] == "Film 3 (1999)" and table.loc["103", "genres"] == "Drama|Comedy"
    assert len(table) == 30


def test_movielens_item_files_keep_their_own_readers(tmp_path):
    (tmp_path / "u.item").write_bytes(b"1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n")
    assert item_info.read(tmp_path / "u.item").loc["1", "title"] == "Toy Story (1995)"
    (tmp_path / "movies.csv").write_text('movieId,title,genres\n2,"Jumanji (1995)",Adventure|Children\n')
    assert item_info.read(tmp_path / "movies.csv").loc["2", "genres"] == "Adventure|Children"


def test_a_file_without_an_id_or_title_column_says_what_is_expected(tmp_path):
    (tmp_path / "bad.csv").write_text("sku,label\n1,x\n")
    with pytest.raises(DataError) as err:
        item_info.read(tmp_path / "bad.csv")
    assert "names no item id column" in str(err.value) and "bad.csv" in str(err.value)
    assert "title" in err.value.fix


def test_titles_that_match_no_item_are_refused_and_own_titles_survive():
    data = frame([("a", "x", 1), ("a", "y", 2), ("b", "x", 3)])
    with pytest.raises(DataError, match="none of the 1 item ids"):
        item_info.attach(data, pd.DataFrame({"title": ["Z"], "genres": [None]}, index=["zzz"]))
    data.items = pd.DataFrame({"title": ["own x", "own y"], "genres": [None, None]})
    got = item_info.attach(data, pd.DataFrame({"title": ["file y"], "genres": ["G"]}, index=["y"]))
    assert got.items["title"].tolist() == ["own x", "file y"] and got.meta["titles"]["matched"] == 1


def test_titles_added_later_reach_every_version_and_its_runs(tmp_path):
    ratings, titles = _files(tmp_path)
    save_named("films", ratings)
    run_id = record.train_here(RunConfig.build(dataset="films", model="itempop", candidates=10))[0]
    before = artifacts.recommend_for(RunStore().run_dir(run_id), "u1", k=3)
    assert all(t.startswith("item ") for t in before["title"])
    (tmp_path / "more.csv").write_text(RATINGS + "u99,101,5,1\n")
    save_named("films", str(tmp_path / "more.csv"), replace=True)  # v2
    got = saved.add_titles("films", titles)
    assert got == {"file": "titles.csv", "matched": 30, "items": 30}
    after = artifacts.recommend_for(RunStore().run_dir(run_id), "u1", k=3, item_table=saved.titles("films"))
    assert after["item"].tolist() == before["item"].tolist()
    assert after["title"].tolist() == [f"Film {int(i) - 100} (1999)" for i in after["item"]]
    assert saved.load("films", "v1").item_title(0).startswith("Film ")  # what the app shows for the run
    cli = subprocess.run([sys.executable, "-m", "recviz", "recommend", "--run", str(run_id), "--user", "u1", "-k", "3"],
                         capture_output=True, text=True)
    assert cli.returncode == 0 and after["title"][0] in cli.stdout


def test_the_cli_takes_titles_with_the_import_and_later(tmp_path):
    ratings, titles = _files(tmp_path)
    run = lambda *a: subprocess.run([sys.executable, "-m", "recviz", *a], capture_output=True, text=True)  # noqa: E731
    out = run("import", ratings, "--name", "withtitles", "--titles", titles)
    assert out.returncode == 0, out.stderr
    assert saved.load("withtitles").item_title(0).startswith("Film ")
    assert run("import", ratings, "--name", "plain").returncode == 0
    out = run("titles", "plain", titles)
    assert out.returncode == 0 and "30 of its 30 items have a title" in out.stdout
    bad = run("titles", "plain", ratings)  # the ratings file is no titles file
    assert bad.returncode == 2 and "ratings.csv" in bad.stderr and "Traceback" not in bad.stderr


def test_the_data_page_takes_titles_beside_the_upload_and_later(tmp_path):
    ratings, titles = _files(tmp_path)
    at = app().switch_page("pages/data.py").run()
    at.file_uploader(key="upload").set_value(("ratings.csv", RATINGS.encode(), "text/csv")).run()
    at.file_uploader(key="titles_upload").set_value(("titles.csv", TITLES.encode(), "text/csv")).run()
    at.text_input(key="save_as").set_value("uploaded").run()
    at.button(key="save_upload").click().run()
    assert_clean(at)
    assert any("30 items have a title" in s.value for s in at.success), [s.value for s in at.success]
    assert saved.load("uploaded").item_title(3).startswith("Film ")
    save_named("later", ratings)
    at.session_state["dataset"] = "later"
    at.run()
    at.file_uploader(key="titles_later").set_value(("mine.csv", TITLES.encode(), "text/csv")).run()
    at.button(key="add_titles").click().run()
    assert_clean(at)
    assert any("30 of the 30 items of 'later' have a title" in s.value for s in at.success)
    assert not list((tmp_path / "recviz-home" / "incoming").glob("*/*"))  # nothing left behind


@pytest.mark.parametrize("kind", ["missing", "folder", "fifo"])
def test_a_titles_path_that_is_no_regular_file_is_one_message(tmp_path, kind):
    """A FIFO used to block for ever; a missing path or a folder ended in an internal error."""
    path = tmp_path / "titles.csv"
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    with pytest.raises(DataError) as err:
        item_info.read(path)
    assert str(path) in str(err.value) and "Fix:" in str(err.value)
