"""`recviz bench` on tiny data: the rows, the means over seeds, the JSON, and the settings used."""

import json
import statistics

import pytest

from recviz import bench
from recviz.runs.store import RunStore
from tests.test_cli import TINY, last_json, recviz


def test_bench_writes_rows_and_means(tmp_path):
    out = tmp_path / "bench.json"
    proc = recviz("bench", "--dataset", TINY, "--models", "itempop,gmf", "--seeds", "0,1", "--epochs", "2",
                  "--out", str(out), "--json")
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert [(r["model"], r["seed"]) for r in rows] == [("itempop", 0), ("itempop", 1), ("gmf", 0), ("gmf", 1)]
    for r in rows:
        assert {"HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "epochs_run", "best_epoch",
                "seconds_per_epoch", "samples_per_second", "train_seconds"} <= set(r)
    gmf = [r for r in rows if r["model"] == "gmf"]
    assert all(r["epochs_run"] <= 2 and r["samples_per_second"] > 0 and r["batch_size"] == 256 for r in gmf)
    assert all(r["config"]["emb_dim"] == 64 and r["config"]["protocol"] == "loo" for r in gmf)
    assert all(r["config"]["valid"] == "random" for r in rows)  # the papers' validation rule
    assert report["protocol"] == "leave-one-out, 100 candidates, random validation item"
    assert "random validation item" in proc.stdout
    pop = [r for r in rows if r["model"] == "itempop"]
    assert all(r["samples_per_second"] is None and r["seconds_per_epoch"] is None for r in pop)

    means = {m["model"]: m for m in report["means"]}
    assert set(means) == {"itempop", "gmf"} and means["gmf"]["seeds"] == 2
    assert means["gmf"]["HR@10"] == pytest.approx(statistics.fmean(r["HR@10"] for r in gmf))
    assert means["gmf"]["HR@10_std"] == pytest.approx(statistics.stdev(r["HR@10"] for r in gmf))
    assert last_json(proc)["means"] == json.loads(json.dumps(report["means"]))
    # the printed table: one line per model, HR@10 with its ± std
    table = proc.stdout
    assert "HR@10" in table and "samples/s" in table and "±" in table
    assert any(line.startswith("gmf ") for line in table.splitlines())
    assert RunStore().list() == []  # bench runs are not stored without --store


def test_bench_store_and_batch_sizes(tmp_path):
    report = bench.run_bench(TINY, models=("itempop", "mf"), seeds=(0,), batch_sizes=(128, 512), epochs=1,
                             out=tmp_path / "b.json", store=True, log=lambda text: None)
    assert [(r["model"], r["batch_size"]) for r in report["rows"]] == [("itempop", None), ("mf", 128), ("mf", 512)]
    assert [(m["model"], m["batch_size"]) for m in report["means"]] == [("itempop", None), ("mf", 128), ("mf", 512)]
    runs = RunStore().list()
    assert len(runs) == 3 and {r.status for r in runs} == {"done"}


def test_bench_settings_follow_the_paper_and_the_docstrings():
    neumf = bench.bench_config("neumf", "ml-100k", seed=1)
    assert (neumf.emb_dim, neumf.layers, neumf.neg_ratio, neumf.batch_size, neumf.patience) == (64, "256,128,64", 4, 256, 3)
    assert (neumf.lr, neumf.weight_decay, neumf.pretrain) == (0.0005, 1e-6, False)
    pre = bench.bench_config("neumf-pretrain", "ml-100k", seed=0, batch_size=1024, epochs=5)
    assert (pre.model, pre.pretrain, pre.lr, pre.batch_size, pre.epochs) == ("neumf", True, 0.001, 1024, 5)
    assert bench.bench_config("mlp", "x", 0).weight_decay == 0.0
    assert neumf.valid == "random" and bench.bench_config("mlp", "x", 0, valid="latest").valid == "latest"
    with pytest.raises(Exception, match="unknown bench model"):
        bench.bench_config("nope", "x", 0)


def test_bench_unknown_model_is_a_readable_error(tmp_path):
    proc = recviz("bench", "--dataset", TINY, "--models", "gmf,nope", "--out", str(tmp_path / "x.json"), check=False)
    assert proc.returncode == 2 and "unknown bench model 'nope'" in proc.stderr and "Traceback" not in proc.stderr


def test_observed_test_is_a_diagnostic_that_changes_nothing():
    from recviz.train import experiment

    config = bench.bench_config("gmf", TINY, seed=0, epochs=4)
    plain = experiment.run(config)
    seen = experiment.run(config, observe_test=True)
    # selection, weights and the reported result are those of a run that never looked at test
    assert seen.best_epoch == plain.best_epoch and seen.test.metrics == plain.test.metrics
    assert [h["valid"] for h in seen.history] == [h["valid"] for h in plain.history]
    assert all("test_observed" not in h for h in plain.history)
    # what was observed at the chosen epoch is the result: the kept weights are that epoch's
    at_best = next(h for h in seen.history if h["epoch"] == seen.best_epoch)
    assert at_best["test_observed"] == pytest.approx(seen.test.metrics)
    peak = bench.peak_on_test(seen.history)
    curve = [h["test_observed"]["HR@10"] for h in seen.history]
    assert peak["peak_test_HR@10"] == max(curve) >= seen.test.metrics["HR@10"]
    assert peak["peak_test_epoch"] == seen.history[curve.index(max(curve))]["epoch"]
    assert bench.peak_on_test(plain.history) == {}


def test_observed_test_skips_pretraining_phases():
    from recviz.train import experiment

    result = experiment.run(bench.bench_config("neumf-pretrain", TINY, seed=0, epochs=2), observe_test=True)
    phases = {h["phase"]: "test_observed" in h for h in result.history}
    assert phases == {"gmf": False, "mlp": False, "neumf": True}


def test_bench_peak_test_table_and_its_guard(tmp_path):
    out = tmp_path / "peak.json"
    proc = recviz("bench", "--dataset", TINY, "--models", "itempop,gmf", "--seeds", "0,1", "--epochs", "3",
                  "--peak-test", "--out", str(out))
    report = json.loads(out.read_text())
    assert report["peak_test"] is True
    gmf = [r for r in report["rows"] if r["model"] == "gmf"]
    assert all(r["peak_test_HR@10"] >= r["HR@10"] and 1 <= r["peak_test_epoch"] <= 3 for r in gmf)
    assert all("peak_test_HR@10" not in r for r in report["rows"] if r["model"] == "itempop")
    means = {m["model"]: m for m in report["means"]}
    assert means["gmf"]["peak_test_HR@10"] == pytest.approx(statistics.fmean(r["peak_test_HR@10"] for r in gmf))
    assert "peak_test_HR@10" not in means["itempop"]
    table = proc.stdout.split("as the papers' code reports")[1]
    assert [line.split()[0] for line in table.splitlines()[3:] if line.strip()] == ["gmf"]

    both = recviz("bench", "--dataset", TINY, "--models", "gmf", "--peak-test", "--store",
                  "--out", str(tmp_path / "x.json"), check=False)
    assert both.returncode == 2 and "--peak-test cannot be combined with --store" in both.stderr
    assert RunStore().list() == []
