"""Rough edges from the "Understanding" issue, each pinned by a test: these in the library, the
config, the README and the error messages; the ones seen on the app's pages are in
tests/test_rough_edges_pages.py."""


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


# ---- page messages name the page's widgets, not CLI flags ---------------------------------------
def test_fixes_on_a_page_name_its_widgets_not_cli_flags():
    from recviz.analysis.messages import for_page
    from recviz.data.validate import DEDUP_FIX

    ray = for_page("start one with `ray start --head`, give its address with --address HOST:PORT, "
                   "or use --address local to start one in this process")
    assert "--address" not in ray.replace("`ray start --head`", "") and "“Ray address” set to local" in ray
    assert "`ray start --head`" in ray  # Ray's own command stays as it is
    assert for_page("check it with `ray status --address ...`") == "check it with `ray status --address ...`"
    dedup = for_page(f"2 rows for (u1, i1); {DEDUP_FIX}")
    assert "dedup=" not in dedup and "--dedup" not in dedup and "“Duplicate (user, item) rows”" in dedup
    assert for_page("ask for fewer candidates (e.g. --candidates 12)") == \
        "ask for fewer candidates (e.g. “Candidates per held-out item” set to 12)"


# ---- a protocol error names the user by their raw id ------------------------------------------------
def test_too_few_candidates_names_the_raw_user_id():
    import pandas as pd

    from recviz.data.interactions import Interactions
    from recviz.data.split import make_split
    from recviz.errors import ProtocolError

    rows = [(f"user-{u}", f"i{(u * 3 + k) % 12}", k) for u in range(5) for k in range(3 if u else 10)]
    data = Interactions.from_frame(pd.DataFrame(rows, columns=["user", "item", "timestamp"]), name="few")
    with pytest.raises(ProtocolError) as err:
        make_split(data, "loo", n_candidates=5)
    assert "user 'user-0' has only 2 items" in str(err.value) and "#" not in str(err.value)


# ---- the two-run table on Recommendations prints no "None" -------------------------------------------
def test_the_side_by_side_table_has_no_missing_cells():
    import numpy as np

    from recviz.analysis import toplists

    top_a = np.array([[0, 1, 2, -1]])  # A has only 3 items for this user (padding)
    top_b = np.array([[5, 0, 6, 7]])
    scores_a = np.array([[3.0, 2.0, 1.0, -np.inf]])
    scores_b = np.array([[4.0, 3.0, 2.0, 1.0]])
    ids, titles = [f"i{k}" for k in range(8)], [f"t{k}" for k in range(8)]
    df = toplists.side_by_side(top_a, scores_a, top_b, scores_b, 0, ids, titles, names=("A", "B"), k=4)
    assert not df.isna().any().any(), df  # Streamlit prints a missing cell as "None"
    assert df["rank in B"].tolist() == ["2", "", "", ""] and df["rank in A"].tolist() == ["", "1", "", ""]
    assert df["A score"].tolist()[:3] == [3.0, 2.0, 1.0] and df["A score"].tolist()[3] == ""


# ---- the MLflow export keeps run names ------------------------------------------------------------------
def test_the_mlflow_export_uses_the_runs_name(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    from recviz.experiments import record, tracking
    from recviz.experiments.store import RunStore

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = RunConfig.build(dataset="synthetic:users=30,items=80,interactions=400", model="itempop", candidates=20)
    named, unnamed = record.train_here(config)[0], record.train_here(config.replace(seed=1))[0]
    store = RunStore()
    store.rename(named, "baseline")
    sent = tracking.export(store, [named, unnamed], uri)
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    assert client.get_run(sent[named]).data.tags["mlflow.runName"] == "baseline"
    assert client.get_run(sent[unnamed]).data.tags["mlflow.runName"] == f"#{unnamed} itempop on {config.dataset}"


# ---- the README's sweep values are accepted ----------------------------------------------------------
def test_sweep_values_take_a_range_and_the_readme_example_parses():
    import re

    from recviz.errors import RecvizError
    from recviz.experiments.sweep import parse_values
    from recviz.models import registry
    from tests.test_app import ROOT

    einmf, gmf = registry.get("einmf"), registry.get("gmf")
    assert parse_values(einmf, "eta", "0:1:0.2") == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert parse_values(gmf, "emb_dim", "8:32:8") == [8, 16, 24, 32]
    assert parse_values(gmf, "emb_dim", "4,8:16:4") == [4, 8, 12, 16]
    with pytest.raises(RecvizError, match="0:1:0.2"):
        parse_values(einmf, "eta", "0,0.2,...,1")  # the ellipsis is refused, saying what works
    with pytest.raises(RecvizError):
        parse_values(einmf, "eta", "1:0:0.2")
    readme = (ROOT / "README.md").read_text()
    shown = re.findall(r"--param (\w+) --values (\S+)", readme)
    assert shown
    for param, values in shown:
        if values.startswith("$"):
            continue
        param = "eta" if param == "OPTION" else param  # the command table's placeholder: a 0–1 option
        spec = next(s for s in registry.MODELS.values() if any(o.name == param for o in s.sweepable()))
        assert parse_values(spec, param, values)


# ---- the README says where the data lives, in its set-up ------------------------------------------------
def test_the_readme_names_the_data_directory_in_its_set_up():
    from recviz import paths
    from tests.test_app import ROOT

    readme = (ROOT / "README.md").read_text()
    set_up = readme[:readme.index("## The command line")]
    assert "RECVIZ_HOME" in set_up and "~/.recviz" in set_up
    assert paths.DEFAULT_HOME == "~/.recviz"


# ---- a CSV quote error named the wrong line -----------------------------------------------------------
def test_an_unclosed_quote_names_the_line_it_opens_on(tmp_path):
    from recviz.data.load import load

    path = write(tmp_path / "q.csv", 'user,item,rating\n1,10,4\n2,11,3\n3,"12,5\n4,13,2\n5,14,1\n')
    with pytest.raises(DataError) as err:
        load(str(path))
    assert err.value.row == 4 and "line 4" in str(err.value) and "never closed" in str(err.value)


# ---- Results' run labels omit shared settings, and there was no settings column -----------------------
def test_the_runs_table_has_a_settings_column_with_what_runs_share():
    from recviz.analysis import results

    def row(i, **values):
        config = RunConfig.build(dataset="synthetic", **values)
        return {"id": i, "model": config.model, "dataset": "synthetic", "protocol": "loo", "status": "done",
                "config": config.to_dict()}

    df = results.runs_table([row(1, model="gmf", emb_dim=16, epochs=3, seed=0),
                             row(2, model="gmf", emb_dim=16, epochs=3, seed=1, split_seed=0),
                             row(3, model="itempop")])
    assert df["settings"].tolist() == ["emb_dim=16, epochs=3", "emb_dim=16, epochs=3, seed=1, split_seed=0",
                                       "defaults"]
    # the labels name what tells the runs apart (both splits drawn with seed 0); the column says the rest
    assert results.run_labels(df).tolist()[:2] == ["#1 gmf · seed=0", "#2 gmf · seed=1"]
    assert results.settings_text("gmf", {**row(4, model="gmf", preset="paper")["config"]}).startswith("preset paper")
    assert results.settings_text("gone-model", {}) == ""


# ---- the sidebar said "cluster at auto" ---------------------------------------------------------------
def test_the_sidebar_names_the_cluster_auto_resolves_to(monkeypatch, tmp_path):
    from recviz.experiments.executors.ray import RayExecutor

    monkeypatch.setenv("RECVIZ_HOME", str(tmp_path))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    where = RayExecutor.where("auto")
    assert "cluster at auto" not in where and "running on this machine" in where
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    assert "the cluster at 10.0.0.5:6379 (RAY_ADDRESS)" in RayExecutor.where("auto")
    assert "the cluster at 10.0.0.9:6379:" in RayExecutor.where("10.0.0.9:6379")
