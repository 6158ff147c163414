"""The Data and Recommendations pages on a ~1M-row saved dataset, driven by AppTest: what they
send stays bounded (rows in tables, points in figures, options in pickers) whatever the data's
size, and a rerun reads nothing again — the log is loaded once per version, its summaries
computed once, and a new version saved under the same name is read afresh, not served stale."""

import base64
import json

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from recviz.analysis import dataset, downsample, history
from recviz.analysis.lookup import SHOWN
from recviz.config import RunConfig
from recviz.data import saved
from recviz.data.interactions import Interactions
from recviz.experiments import launch
from tests.test_app import ROOT

NAME = "big"
USERS, ITEMS, ROWS = 10_000, 40_000, 1_000_000


@pytest.fixture(autouse=True)
def app_env(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("RECVIZ_WORKER_THREADS", "1")
    st.cache_resource.clear()  # the caches are the process's: start each test from none
    st.cache_data.clear()
    yield
    for proc in launch.children():
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def big_log(rows: int = ROWS, seed: int = 0) -> Interactions:
    """Distinct (user, item) pairs with long-tailed items and timestamps, raw ids as text."""
    rng = np.random.default_rng(seed)
    user = rng.integers(0, USERS, rows)
    item = np.minimum(rng.zipf(1.4, rows) - 1, ITEMS - 1)
    keys = np.unique(user.astype(np.int64) * ITEMS + item)
    return Interactions.from_codes(keys // ITEMS, keys % ITEMS, (np.arange(USERS) + 1000).astype(str),
                                   (np.arange(ITEMS) + 500_000).astype(str),
                                   timestamp=rng.integers(1_500_000_000, 1_500_900_000, len(keys)))


@pytest.fixture
def counted(monkeypatch):
    """How often the log is read from disk, and how often the Data page's summaries are computed."""
    calls = {"load": 0, "activity": 0, "row_index": 0}
    load, activity, build = saved.load, dataset.activity, history.RowIndex.build.__func__

    def counting_load(*a, **kw):
        calls["load"] += 1
        return load(*a, **kw)

    def counting_activity(*a, **kw):
        calls["activity"] += 1
        return activity(*a, **kw)

    def counting_build(cls, *a, **kw):
        calls["row_index"] += 1
        return build(cls, *a, **kw)

    monkeypatch.setattr(saved, "load", counting_load)
    monkeypatch.setattr(dataset, "activity", counting_activity)
    monkeypatch.setattr(history.RowIndex, "build", classmethod(counting_build))
    return calls


def clean(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def figures(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def points(trace: dict) -> int:
    """A trace's number of x values (plotly 7 sends arrays as base64 typed arrays)."""
    x = trace.get("x", [])
    return len(np.frombuffer(base64.b64decode(x["bdata"]), dtype=x["dtype"])) if isinstance(x, dict) else len(x)


def test_the_data_page_at_a_million_rows_is_bounded_and_reads_the_log_once_per_version(counted):
    data = big_log()
    saved.save(NAME, data)
    at = AppTest.from_file(str(ROOT / "pages" / "data.py"), default_timeout=120)
    at.session_state["dataset"] = NAME
    clean(at.run())
    assert f"{len(data):,}" in [m.value for m in at.metric]
    tail = next(f for f in figures(at) if "Long tail" in f["layout"]["title"]["text"])
    assert [t["name"] for t in tail["data"]] == ["users", "items"]
    assert all(points(t) <= downsample.MAX_POINTS + 4 for t in tail["data"])
    assert sum(len(chart.proto.spec) for chart in at.get("plotly_chart")) < 200_000  # bytes sent
    assert all(len(df.value) <= 100 for df in at.dataframe)
    assert counted["load"] == 1 and counted["activity"] == 2  # users' and items' tails, once each

    clean(at.run())  # a rerun (any widget touched) reads and computes nothing again
    assert counted == {"load": 1, "activity": 2, "row_index": 0}

    fewer = big_log(ROWS // 2, seed=1)  # a new version saved under the name elsewhere (the CLI)
    saved.save(NAME, fewer, replace=True)
    clean(at.run())
    assert f"{len(fewer):,}" in [m.value for m in at.metric]
    assert counted["load"] == 2 and counted["activity"] == 4


@pytest.mark.slow  # a real worker trains ItemPop on the million rows first (~30 s on 2 busy cores)
def test_the_recommendations_page_at_a_million_rows_searches_users_and_pages_the_history(counted):
    data = big_log()
    saved.save(NAME, data)
    run_id = launch.submit(RunConfig.build(dataset=NAME, model="itempop"), threads=1)
    assert launch.wait(run_id, timeout=300).status == "done"
    at = AppTest.from_file(str(ROOT / "pages" / "recommendations.py"), default_timeout=120)
    clean(at.run())
    field = f"user_raw.{NAME}"
    loads = counted["load"]
    assert loads >= 1 and counted["row_index"] == 1

    clean(at.text_input(key=field).set_value("1").run())  # a prefix: 1000..1999 and 10000..10999
    box = at.selectbox(key=f"{field}.match.1")
    assert len(box.options) == SHOWN and box.label.startswith("2,000 user ids start with '1'")
    assert box.options[:3] == ["1000", "10000", "10001"]  # text order, the exact id first
    clean(box.set_value(int(np.flatnonzero(data.user_ids == "1001")[0])).run())
    assert any(h.value == "User 1001" for h in at.subheader)

    clean(at.text_input(key=field).set_value("zzz").run())  # no such id: a few valid ones are offered
    assert any("No user 'zzz' in big" in w.value for w in at.warning)
    assert len(at.selectbox(key=f"user_pick.{NAME}").options) == SHOWN

    heavy = int(np.bincount(data.user).argmax())
    n_rows = int((data.user == heavy).sum())
    assert n_rows > history.PAGE_SIZE
    clean(at.text_input(key=field).set_value(str(data.user_ids[heavy])).run())
    assert any(h.value == f"User {data.user_ids[heavy]}" for h in at.subheader)
    shown = at.dataframe[0].value
    whole = history.user_history(data, heavy)
    assert len(shown) == history.PAGE_SIZE and shown["item"].tolist() == whole["item"][:history.PAGE_SIZE].tolist()
    page_key = f"history_page.{run_id}.{heavy}"
    clean(at.button(key=f"{page_key}.next").click().run())
    shown = at.dataframe[0].value
    assert shown["item"].tolist() == whole["item"][history.PAGE_SIZE:2 * history.PAGE_SIZE].tolist()
    assert all(len(df.value) <= max(history.PAGE_SIZES) for df in at.dataframe)
    assert counted["load"] == loads and counted["row_index"] == 1  # reruns read nothing again
