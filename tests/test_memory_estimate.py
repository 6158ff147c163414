"""A run's memory, estimated before it starts (`recviz.analysis.estimate.check_memory`): the weights a
model would build, counted without allocating them; a run that would not fit is refused with a fix
that the estimate says fits, by `recviz train` and on the Train page."""

import pytest

from recviz.analysis import estimate
from recviz.analysis.estimate import DataSize, check_memory, memory_check, refuse_if_too_big, training_memory
from recviz.config import RunConfig
from recviz.errors import RecvizError
from recviz.experiments import prepared
from recviz.models import registry

TINY = "synthetic:users=60,items=400,interactions=1500"
BIG = DataSize(users=1_000_000, items=4_000_000, rows=100_000_000, row_bytes=24)


@pytest.mark.parametrize("name", [n for n, s in registry.MODELS.items() if s.uses_device])
def test_the_counted_weights_are_the_ones_a_model_builds(name):
    """Shapes come from the model's own module built on the meta device: the same as the real one."""
    model = registry.build(name, {}, device="cpu")
    counted = model.weight_shapes(30, 50, behaviors=("click", "buy"))
    if name == "mbnmf":
        model.branch_codes = (1, 0)
    if name == "eals":
        dim = model.opts.emb_dim
        assert [(w.name, w.shape, w.bytes_per_value) for w in counted] == [("P", (30, dim), 8), ("Q", (50, dim), 8)]
        return
    model.prepare(30, 50)
    real = [(n, tuple(p.shape)) for n, p in model.module.named_parameters()]
    assert [(w.name, w.shape) for w in counted] == real
    assert not any(w.row_sparse for w in counted)  # auto: tables this small stay dense


def test_row_sparse_tables_need_no_full_gradient():
    dense = training_memory(RunConfig.build(model="gmf", sparse_rows="off"), BIG)
    lazy = training_memory(RunConfig.build(model="gmf", sparse_rows="on"), BIG)
    auto = training_memory(RunConfig.build(model="gmf"), BIG)  # 4M items: auto goes sparse
    assert dense["weights"] == lazy["weights"]
    rows = BIG.users + BIG.items
    # no full-table gradient (rows × 64 floats), but an int32 step count and scratch slot per row
    assert dense["training_state"] - lazy["training_state"] == rows * 64 * 4 - rows * 8
    assert auto["training_state"] == lazy["training_state"]


def test_a_tiny_limit_is_refused_with_the_parts_and_a_fix():
    config = RunConfig.build(dataset=TINY, model="gmf")
    data = prepared.prepare_data(config)
    roomy = check_memory(config, data, host_free=10**12, measure=False)
    assert roomy.fits and roomy.line().startswith("Training needs ≈ ")
    with pytest.raises(RecvizError) as refused:
        refuse_if_too_big(config, data, host_free=1000, measure=False)
    text = str(refused.value)
    assert "would not fit in memory" in text and "1.0 kB free here" in text and "epoch samples" in text
    assert "nothing was run" in text


def test_an_epoch_counts_one_chunk_of_samples_and_its_order_of_positives():
    from recviz.training.chunks import EPOCH_CHUNK

    per_sample = estimate.SAMPLE_BYTES * estimate.SAMPLE_COPIES + 8
    big = training_memory(RunConfig.build(model="gmf", neg_ratio=4), BIG)  # 500M samples: chunked
    assert big["samples"] == EPOCH_CHUNK * per_sample + 4 * BIG.rows
    small = DataSize(users=1_000, items=2_000, rows=100_000)  # 500k samples: one chunk, the whole epoch
    assert training_memory(RunConfig.build(model="gmf", neg_ratio=4), small)["samples"] == 500_000 * per_sample


def test_the_suggested_fixes_fit():
    # rows dominate (the split's arrays; an epoch's samples are held a chunk at a time): a user sample fits
    many_rows = DataSize(users=1_000_000, items=100_000, rows=100_000_000)
    config = RunConfig.build(model="neumf")
    need = training_memory(config, many_rows)["total"]
    check = memory_check(config, many_rows, host_free=need // 2)
    assert not check.fits
    users = next(c["sample_users"] for c in check.changes if "sample_users" in c)
    assert 0 < users < many_rows.users
    assert memory_check(config, many_rows.sampled(users), host_free=need // 2).fits
    assert f"--sample-users {users:,}" in check.fix()
    # embedding tables dominate (a huge catalogue, few interactions): a smaller embedding fits
    wide = DataSize(users=1_000, items=50_000_000, rows=100_000)
    config = RunConfig.build(model="gmf", emb_dim=128)
    free = training_memory(config, wide)["total"] // 3
    smaller = memory_check(config, wide, host_free=free).changes[0]
    assert set(smaller) == {"emb_dim"} and smaller["emb_dim"] < 128
    assert memory_check(config.replace(**smaller), wide, host_free=free).fits
    # the page names its fields, the CLI its flags
    assert "--emb-dim" in memory_check(config, wide, host_free=free).fix()
    assert "Embedding size =" in memory_check(config, wide, host_free=free).fix(lambda o: f"{o.title} =")


def test_available_memory_is_read_from_this_machine():
    free = estimate.available_memory()
    assert free is None or free > 0


def test_recviz_train_refuses_a_run_that_would_not_fit_and_stores_nothing(monkeypatch, capsys):
    from recviz.cli import main
    from recviz.experiments.store import RunStore

    monkeypatch.setattr(estimate, "available_memory", lambda: 2000)
    code = main(["train", "--dataset", TINY, "--model", "gmf", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "would not fit in memory" in err and "2.0 kB free here" in err
    assert RunStore().list() == []


def test_the_train_page_shows_the_memory_and_will_not_launch_a_run_that_would_not_fit(monkeypatch):
    from streamlit.testing.v1 import AppTest
    from tests.test_app import ROOT

    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "pages" / "train.py"), default_timeout=60).run()
    assert not at.exception
    assert any(c.value.startswith("Training needs ≈") for c in at.caption)
    monkeypatch.setattr(estimate, "available_memory", lambda: 2000)
    at.run()
    assert any("would not fit in memory" in e.value and "Fix:" in e.value for e in at.error)
    assert at.button(key="launch").disabled
