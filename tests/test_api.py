"""The Python API (`import recviz`): the README's notebook example run verbatim, a light import,
and the errors and round trips behind it."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

import recviz
from recviz.errors import DataError, RecvizError
from recviz.experiments.store import RunStore
from tests.test_app import ROOT


def readme_example() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("## Python API")[1].split("```python\n")[1].split("```")[0]


def test_the_readme_notebook_example_runs_verbatim_and_its_run_shows_in_the_app(monkeypatch, capsys):
    scope: dict = {}
    exec(compile(readme_example(), "README.md (Python API)", "exec"), scope)  # noqa: S102
    run, run_id = scope["run"], scope["run_id"]
    history = run.history
    assert list(history["epoch"]) == [1, 2] and history["train_loss"].notna().all()
    assert {"HR@10", "NDCG@10"} <= set(run.metrics)
    top = run.recommend(7, k=5)
    assert list(top.columns) == ["rank", "item", "title", "score", "held out"] and len(top) == 5
    assert (np.diff(top["score"]) <= 0).all()
    assert run_id in set(recviz.runs()["id"])
    # the stored weights recommend exactly what the trained model did
    pd.testing.assert_frame_equal(scope["same"].recommend(7, k=5), top)
    assert scope["same"].metrics == run.metrics
    # ... and the Results page lists the run
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("pages/results.py").run()
    assert not at.exception, [e.value for e in at.exception]
    shown = at.dataframe[0].value  # the runs table
    assert run_id in set(shown["id"])


def test_import_recviz_is_light():
    code = ("import sys, time; t = time.perf_counter(); import recviz; t = time.perf_counter() - t; "
            "print(t, 'torch' in sys.modules, 'streamlit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.split()
    assert out[1:] == ["False", "False"]
    assert float(out[0]) < 0.5, f"import recviz took {float(out[0]):.2f} s"


def test_train_and_runs_are_plain_functions_beside_the_internal_packages():
    import inspect
    import types

    import recviz.experiments.store  # noqa: F401
    import recviz.training.loop  # noqa: F401

    assert isinstance(recviz.train, types.FunctionType) and isinstance(recviz.runs, types.FunctionType)
    assert recviz.runs().empty and recviz.experiments.store.RunStore is RunStore
    assert "progress" in inspect.signature(recviz.train).parameters


def log(n_users=60, n_items=300, n=1500, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"customer": rng.integers(0, n_users, n), "product": rng.integers(0, n_items, n),
                          "stars": rng.integers(1, 6, n).astype(float)})
    return frame.drop_duplicates(["customer", "product"])


def test_load_maps_and_validates_a_dataframe_like_a_file():
    data = recviz.load(log(), user="customer", item="product", rating="stars")
    assert data.rating is not None and data.n_users == 60
    guessed = recviz.load(log().rename(columns={"customer": "user_id", "product": "item_id"}))
    assert guessed.n_items == data.n_items
    with pytest.raises(DataError, match="line 3.*not a finite number"):
        bad = log()
        bad.iloc[2, 2] = np.inf
        recviz.load(bad, user="customer", item="product", rating="stars")
    with pytest.raises(DataError, match="repeated|duplicate"):
        recviz.load(pd.concat([log(), log().head(1)]), user="customer", item="product")
    with pytest.raises(DataError, match="no such column"):
        recviz.load(log(), user="client", item="product")
    with pytest.raises(DataError, match="neither an existing file"):
        recviz.load("no-such-dataset")


def test_train_checks_options_against_the_model_declaration():
    data = recviz.load(log(), user="customer", item="product")
    with pytest.raises(RecvizError, match="(?s)gmf has no option 'hidden'.*emb_dim"):
        recviz.train(data, model="gmf", hidden=3)
    with pytest.raises(RecvizError, match="epochs"):
        recviz.train(data, model="gmf", epochs=-1)


def test_progress_bar_and_a_catalog_reference(capsys):
    run = recviz.train("synthetic:users=50,items=300,interactions=1500", model="gmf", epochs=2,
                       progress=True, threads=1)
    err = capsys.readouterr().err
    assert "gmf [" in err and "2/2" in err
    assert run.config.dataset == "synthetic:users=50,items=300,interactions=1500" and run.id is None
    run_id = run.save()
    assert run.save() == run_id  # saving twice stores one run
    stored = RunStore().get(run_id)
    assert stored.status == "done" and stored.config.dataset == run.config.dataset
    stored = RunStore().epochs(run_id)  # one layout in memory and in the store
    pd.testing.assert_frame_equal(stored.drop(columns="valid"), run.history.drop(columns="valid"))


def test_a_saved_dataframe_run_reads_its_data_back_and_open_run_refuses_unfinished_runs():
    data = recviz.load(log(), user="customer", item="product", name="my-log")
    run = recviz.train(data, model="itempop")
    run_id = run.save()
    assert RunStore().get(run_id).config.data_ref.startswith("my-log@")
    reopened = recviz.open_run(run_id)
    user = log()["customer"].iloc[0]
    pd.testing.assert_frame_equal(reopened.recommend(user, k=3), run.recommend(user, k=3))
    with pytest.raises(RecvizError, match="is not in"):
        reopened.recommend("nobody")
    queued = RunStore().create(run.config)
    with pytest.raises(RecvizError, match="queued"):
        recviz.open_run(queued)
