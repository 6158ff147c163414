"""Parquet: the same log read from CSV and from Parquet is the same dataset; folders of Parquet
files, column mappings and bad values behave as they do for CSV."""

import numpy as np
import pandas as pd
import pytest

from recviz.data import saved
from recviz.data.load import load
from recviz.errors import DataError


def synthetic_log(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"user_id": rng.integers(0, n // 50, n), "item_id": rng.integers(0, n // 200, n),
                          "rating": rng.integers(1, 6, n).astype(np.float64),
                          "timestamp": rng.integers(1_500_000_000, 1_700_000_000, n)})
    return frame.drop_duplicates(["user_id", "item_id"], ignore_index=True)


def assert_same(a, b) -> None:
    assert saved.fingerprint(a) == saved.fingerprint(b)  # every array and both id maps
    for col in ("user", "item", "rating", "timestamp"):
        np.testing.assert_array_equal(getattr(a, col), getattr(b, col))
    np.testing.assert_array_equal(a.user_ids, b.user_ids)
    np.testing.assert_array_equal(a.item_ids, b.item_ids)


@pytest.mark.slow
def test_a_million_rows_from_csv_and_from_parquet_are_the_same_dataset(tmp_path):
    log = synthetic_log(1_000_000)
    assert len(log) > 900_000
    log.to_csv(tmp_path / "log.csv", index=False)
    log.to_parquet(tmp_path / "log.parquet", index=False)
    from_csv, from_parquet = load(str(tmp_path / "log.csv")), load(str(tmp_path / "log.parquet"))
    assert len(from_csv) == len(log)
    assert_same(from_csv, from_parquet)


def test_a_folder_of_parquet_files_is_one_table_and_mappings_work_as_for_csv(tmp_path):
    log = synthetic_log(20_000).rename(columns={"user_id": "customer", "item_id": "sku", "rating": "stars"})
    log.to_csv(tmp_path / "log.csv", index=False)
    parts = tmp_path / "parts"
    parts.mkdir()
    for k, chunk in enumerate(np.array_split(np.arange(len(log)), 3)):
        log.iloc[chunk].to_parquet(parts / f"part-{k}.parquet", index=False)
    mapping = {"user": "customer", "item": "sku", "rating": "stars", "timestamp": "timestamp"}
    from_csv = load(str(tmp_path / "log.csv"), mapping=mapping)
    assert_same(from_csv, load(str(parts), mapping=mapping))
    by_position = {"user": 0, "item": 1, "rating": 2, "timestamp": 3}
    assert_same(from_csv, load(str(parts), mapping=by_position))
    with pytest.raises(DataError, match="could not tell which column holds the item"):
        load(str(parts))  # 'sku' is not a name an item column is guessed from: as for CSV


def test_bad_values_in_parquet_get_the_csv_messages(tmp_path):
    log = synthetic_log(2_000)
    log.loc[5, "rating"] = np.nan
    log.to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(DataError, match=r"line 6.*rating"):
        load(str(tmp_path / "bad.parquet"))
    pd.concat([synthetic_log(1_000), synthetic_log(1_000).head(1)]).to_parquet(tmp_path / "dup.parquet")
    with pytest.raises(DataError, match="dedup"):
        load(str(tmp_path / "dup.parquet"))
    assert len(load(str(tmp_path / "dup.parquet"), dedup="last")) == len(synthetic_log(1_000))
    (tmp_path / "junk.parquet").write_bytes(b"user,item\n1,2\n")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        load(str(tmp_path / "junk.parquet"))


def test_import_to_parquet_keeps_a_version_column_wise_that_reads_back_identically(tmp_path, capsys):
    import json

    from recviz.cli import main
    from recviz.data.load import saved_path

    log = synthetic_log(20_000)
    log["user_id"] = "u" + log["user_id"].astype(str).str.zfill(4)  # text ids keep their spelling
    log["behavior"] = np.where(np.arange(len(log)) % 3 == 0, "buy", "pv")
    log.to_csv(tmp_path / "log.csv", index=False)
    assert main(["import", str(tmp_path / "log.csv"), "--name", "big", "--to", "parquet", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    path = saved_path("big")
    assert path.name == "v1.parquet" and out["saved_as"] == str(path)
    import pyarrow.parquet as pq

    assert pq.read_schema(path).names == ["user", "item", "rating", "timestamp", "behavior"]  # columns
    direct = load(str(tmp_path / "log.csv"))
    again = load("big")
    assert_same(direct, again)
    np.testing.assert_array_equal(direct.behavior, again.behavior)
    assert again.behaviors == direct.behaviors and again.meta["version"] == 1
    assert saved.versions("big")[0]["fingerprint"] == saved.fingerprint(direct)


def test_a_dataset_with_a_given_test_set_is_not_stored_as_parquet():
    from recviz.data.formats.frame import read_frame
    from recviz.data.interactions import GivenTest

    data = read_frame(synthetic_log(2_000))
    data.given_test = GivenTest(np.array([0]), np.array([0]), np.zeros((1, 3), dtype=np.int64))
    with pytest.raises(DataError, match="given test set"):
        saved.save("ncf-like", data, to="parquet")
    assert not saved.exists("ncf-like")


def test_a_folder_of_parquet_and_csv_is_refused_naming_both(tmp_path):
    """It used to read only the CSV, exit 0, and say nothing of the Parquet rows it dropped."""
    log = synthetic_log(2000)
    log.iloc[:1000].to_parquet(tmp_path / "part-0.parquet", index=False)
    log.iloc[1000:].to_csv(tmp_path / "more.csv", index=False)
    with pytest.raises(DataError) as err:
        load(str(tmp_path))
    text = str(err.value)
    assert "part-0.parquet" in text and "more.csv" in text and "Fix:" in text
