"""Why an item is recommended (`recviz.analysis.why`): ItemKNN's contributing neighbours with their
weights on a hand-made case, embedding models' closest history items, ItemPop said to be
non-personal, behaviours named; the CLI's --why, the API's why=True and the page's "Why" table."""

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recviz.analysis import why
from recviz.data.interactions import Interactions
from recviz.data.split import Split
from recviz.models.itemknn import ItemKNN

NONE = np.array([], dtype=np.int64)


def tiny(behaviors=False):
    """User u0 has a, b, c in train (c twice, as view and buy with behaviours); u1 has d, e."""
    rows = [("u0", "a", 1, "view"), ("u0", "b", 2, "buy"), ("u0", "c", 3, "view"), ("u0", "c", 4, "buy"),
            ("u1", "d", 5, "view"), ("u1", "e", 6, "buy")]
    df = pd.DataFrame(rows, columns=["user", "item", "timestamp", "behavior"])
    if not behaviors:
        df = df.drop(columns="behavior")
    data = Interactions.from_frame(df, name="tiny", **({"behaviors": ("view", "buy")} if behaviors else {}))
    return Split("loo", data, train_rows=np.arange(len(df)), valid_rows=NONE, test_rows=NONE)


def knn(split):
    """ItemKNN with a hand-made similarity: d's neighbours a 0.5, b 0.2, e 0.9; e's: c 0.7, d 0.1."""
    data = split.data
    i = {name: int(np.flatnonzero(data.item_ids == name)[0]) for name in "abcde"}
    sim = sp.lil_matrix((5, 5), dtype=np.float32)
    sim[i["d"], i["a"]], sim[i["d"], i["b"]], sim[i["d"], i["e"]] = 0.5, 0.2, 0.9
    sim[i["e"], i["c"]], sim[i["e"], i["d"]] = 0.7, 0.1
    sim = sim.tocsr()
    model = ItemKNN()
    model.set_state({"sim_indptr": sim.indptr, "sim_indices": sim.indices, "sim_data": sim.data,
                     "train_user": data.user[split.train_rows], "train_item": data.item[split.train_rows]}, 2, 5)
    return model, i


def test_itemknn_lists_the_neighbours_that_made_the_score_with_their_weights():
    split = tiny()
    model, i = knn(split)
    u0 = int(np.flatnonzero(split.data.user_ids == "u0")[0])
    out = why.explain(model, split, u0, [i["d"], i["e"]], k=3)
    assert out.kind == why.NEIGHBOURS and "similarity" in out.measure
    got = [(r.rank, r.item, r[3], round(r.weight, 6)) for r in out.frame.itertuples(index=False)]
    assert got == [(1, "d", "a", 0.5), (1, "d", "b", 0.2), (2, "e", "c", 0.7)]  # e (0.9) and d are not u0's
    # the supports are the score's terms: they sum to it
    scores = model.score(np.array([u0]), np.array([[i["d"], i["e"]]]))[0]
    assert np.allclose(out.frame.groupby("rank")["weight"].sum().to_numpy(), scores)
    assert why.explain(model, split, u0, [i["d"]], k=1).frame["supported by"].tolist() == ["a"]
    assert out.lines() == {1: "item a (0.500), item b (0.200)", 2: "item c (0.700)"}


def test_each_supporting_item_names_the_users_behaviours_with_it():
    split = tiny(behaviors=True)
    model, i = knn(split)
    u0 = int(np.flatnonzero(split.data.user_ids == "u0")[0])
    frame = why.explain(model, split, u0, [i["d"], i["e"]]).frame
    assert dict(zip(frame["supported by"], frame["behaviour"])) == {"a": "view", "b": "buy", "c": "view, buy"}
    assert why.explain(model, tiny(), u0, [i["d"]]).frame["behaviour"].tolist() == ["", ""]


def test_embedding_models_show_the_closest_history_items_in_item_space():
    split = tiny()
    data = split.data
    emb = np.zeros((5, 2), np.float32)
    for name, v in {"a": (1, 0), "b": (0, 1), "c": (1, 1), "d": (2, 0.1), "e": (-1, 0)}.items():
        emb[int(np.flatnonzero(data.item_ids == name)[0])] = v
    model = SimpleNamespace(spec=SimpleNamespace(name="gmf"), item_embeddings=lambda: emb)
    u0 = int(np.flatnonzero(data.user_ids == "u0")[0])
    d = int(np.flatnonzero(data.item_ids == "d")[0])
    out = why.explain(model, split, u0, [d], k=2)
    assert out.kind == why.CLOSEST and "closest in the model's item space" in out.measure
    assert "because" not in out.measure
    assert out.frame["supported by"].tolist() == ["a", "c"]
    assert np.allclose(out.frame["weight"], [2 / np.hypot(2, 0.1), 2.1 / np.hypot(2, 0.1) / np.sqrt(2)])


def test_itempop_is_said_to_be_popular_overall_not_personal():
    split = tiny()
    model = SimpleNamespace(spec=SimpleNamespace(name="itempop"), item_embeddings=lambda: None)
    out = why.explain(model, split, 0, [3, 4])
    assert out.kind == why.POPULAR and "popular overall, not personal" in out.measure
    assert out.lines() == {1: "popular overall, not personal", 2: "popular overall, not personal"}


TINY = "synthetic:users=40,items=150,interactions=900"


@pytest.fixture
def knn_run(recviz_home):
    from recviz.config import RunConfig
    from recviz.experiments import record

    return record.train_here(RunConfig.build(dataset=TINY, model="itemknn", candidates=20))[0]


def test_cli_and_api_explain_a_stored_runs_list(knn_run, capsys):
    import recviz
    from recviz.cli import main

    run = recviz.open_run(knn_run)
    table = run.recommend("u0003", k=5, why=True)
    assert "neighbours" in table.attrs["why"] and table["why"].str.len().gt(0).all()
    assert main(["recommend", "--run", str(knn_run), "--user", "u0003", "-k", "5", "--why", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["why"]["kind"] == "neighbours" and {r["rank"] for r in out["why"]["support"]} <= set(range(1, 6))
    # the CLI's stored top-5 and the API's rescoring agree, and so do their reasons
    support = pd.DataFrame(out["why"]["support"])
    first = support[support["rank"] == 1]
    assert table["why"].iloc[0].startswith(str(first["support title"].iloc[0]))
    assert main(["recommend", "--run", str(knn_run), "--user", "u0003", "-k", "3", "--why"]) == 0
    text = capsys.readouterr().out
    assert "why: the user's items among its ItemKNN neighbours" in text


def test_the_recommendations_page_shows_why(knn_run, monkeypatch):
    from tests.test_app import ROOT, app, assert_clean

    monkeypatch.chdir(ROOT)
    at = app().switch_page("pages/recommendations.py").run()
    assert_clean(at)
    assert any(h.value == "Why these items" for h in at.subheader)
    assert any("ItemKNN neighbours" in c.value for c in at.caption)
    table = next(d.value for d in at.dataframe if "supported by" in d.value.columns)
    assert set(table["rank"]) <= set(range(1, why.SHOWN + 1)) and len(table) > 0
    assert (table["weight"].dropna() > 0).all()
