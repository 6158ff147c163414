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
