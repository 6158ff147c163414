"""Pages with an unreadable run stored (a damaged JSON column, a model not registered here): Home,
Results, Recommendations and Train still render, say the run is "unreadable: <why>", and list the
other runs."""

import json
import sqlite3
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
TINY = "synthetic:users=60,items=400,interactions=1500"


@pytest.fixture(autouse=True)
def app_env(monkeypatch):
    monkeypatch.chdir(ROOT)  # app.py reads assets/ and pages/ relative to the repo
    monkeypatch.setenv("RECVIZ_WORKER_THREADS", "1")


def page_text(at: AppTest) -> str:
    """Everything the page shows as text: prose, tables and the options of its pickers."""
    parts = []
    for kind in ("markdown", "caption", "text", "info", "warning", "error", "success", "title", "subheader", "header"):
        parts += [str(e.value) for e in at.get(kind)]
    parts += [e.value.to_string() for e in at.get("dataframe") if hasattr(e.value, "to_string")]
    for kind in ("selectbox", "multiselect", "radio"):
        parts += [" ".join(map(str, e.options)) for e in at.get(kind)]
    return "\n".join(parts)


def test_pages_show_an_unreadable_run_with_why_and_list_the_rest():
    import recviz
    from recviz.experiments.store import RunStore

    good = recviz.train(TINY, model="itempop").save()
    bad_json = recviz.train(TINY, model="itempop", seed=1).save()
    unknown = recviz.train(TINY, model="itempop", seed=2).save()
    with sqlite3.connect(RunStore().path) as conn:
        conn.execute("UPDATE runs SET config = '{nope' WHERE id = ?", (bad_json,))
        conn.execute("UPDATE runs SET model = 'toy', config = ? WHERE id = ?",
                     (json.dumps({"model": "toy", "dataset": TINY, "options": {"factors": 8}}), unknown))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90).run()
    assert not at.exception, [e.value for e in at.exception]
    shown = {}
    for page in ("pages/results.py", "pages/recommendations.py", "pages/train.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        shown[page] = page_text(at)
    for page, text in shown.items():
        assert f"#{good}" in text, (page, text[-2000:])  # the readable run is listed
        if page != "pages/train.py":  # Train shows the watched run (the newest): the unknown model's
            assert f"Run #{bad_json} (itempop) is unreadable: Expecting property name" in text, (page, text[-2000:])
        assert f"#{unknown}" in text and "unreadable: unknown model 'toy'" in text, (page, text[-2000:])
