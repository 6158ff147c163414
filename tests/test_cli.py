"""The `recviz` command as other tools use it: a real process, the --json last-line contract,
readable errors, and the acceptance numbers on real ml-100k."""

import json
import subprocess
import sys

import pytest

from tests.helpers import SHARED_DATA


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


needs_ml100k = pytest.mark.skipif(not (SHARED_DATA / "ml-100k").is_dir(), reason="../shared/data absent")


@needs_ml100k
def test_inspect_ml100k():
    out = last_json(recviz("inspect", "--dataset", str(SHARED_DATA / "ml-100k"), "--json"))
    assert (out["users"], out["items"], out["interactions"]) == (943, 1682, 100_000)
    assert out["ratings"] == {"1": 6110, "2": 11370, "3": 27145, "4": 34174, "5": 21201}


@needs_ml100k
def test_ml100k_baselines_match_the_dmf_paper():
    ref = str(SHARED_DATA / "ml-100k")
    pop = last_json(recviz("train", "--dataset", ref, "--model", "itempop", "--protocol", "loo", "--seed", "0", "--json"))
    assert pop["metrics"]["HR@10"] == pytest.approx(0.406, abs=0.03)
    assert pop["metrics"]["NDCG@10"] == pytest.approx(0.231, abs=0.03)
    knn = last_json(recviz("train", "--dataset", ref, "--model", "itemknn", "--protocol", "loo", "--seed", "0", "--json"))
    assert knn["metrics"]["HR@10"] >= 0.57


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
    proc = recviz("import", str(bad), "--name", "mine", "--json", check=False)
    assert proc.returncode == 2
    assert "bad.csv" in proc.stderr and "line 3" in proc.stderr and "Traceback" not in proc.stderr
    assert last_json(recviz("inspect", "--dataset", "mine", "--json")) == before
