"""A large CSV is read chunk by chunk into the very Interactions a whole read gives, every message
still naming its line — and saving one takes memory of the order of the arrays it becomes."""

import numpy as np
import pandas as pd
import pytest

from recviz.data.formats import delimited
from recviz.data.formats.detect import read_path
from recviz.data.interactions import Interactions
from tests.helpers import peak_child_memory, raises, write


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(delimited, "CHUNK_ROWS", 1000)  # many chunks from a small file


def _table(n=5500, ts=lambda k: 1_500_000_000 + 7 * k):
    rng = np.random.default_rng(3)
    users = rng.integers(0, 300, n)
    rows = ["user,item,rating,timestamp"]
    for k in range(n):
        rows.append(f"{'0' if k % 97 == 0 else ''}{users[k]},item{k % 800},{1 + k % 5},{ts(k)}")
        if k % 1234 == 0:
            rows.append("")  # blank lines shift the file lines from the row numbers
    return "\n".join(rows) + "\n"


def test_chunks_give_what_a_whole_read_gives(tmp_path, small_chunks):
    path = write(tmp_path / "t.csv", _table())
    data = read_path(path, dedup="last")
    whole = pd.read_csv(path, dtype=str, skip_blank_lines=True)
    whole["rating"] = whole["rating"].astype(float)
    whole["timestamp"] = whole["timestamp"].astype(np.int64)
    whole = whole.sort_values("timestamp", kind="stable").drop_duplicates(["user", "item"], keep="last").sort_index()
    expected = Interactions.from_frame(whole)
    for col in ("user", "item", "rating", "timestamp"):
        np.testing.assert_array_equal(getattr(data, col), getattr(expected, col), err_msg=col)
    assert list(data.user_ids) == list(expected.user_ids) and list(data.item_ids) == list(expected.item_ids)
    assert data.meta["duplicates_dropped"] == 5500 - len(whole)


def test_a_repeat_across_chunks_is_named_by_both_lines(tmp_path, small_chunks):
    text = "user,item\n" + "".join(f"u{k},i{k}\n" for k in range(4000)) + "u7,i7\n"
    raises(read_path, write(tmp_path / "t.csv", text), file="t.csv", line=4002,
           contains=("lines 9 and 4002", "user 'u7', item 'i7'"))


def test_a_timestamp_in_another_unit_in_a_later_chunk_is_named(tmp_path, small_chunks):
    text = _table(ts=lambda k: 1_500_000_000 + 7 * k if k != 4321 else 1_500_000_000_000)
    raises(read_path, write(tmp_path / "t.csv", text), file="t.csv", line=4327,  # 4321 rows, 4 blank lines, the header before it
           contains=("in milliseconds", "most of this column is in seconds"))


@pytest.mark.slow  # a large file
def test_saving_a_large_csv_streams_it(tmp_path):
    """Three million rows: the save's own memory (peak RSS of a child process above what it held
    after its imports — Python, numpy and pandas take ~105 MB whatever the data) stays under three
    times the final arrays' bytes. Reading the table whole took 12 times."""
    n = 3_000_000
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 50_000, n), rng.integers(0, 20_000, n)
    keep = np.unique(users * 20_000 + items, return_index=True)[1]
    frame = pd.DataFrame({"user": np.char.add("u", users[keep].astype(str)), "item": items[keep],
                          "rating": rng.integers(1, 6, n)[keep], "timestamp": 1_500_000_000 + rng.integers(0, 10**7, n)[keep]})
    path = tmp_path / "big.csv"
    frame.to_csv(path, index=False)
    del frame
    peak, out = peak_child_memory(
        "import json, resource\n"
        "from recviz.data.load import save_named\n"
        "before = int(open('/proc/self/statm').read().split()[1]) * 4096\n"
        f"data = save_named('big', {str(path)!r})\n"
        "arrays = (data.user, data.item, data.rating, data.timestamp, data.user_ids, data.item_ids)\n"
        "print(json.dumps({'before': before, 'nbytes': sum(a.nbytes for a in arrays), 'rows': len(data)}))\n",
        timeout=180)
    facts = __import__("json").loads(out.strip().splitlines()[-1])
    assert facts["rows"] == len(keep)
    used = peak - facts["before"]
    print(f"peak {peak / 1e6:.0f} MB, after imports {facts['before'] / 1e6:.0f} MB, "
          f"arrays {facts['nbytes'] / 1e6:.0f} MB: {used / facts['nbytes']:.2f}x")
    assert used < 3 * facts["nbytes"], (peak, facts)
