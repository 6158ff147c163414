"""`recviz bench` on tiny data: the rows, the means over seeds, the JSON, and the settings used."""

import json
import statistics

import pytest

from recviz.config import RunConfig
from recviz.errors import RecvizError
from recviz.models import registry
from recviz.experiments import bench
from recviz.experiments.store import RunStore
from tests.test_cli import TINY, last_json, recviz


@pytest.mark.slow  # trains the bench's runs
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
    defaults = registry.get("gmf").defaults()  # what `recviz train --model gmf` trains with
    assert all(r["epochs_run"] <= 2 and r["samples_per_second"] > 0 and r["batch_size"] == defaults["batch_size"]
               for r in gmf)
    assert all(r["config"]["options"] == {**defaults, "epochs": 2} and r["config"]["protocol"] == "loo" for r in gmf)
    assert all(r["config"]["valid"] == "latest" for r in rows)  # the default validation rule
    assert "random validation item" not in report["protocol"] and "each model's defaults" in proc.stdout
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


def test_bench_trains_what_train_trains_or_a_preset():
    assert bench.bench_config("neumf", "ml-100k", seed=1) == RunConfig.build(dataset="ml-100k", model="neumf", seed=1)
    pre = bench.bench_config("neumf:paper", "ml-100k", seed=0, batch_size=1024, epochs=5)
    paper = registry.get("neumf").presets["paper"]
    assert pre.preset == "paper" and pre.options == {**registry.get("neumf").defaults(), **paper,
                                                      "batch_size": 1024, "epochs": 5}
    assert pre.options["pretrain"] is True and pre.options["lr"] == 0.001
    # a bench-wide preset applies where a model declares it; ItemPop declares none
    assert bench.bench_config("neumf", "x", 0, preset="paper").preset == "paper"
    assert bench.bench_config("itempop", "x", 0, preset="paper").preset is None
    assert bench.bench_config("mlp", "x", 0, valid="random").valid == "random"
    with pytest.raises(RecvizError, match="unknown model 'nope'"):
        bench.bench_config("nope", "x", 0)
    with pytest.raises(RecvizError, match="no preset 'fast'"):
        bench.bench_config("gmf:fast", "x", 0)


def test_bench_unknown_model_is_a_readable_error(tmp_path):
    proc = recviz("bench", "--dataset", TINY, "--models", "gmf,nope", "--out", str(tmp_path / "x.json"), check=False)
    assert proc.returncode == 2 and "unknown model 'nope'" in proc.stderr and "Traceback" not in proc.stderr


def test_observed_test_is_a_diagnostic_that_changes_nothing():
    from recviz.experiments import experiment

    config = bench.bench_config("gmf", TINY, seed=0, epochs=4)
    plain = experiment.run(config)
    seen = experiment.run(config, observe_test=True)
    # selection, weights and the reported result are those of a run that never looked at test
    assert seen.best_epoch == plain.best_epoch and seen.test.metrics == plain.test.metrics
    assert [h.valid for h in seen.history] == [h.valid for h in plain.history]
    assert all(h.test_observed is None for h in plain.history)
    # what was observed at the chosen epoch is the result: the kept weights are that epoch's
    at_best = next(h for h in seen.history if h.epoch == seen.best_epoch)
    assert at_best.test_observed == pytest.approx(seen.test.metrics)
    peak = bench.peak_on_test(seen.history)
    curve = [h.test_observed["HR@10"] for h in seen.history]
    assert peak["peak_test_HR@10"] == max(curve) >= seen.test.metrics["HR@10"]
    assert peak["peak_test_epoch"] == seen.history[curve.index(max(curve))].epoch
    assert bench.peak_on_test(plain.history) == {}


@pytest.mark.slow  # trains NeuMF with its pretraining
def test_observed_test_skips_pretraining_phases():
    from recviz.experiments import experiment

    result = experiment.run(bench.bench_config("neumf:paper", TINY, seed=0, epochs=2), observe_test=True)
    phases = {h.phase: h.test_observed is not None for h in result.history}
    assert phases == {"gmf": False, "mlp": False, "neumf": True}


@pytest.mark.slow  # trains to a peak
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
