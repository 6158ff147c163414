"""A run that evaluated more users than it stores lists of (`topn.TOPN_USERS`) has its
beyond-accuracy metrics over the seeded sample it stored: the table names the sample's size, and
the Results page and `recviz report` (text and JSON) say so in words, with the number of lists the run
stored as read from its topn.npz (not a bound's constant)."""

import json

import pytest

from recviz.analysis import exposure, peruser
from recviz.config import RunConfig
from recviz.eval import beyond
from recviz.experiments import artifacts, record, topn
from recviz.experiments.store import RunStore
from tests.test_app import app, assert_clean

DATA = "synthetic:users=80,items=300,interactions=1500"
NOTE = "#1 itemknn: beyond-accuracy metrics over a seeded sample of 8 of its 20 evaluated users " \
       "(the run stored the top-N lists of 8 users)"


@pytest.fixture
def sampled(recviz_home, monkeypatch):
    """One itemknn run judged on 20 users, stored with the lists of 8 of them."""
    monkeypatch.setattr(topn, "TOPN_USERS", 8)
    record.train_here(RunConfig.build(dataset=DATA, model="itemknn", eval_users=20))
    return peruser.load(RunStore(), 1)


def test_the_table_names_the_sample_and_its_metrics_are_over_the_stored_lists_only(sampled):
    assert sampled.listed() == 8 and len(sampled.per_user.users) == 20
    row = exposure.table([sampled], k=10).iloc[0]
    assert row[exposure.LISTED] == 8 and row[exposure.EVALUATED] == 20
    stored = artifacts.load_topn(RunStore().run_dir(1))
    pu = sampled.per_user
    on_sample = beyond.beyond_accuracy(stored["items"], 10, sampled.n_items, pu.item_popularity)
    for name in ("Coverage@10", "Gini@10", "ARP@10"):
        assert row[name] == pytest.approx(on_sample[name])
    assert exposure.sample_notes([sampled]) == [NOTE]
    assert exposure.shown(exposure.table([sampled]))[exposure.LISTED].tolist() == ["8"]


def test_the_note_names_the_lists_stored_when_the_cell_budget_binds(recviz_home, monkeypatch):
    """A budget of 6.5 users' cells: 6 users' lists stored, fewer than TOPN_USERS (8) — the words
    give the 6 read from the file, not either constant."""
    from recviz.experiments.experiment import prepare_data

    n_items = prepare_data(RunConfig.build(dataset=DATA, model="itemknn")).n_items
    monkeypatch.setattr(topn, "TOPN_USERS", 8)
    monkeypatch.setattr(topn, "TOPN_CELLS", 6 * n_items + n_items // 2)
    record.train_here(RunConfig.build(dataset=DATA, model="itemknn", eval_users=20))
    r = peruser.load(RunStore(), 1)
    assert r.stored() == 6 == len(artifacts.load_topn(RunStore().run_dir(1))["users"]) and r.listed() == 6
    assert exposure.sample_notes([r]) == [("#1 itemknn: beyond-accuracy metrics over a seeded sample of 6 of its 20 "
                                           "evaluated users (the run stored the top-N lists of 6 users)")]


def test_no_note_when_every_evaluated_user_has_a_list(recviz_home):
    record.train_here(RunConfig.build(dataset=DATA, model="itemknn", eval_users=20))
    r = peruser.load(RunStore(), 1)
    assert r.listed() == 20 and exposure.sample_notes([r]) == []
    assert exposure.table([r]).iloc[0][exposure.LISTED] == 20


def test_recviz_report_says_the_sample_in_text_and_json(sampled, capsys):
    from recviz.cli import main

    assert main(["report", "1"]) == 0
    assert NOTE in capsys.readouterr().out
    assert main(["report", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert data["beyond_accuracy_samples"] == [NOTE]
    assert data["beyond_accuracy"][0][exposure.LISTED] == 8 and data["beyond_accuracy"][0][exposure.EVALUATED] == 20


def test_the_results_page_captions_the_sample(sampled):
    at = app().switch_page("pages/results.py").run()
    assert_clean(at)
    assert NOTE in [c.value for c in at.caption]
    table = next(d.value for d in at.dataframe if "Coverage@10" in d.value.columns)
    assert table[exposure.LISTED].tolist() == ["8"] and table[exposure.EVALUATED].tolist() == ["20"]
