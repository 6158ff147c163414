"""What a finished run leaves on disk for the pages: per-user test results and the item map."""

import numpy as np
import pytest

from recviz.config import RunConfig
from recviz.errors import RecvizError
from recviz.models import registry
from recviz.experiments import artifacts
from recviz.experiments.experiment import run


def test_eval_and_coords_of_a_baseline(tmp_path):
    result = run(RunConfig.build(dataset="synthetic:users=80,items=300,interactions=1500", model="itemknn"))
    artifacts.save(tmp_path, result)
    ev = artifacts.load_eval(tmp_path)
    assert np.array_equal(ev["users"], result.test.users)
    assert ev["HR@10"].mean() == pytest.approx(result.test.metrics["HR@10"], abs=1e-6)
    assert ev["rank"].min() >= 1
    assert artifacts.load_item_coords(tmp_path) is None  # ItemKNN has no item embeddings


@pytest.mark.skipif("gmf" not in registry.MODELS, reason="neural models not registered")
def test_item_coords_of_an_embedding_model(tmp_path):
    result = run(RunConfig.build(dataset="synthetic:users=80,items=300,interactions=1500", model="gmf",
                           emb_dim=8, epochs=2, patience=0))
    artifacts.save(tmp_path, result)
    coords = artifacts.load_item_coords(tmp_path)
    assert coords["xy"].shape == (result.data.n_items, 2)
    assert 0 < coords["explained"][0] <= 1


def test_a_tampered_top_n_file_is_refused_not_shown(tmp_path):
    from recviz.errors import RecvizError

    result = run(RunConfig.build(dataset="synthetic:users=80,items=300,interactions=1500", model="itemknn"))
    artifacts.save(tmp_path, result)
    top = artifacts.load_topn(tmp_path)
    for bad in (-top["items"] - 1, top["items"] + 10_000):
        np.savez(tmp_path / "topn.npz", items=bad, scores=top["scores"])
        with pytest.raises(RecvizError, match="lists item ids outside 80 users"):
            artifacts.load_topn(tmp_path)


def test_swapped_run_folders_are_refused_not_shown_as_each_other(tmp_path):
    """Swapping two run folders used to show run 2's lists as run 1's."""
    from recviz.experiments import record
    from recviz.experiments.store import RunStore

    store = RunStore()
    ids = [record.train_here(RunConfig.build(dataset="synthetic:users=40,items=60,interactions=600", model=m,
                                             candidates=20), store)[0] for m in ("itempop", "itemknn")]
    assert artifacts.run_files(store, store.get(ids[0])) == store.run_dir(ids[0])
    a, b = (store.run_dir(i) for i in ids)
    a.rename(tmp_path / "x"), b.rename(a), (tmp_path / "x").rename(b)
    for run_id in ids:
        with pytest.raises(RecvizError, match="holds the files of another run") as err:
            artifacts.run_files(store, store.get(run_id))
        assert str(store.run_dir(run_id)) in str(err.value)


def test_the_recommendations_page_says_a_swapped_folder_is_another_runs(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from recviz.experiments import record
    from recviz.experiments.store import RunStore
    from tests.test_app import ROOT

    monkeypatch.chdir(ROOT)
    store = RunStore()
    ids = [record.train_here(RunConfig.build(dataset="synthetic:users=40,items=60,interactions=600", model=m,
                                             candidates=20), store)[0] for m in ("itempop", "itemknn")]
    a, b = (store.run_dir(i) for i in ids)
    a.rename(tmp_path / "x"), b.rename(a), (tmp_path / "x").rename(b)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("pages/recommendations.py").run()
    errors = [e.value for e in at.error]
    assert any("holds the files of another run" in e for e in errors), errors
    assert not any("internal error" in e for e in errors), errors
