"""Rough edges from the "Understanding" issue, each pinned by a test."""

import os

import pytest

from recviz.config import RunConfig
from recviz.errors import DataError
from tests.helpers import write

RATINGS = "user,item,rating,timestamp\n" + "".join(f"u{u},i{(u * 3 + k) % 9},4,{k}\n" for u in range(6) for k in range(5))


# ---- a dataset referenced by a relative path --------------------------------------------------------
def test_a_relative_dataset_path_is_stored_absolute_and_two_spellings_are_one(tmp_path, monkeypatch):
    data = write(tmp_path / "data" / "ratings.csv", RATINGS)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    a = RunConfig.build(dataset="../data/ratings.csv", model="itempop")
    b = RunConfig.from_dict({"dataset": "./../data/../data/ratings.csv", "model": "itempop"})
    assert a.dataset == b.dataset == str(data.resolve())
    assert RunConfig.from_json(a.to_json()).dataset == a.dataset


def test_catalog_and_saved_names_are_kept_as_typed(tmp_path, monkeypatch):
    from recviz.data.load import save_named

    monkeypatch.chdir(tmp_path)
    save_named("mine", str(write(tmp_path / "r.csv", RATINGS)))
    assert RunConfig.build(dataset="mine").dataset == "mine"
    assert RunConfig.build(dataset="ml-100k").dataset == "ml-100k"
    assert RunConfig.build(dataset="synthetic:users=10,items=20,interactions=50").dataset.startswith("synthetic:")


def test_an_old_runs_relative_path_that_is_not_here_names_the_problem(tmp_path, monkeypatch):
    from recviz.data.load import load

    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as err:
        load("../shared/data/ml-100k")
    text = str(err.value)
    assert "relative path" in text and str(tmp_path) in text and "absolute" in text
