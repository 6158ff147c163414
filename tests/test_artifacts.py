"""What a finished run leaves on disk for the pages: per-user test results and the item map."""

import numpy as np
import pytest

from recviz.config import RunConfig
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
