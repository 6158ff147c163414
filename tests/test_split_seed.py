"""split_seed: the split drawn with a seed of its own, so that two seeds of one setting share a split
and compare user by user; unset, every run keeps exactly the split its own seed draws."""

import numpy as np
import pytest

from recviz.analysis import paired, peruser, results
from recviz.config import RunConfig
from recviz.data.split import make_split, protocol_label, same_scale
from recviz.experiments import experiment, prepared, record
from recviz.experiments.store import RunStore

TINY = "synthetic:users=60,items=300,interactions=1500"


def test_unset_the_split_is_the_runs_seeds_as_before(tmp_path, monkeypatch):
    """The default is today's behaviour: the split (and its stored file) of the run's own seed, the
    same split key and label as a config stored before split_seed existed."""
    monkeypatch.setenv("RECVIZ_HOME", str(tmp_path))
    config = RunConfig.build(dataset=TINY, model="itempop", seed=3)
    assert config.split_seed is None and config.drawn_with == 3
    drawn = experiment.prepare_split(config)
    before = make_split(prepared.prepare_data(config), "loo", seed=3, n_candidates=100, cache=False)
    for part in ("train_rows", "valid_rows", "test_rows", "valid_candidates", "test_candidates"):
        assert np.array_equal(getattr(drawn, part), getattr(before, part)), part
    assert sorted(p.name.rsplit("-", 1)[1] for p in (tmp_path / "splits").iterdir()) == ["3.npz"]
    stored_before = {k: v for k, v in config.to_dict().items() if k != "split_seed"}  # an older version's JSON
    old = RunConfig.from_stored(stored_before)
    assert old.split_key == config.split_key and old.protocol_detail == "leave-one-out, 100 candidates"
    assert drawn.describe(run_seed=3) == config.protocol_detail


def test_a_split_seed_draws_the_split_and_candidates_whatever_the_runs_seed(tmp_path, monkeypatch):
    monkeypatch.setenv("RECVIZ_HOME", str(tmp_path))
    base = RunConfig.build(dataset=TINY, model="gmf", seed=0)
    shared = base.replace(seed=1, split_seed=0)
    own = base.replace(seed=1)
    assert shared.split_key == base.split_key != own.split_key
    a, b, c = (experiment.prepare_split(x) for x in (base, shared, own))
    assert np.array_equal(a.test_rows, b.test_rows) and np.array_equal(a.test_candidates, b.test_candidates)
    assert not np.array_equal(a.test_candidates, c.test_candidates)
    assert experiment.build_model(shared).seed == 1  # the model still takes the run's seed
    # the label names the split seed where it is not the run's own
    assert shared.protocol_detail == "leave-one-out, 100 candidates, split seed 0"
    assert base.replace(split_seed=0).protocol_detail == "leave-one-out, 100 candidates"
    assert b.describe(run_seed=1) == shared.protocol_detail
    assert same_scale(shared.protocol_detail) == base.protocol_detail
    assert protocol_label("ratio", split_seed=4) == "80/10/10 ratio split, full ranking, split seed 4"


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """GMF seeds 0 and 1 on split seed 0 (runs 1, 2), GMF seed 1 on split seed 1 (3), GMF seed 1 on
    its own split (4)."""
    home = tmp_path_factory.mktemp("split-seed-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECVIZ_HOME", str(home))
        base = RunConfig.build(dataset=TINY, model="gmf", epochs=2, emb_dim=8)
        for config in (base.replace(split_seed=0), base.replace(seed=1, split_seed=0),
                       base.replace(seed=1, split_seed=1), base.replace(seed=1)):
            record.train_here(config)
    return home


def test_two_model_seeds_on_one_split_seed_compare_as_a_pair(stored, monkeypatch):
    monkeypatch.setenv("RECVIZ_HOME", str(stored))
    store = RunStore()
    one, two = peruser.load(store, 1), peruser.load(store, 2)
    assert one.per_user.split_id == two.per_user.split_id
    c = paired.compare(one, two, metric="NDCG@10")
    d = one.per_user.metrics["NDCG@10"] - two.per_user.metrics["NDCG@10"]
    assert c.test.n == len(d) == len(one.per_user.users) and c.test.mean_diff == pytest.approx(d.mean())
    assert (c.test.wins_a, c.test.wins_b, c.test.ties) == ((d > 0).sum(), (d < 0).sum(), (d == 0).sum())
    assert c.test.wins_a + c.test.wins_b > 0  # two seeds train two models: a real comparison
    assert store.get(2).summary["protocol_detail"] == "leave-one-out, 100 candidates, split seed 0"
    assert store.get(2).config.split_seed == 0  # recorded in the run's config


def test_different_split_seeds_are_refused_with_the_reason(stored, monkeypatch):
    monkeypatch.setenv("RECVIZ_HOME", str(stored))
    store = RunStore()
    with pytest.raises(paired.NotPaired, match=r"different splits \(split seed 0 ≠ 1\).*not paired") as refused:
        paired.compare(peruser.load(store, 2), peruser.load(store, 3))
    assert "--split-seed" in refused.value.fix
    with pytest.raises(paired.NotPaired, match=r"split seed 0 ≠ 1"):  # unset: the run's seed draws it
        paired.compare(peruser.load(store, 1), peruser.load(store, 4))


def test_runs_that_differ_in_split_seed_are_one_setting_repeated_on_one_panel(stored, monkeypatch):
    monkeypatch.setenv("RECVIZ_HOME", str(stored))
    df = results.runs_table([r.to_row() for r in RunStore().list()]).sort_values("id").reset_index(drop=True)
    assert not results.mixed_protocols(df)
    assert results.seed_groups(df).nunique() == 1
    assert set(results.metric_long(df)["panel"]) == {f"{df['dataset'][0]} · leave-one-out, 100 candidates"}
    labels = results.run_labels(df)
    assert labels[1] == "#2 gmf · seed=1, split_seed=0" and labels[2] == "#3 gmf · seed=1, split_seed=1"
    assert paired.seed_group(df, 2) == [1, 2, 3, 4]


def test_the_cli_and_the_api_take_the_split_seed(tmp_path, monkeypatch, capsys):
    import json

    import recviz
    from recviz.cli import main

    monkeypatch.setenv("RECVIZ_HOME", str(tmp_path))
    assert main(["train", "--dataset", TINY, "--model", "itempop", "--seed", "2", "--split-seed", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["split_seed"] == 0 and out["protocol_detail"].endswith(", split seed 0")
    run = recviz.train(TINY, "itempop", seed=2, split_seed=0)
    assert run.config.split_seed == 0 and run.config.split_key == RunConfig.build(dataset=TINY).split_key
    with pytest.raises(Exception, match="split_seed must be"):
        RunConfig.build(dataset=TINY, split_seed=-1)


def test_the_train_form_has_a_split_seed_field_that_may_be_empty(monkeypatch, tmp_path):
    from tests.test_app import ROOT, app, assert_clean

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("RECVIZ_HOME", str(tmp_path))
    at = app().switch_page("pages/train.py").run()
    field = at.text_input(key="split_seed")
    assert field.label == "Split seed" and field.value == ""  # empty: the run's seed draws the split
    assert not at.button(key="launch").disabled
    field.set_value("x").run()
    assert_clean(at)
    assert any("split_seed must be" in e.value for e in at.error) and at.button(key="launch").disabled
    at.text_input(key="split_seed").set_value("7").run()
    assert not at.error and not at.button(key="launch").disabled
