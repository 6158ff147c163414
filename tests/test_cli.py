"""The `recviz` command as other tools use it: a real process, the --json last-line contract,
readable errors, and the acceptance numbers on real ml-100k."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.helpers import SHARED_DATA, needs_ml100k


def recviz(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "recviz", *args], capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr}")
    return proc


def last_json(proc) -> dict:
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("protocol", ["loo", "ratio"])
def test_train_json_contract(protocol):
    out = last_json(recviz("train", "--dataset", "synthetic", "--model", "itemknn", "--protocol", protocol,
                           "--seed", "3", "--json"))
    for key in ("model", "dataset", "protocol", "seed", "train_seconds", "epochs_run", "metrics"):
        assert key in out
    assert out["model"] == "itemknn" and out["dataset"] == "synthetic" and out["seed"] == 3
    assert out["protocol"] == protocol
    assert {"HR@10", "NDCG@10", "HR@5", "NDCG@20"} <= set(out["metrics"])
    if protocol == "ratio":
        assert {"Recall@10", "Precision@10"} <= set(out["metrics"])


@pytest.mark.slow  # trains to quality
def test_knn_beats_popularity_on_synthetic():
    pop = last_json(recviz("train", "--dataset", "synthetic", "--model", "itempop", "--json"))
    knn = last_json(recviz("train", "--dataset", "synthetic", "--model", "itemknn", "--json"))
    assert knn["metrics"]["HR@10"] >= pop["metrics"]["HR@10"] + 0.15


def test_unknown_dataset_is_a_readable_error_not_a_traceback():
    proc = recviz("train", "--dataset", "no-such-thing.csv", "--model", "itempop", check=False)
    assert proc.returncode == 2
    assert "no-such-thing.csv" in proc.stderr and "Fix:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_model_is_a_readable_error():
    proc = recviz("train", "--dataset", "synthetic", "--model", "nope", check=False)
    assert proc.returncode == 2 and "unknown model" in proc.stderr and "Traceback" not in proc.stderr


def test_datasets_lists_the_catalog():
    out = last_json(recviz("datasets", "--json"))
    names = {row["name"] for row in out["catalog"]}
    assert {"ml-100k", "ml-1m", "pinterest-20", "taobao-userbehavior", "synthetic"} <= names




@needs_ml100k
def test_inspect_ml100k():
    out = last_json(recviz("inspect", "--dataset", str(SHARED_DATA / "ml-100k"), "--json"))
    assert (out["users"], out["items"], out["interactions"]) == (943, 1682, 100_000)
    assert out["ratings"] == {"1": 6110, "2": 11370, "3": 27145, "4": 34174, "5": 21201}


@pytest.mark.slow
@needs_ml100k
def test_ml100k_baselines_match_the_dmf_paper():
    ref = str(SHARED_DATA / "ml-100k")
    pop = last_json(recviz("train", "--dataset", ref, "--model", "itempop", "--protocol", "loo", "--seed", "0", "--json"))
    assert pop["metrics"]["HR@10"] == pytest.approx(0.406, abs=0.03)
    assert pop["metrics"]["NDCG@10"] == pytest.approx(0.231, abs=0.03)
    knn = last_json(recviz("train", "--dataset", ref, "--model", "itemknn", "--protocol", "loo", "--seed", "0", "--json"))
    assert knn["metrics"]["HR@10"] >= 0.57


@pytest.mark.slow  # a chain of recviz commands, each a process
def test_import_saves_a_named_dataset_and_a_bad_import_damages_nothing(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("userId,movieId,stars,ts\n" + "".join(
        f"{u},{i},{1 + (u + i) % 5},{100 * i + u}\n" for u in range(8) for i in range(6)))
    out = last_json(recviz("import", str(good), "--name", "mine", "--map",
                           "user=userId,item=movieId,rating=stars,timestamp=ts", "--json"))
    assert (out["users"], out["items"], out["interactions"]) == (8, 6, 48)
    before = last_json(recviz("inspect", "--dataset", "mine", "--json"))

    bad = tmp_path / "bad.csv"
    bad.write_text("userId,movieId,stars,ts\n1,2,3,4\n1,3,five,5\n")
    proc = recviz("import", str(bad), "--name", "mine", "--replace", "--json", check=False)
    assert proc.returncode == 2
    assert "bad.csv" in proc.stderr and "line 3" in proc.stderr and "Traceback" not in proc.stderr
    assert last_json(recviz("inspect", "--dataset", "mine", "--json")) == before


@pytest.mark.slow  # seven commands end to end (the app's side: test_app_trust)
def test_saving_under_a_taken_name_adds_a_version_and_old_runs_keep_theirs(tmp_path):
    def csv(path, offset):
        rows = "".join(f"{u},{1000 + 7 * ((u * 5 + k + offset) % 80)},{1 + (u + k) % 5},{100 * k + u}\n"
                       for u in range(30) for k in range(12))
        path.write_text("user,item,rating,ts\n" + rows)
        return str(path)

    first = csv(tmp_path / "a.csv", 0)
    assert last_json(recviz("import", first, "--name", "mycopy", "--json"))["version"] == 1
    run = last_json(recviz("train", "--dataset", "mycopy", "--model", "itemknn", "--candidates", "20", "--json"))
    top_before = last_json(recviz("recommend", "--run", str(run["run_id"]), "--user", "3", "--json"))["items"]

    second = csv(tmp_path / "b.csv", 40)  # other items: the same user ids mean other things now
    refused = recviz("import", second, "--name", "mycopy", check=False)
    assert refused.returncode == 2 and "already saved as 'mycopy' (v1" in refused.stderr and "--replace" in refused.stderr
    assert last_json(recviz("import", second, "--name", "mycopy", "--replace", "--json"))["version"] == 2

    from recviz.experiments.experiment import prepare_data
    from recviz.experiments.store import RunStore

    stored = RunStore().get(run["run_id"]).config
    assert stored.data_version is not None and stored.dataset == "mycopy"
    assert prepare_data(stored).meta["version"] == 1  # the run reads what it was trained on
    assert last_json(recviz("recommend", "--run", str(run["run_id"]), "--user", "3", "--json"))["items"] == top_before
    assert last_json(recviz("inspect", "--dataset", "mycopy@v1", "--json"))["interactions"] == 360


# ---- neural training, the run store, recommendations ---------------------------------------------
TINY = "synthetic:users=60,items=300,interactions=1500"


def test_train_neural_model_reports_progress_and_is_stored():
    proc = recviz("train", "--dataset", TINY, "--model", "gmf", "--emb-dim", "8", "--epochs", "2",
                  "--patience", "0", "--batch-size", "128", "--lr", "0.01", "--json")
    out = last_json(proc)
    assert isinstance(out["run_id"], int) and out["device"] == "cpu"
    assert out["threads"] == 1  # the thread count used is recorded: auto is one
    assert out["epochs_run"] == 2 and out["best_epoch"] in (1, 2)
    assert out["samples_per_second"] > 0
    opts = out["config"]["options"]
    assert opts["emb_dim"] == 8 and opts["batch_size"] == 128 and opts["lr"] == 0.01
    # progress: one line per epoch on stderr, so stdout's last line stays the JSON
    epoch_lines = [line for line in proc.stderr.splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == 2 and epoch_lines[0].startswith("epoch 1/2  loss ")
    assert "HR@10" in epoch_lines[0] and "NDCG@10" in epoch_lines[0]

    runs = last_json(recviz("runs", "--json"))["runs"]
    assert [(r["id"], r["status"], r["model"]) for r in runs] == [(out["run_id"], "done", "gmf")]
    assert runs[0]["HR@10"] == out["metrics"]["HR@10"] and runs[0]["epochs_run"] == 2
    assert last_json(recviz("runs", "--status", "failed", "--json"))["runs"] == []


def test_recommend_prints_a_users_top_k_with_titles(recviz_home):
    from recviz.config import RunConfig
    from recviz.experiments import record

    run_id, _, _ = record.train_here(RunConfig.build(dataset=TINY, model="itemknn"))  # stored as `train` stores it
    rec = last_json(recviz("recommend", "--run", str(run_id), "--user", "u0003", "-k", "5", "--json"))
    assert rec["user"] == "u0003" and len(rec["items"]) == 5
    assert [r["rank"] for r in rec["items"]] == [1, 2, 3, 4, 5]
    assert all(r["title"].startswith("Item ") for r in rec["items"])  # titles, not bare ids
    scores = [r["score"] for r in rec["items"]]
    assert scores == sorted(scores, reverse=True)

    text = recviz("recommend", "--run", str(run_id), "--user", "u0003", "-k", "3").stdout
    assert text.splitlines()[1].startswith("  1. Item ") and len(text.splitlines()) == 4
    bad = recviz("recommend", "--run", str(run_id), "--user", "nobody", check=False)
    assert bad.returncode == 2 and "'nobody'" in bad.stderr and "Traceback" not in bad.stderr
    missing = recviz("recommend", "--run", "999", "--user", "u0003", check=False)
    assert missing.returncode == 2 and "no run 999" in missing.stderr


def test_cuda_on_a_cpu_machine_is_a_readable_error_and_a_failed_run():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    proc = recviz("train", "--dataset", TINY, "--model", "gmf", "--epochs", "1", "--device", "cuda",
                  "--json", check=False)
    assert proc.returncode == 2, proc.stderr
    assert "cuda" in proc.stderr and "no CUDA GPU" in proc.stderr and "Traceback" not in proc.stderr
    assert not any(line.startswith("epoch ") for line in proc.stderr.splitlines())  # no silent CPU run
    runs = last_json(recviz("runs", "--json"))["runs"]
    assert [r["status"] for r in runs] == ["failed"] and "no CUDA GPU" in runs[0]["error"]


def test_baseline_train_is_stored_with_no_speed():
    out = last_json(recviz("train", "--dataset", TINY, "--model", "itempop", "--json"))
    assert out["samples_per_second"] is None and out["best_epoch"] == 1 and out["device"] == "cpu"
    assert last_json(recviz("runs", "--model", "itempop", "--json"))["runs"][0]["status"] == "done"


def test_interrupted_training_is_stored_as_cancelled(recviz_home):
    """Ctrl-C during `recviz train` (in-process: the same code path, KeyboardInterrupt raised
    from the epoch callback) leaves the run cancelled with its finished epoch stored."""
    from recviz.config import RunConfig
    from recviz.experiments import record
    from recviz.experiments.store import RunStore

    def interrupt(report):
        raise KeyboardInterrupt

    config = RunConfig.build(dataset=TINY, model="gmf", emb_dim=8, epochs=3)
    with pytest.raises(KeyboardInterrupt):
        record.train_here(config, on_epoch=interrupt)
    store = RunStore()
    (run,) = store.list()
    assert run.status == "cancelled" and run.summary is None
    assert store.epochs(run.id)["epoch"].tolist() == [1]


def test_train_help_lists_the_run_settings_and_how_to_see_a_models_options():
    text = recviz("train", "--help").stdout
    for option in ("--dataset", "--protocol", "--candidates", "--valid", "--seed", "--device", "--threads",
                   "--model", "--preset"):
        assert option in text
    assert "--model M --help" in text


def test_an_option_the_model_does_not_take_is_refused():
    proc = recviz("train", "--dataset", TINY, "--model", "eals", "--lr", "0.1", check=False)
    assert proc.returncode == 2 and "--lr" in proc.stderr and "Traceback" not in proc.stderr
    proc = recviz("train", "--dataset", TINY, "--model", "neumf", "--emb-dim", "0", check=False)
    assert proc.returncode == 2 and "emb_dim must be an integer from 1 to 1024" in proc.stderr


@pytest.mark.slow  # trains a sweep
def test_sweep_stores_one_run_per_value_and_prints_the_table(tmp_path):
    out = tmp_path / "sweep.json"
    table = last_json(recviz("sweep", "--dataset", "synthetic:users=60,items=300,interactions=1500", "--model", "einmf",
                             "--param", "eta", "--values", "0,1", "--epochs", "2", "--emb-dim", "8",
                             "--out", str(out), "--json"))
    assert [r["eta"] for r in table["rows"]] == [0.0, 1.0]
    assert all(0 <= r["HR@10"] <= 1 for r in table["rows"])
    assert json.loads(out.read_text())["rows"] == table["rows"]
    runs = last_json(recviz("runs", "--json"))
    stored = [r for r in runs["runs"] if r["id"] in {row["run_id"] for row in table["rows"]}]
    assert len(stored) == 2 and {r["status"] for r in stored} == {"done"}


@pytest.mark.slow  # trains a sweep
def test_a_sweep_over_seeds_runs_every_value_with_every_seed_and_prints_mean_and_std():
    proc = recviz("sweep", "--dataset", "synthetic:users=60,items=300,interactions=1500", "--model", "gmf",
                  "--param", "emb_dim", "--values", "8,16", "--seeds", "0,1,2", "--epochs", "2", "--json")
    table = last_json(proc)
    assert [(r["emb_dim"], r["seed"]) for r in table["rows"]] == [(8, 0), (8, 1), (8, 2), (16, 0), (16, 1), (16, 2)]
    first = [r["HR@10"] for r in table["rows"][:3]]
    mean = table["means"][0]
    assert mean["emb_dim"] == 8 and mean["runs"] == [r["run_id"] for r in table["rows"][:3]]
    assert mean["HR@10"] == pytest.approx(np.mean(first)) and mean["HR@10 std"] == pytest.approx(np.std(first, ddof=1))
    assert f"{mean['HR@10']:.4f} ± {mean['HR@10 std']:.4f}" in proc.stdout
    stored = {r["id"]: r["seed"] for r in last_json(recviz("runs", "--json"))["runs"]}
    assert [stored[r["run_id"]] for r in table["rows"]] == [0, 1, 2, 0, 1, 2]
    bad = recviz("sweep", "--dataset", "synthetic", "--model", "gmf", "--param", "emb_dim", "--values", "8",
                 "--seeds", "0,x", check=False)
    assert bad.returncode == 2 and "seed must be an integer" in bad.stderr


@pytest.mark.slow  # probes a Ray cluster
def test_executor_shows_and_sets_where_the_apps_runs_train():
    """`recviz executor` is the Train page's "Where runs train": the same setting, the same words."""
    pytest.importorskip("ray")
    from recviz.experiments import executors

    assert recviz("executor").stdout.startswith("Runs train on this machine: ")
    assert "cluster the worker starts here" in recviz("executor", "ray", "--address", "local").stdout
    assert executors.chosen() == {"executor": "ray", "address": "local"}  # what the app's worker reads
    unreachable = recviz("executor", "ray", "--address", "127.0.0.1:1", check=False)  # joined from a probe
    assert unreachable.returncode == 1 and "not joined yet" in unreachable.stdout
    assert "nothing answers at 127.0.0.1:1" in unreachable.stderr and "Traceback" not in unreachable.stderr
    assert executors.chosen()["address"] == "127.0.0.1:1"  # kept: the cluster may come up later
    assert recviz("executor", "local").stdout.startswith("Runs train on this machine: ")
    assert executors.chosen()["executor"] == "local"


@pytest.mark.slow  # Ray
def test_auto_with_a_cluster_file_left_behind_is_a_clear_error_within_seconds(tmp_path, monkeypatch):
    """`ray start` writes the head's address to a file that outlives a head that is killed; "auto"
    then names that address and says nothing answers, instead of Ray retrying it for minutes."""
    pytest.importorskip("ray")
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text("127.0.0.1:1")
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))  # where Ray keeps that file
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    start = time.monotonic()
    proc = recviz("executor", "ray", "--address", "auto", "--check", check=False)
    assert time.monotonic() - start < 30 and proc.returncode == 1
    assert "auto found 127.0.0.1:1" in proc.stderr and "nothing answers" in proc.stderr


def test_a_model_the_data_cannot_feed_is_a_readable_error():
    proc = recviz("train", "--dataset", "synthetic-implicit", "--model", "dmf", check=False)
    assert proc.returncode == 2 and "rating" in proc.stderr and "Traceback" not in proc.stderr
