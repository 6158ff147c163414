"""The CLI's one error boundary: numbers are range-checked where they are parsed (exit 2, a
message naming the option and its range), anything unexpected is one sentence naming a log file
that holds the traceback (exit 1), and a closed pipe ends quietly."""

import subprocess
import sys

import pytest

from recviz.config import RunConfig

from tests.test_cli import TINY, recviz

HUGE = "99999999999999999999"


@pytest.mark.parametrize("args, words", [
    (("runs", "--limit", HUGE), "--limit: must be from 1"),
    (("recommend", "--run", HUGE, "--user", "1"), "--run: must be from 1"),
    (("train", "--dataset", TINY, "--model", "gmf", "--seed", "-1"), "seed must be an integer from 0"),
    (("train", "--dataset", TINY, "--model", "gmf", "--seed", HUGE), "seed must be an integer from 0"),
    (("train", "--dataset", TINY, "--model", "gmf", "--candidates", "0"), "candidates must be an integer from 1"),
    (("train", "--dataset", TINY, "--model", "itempop", "--candidates", "-5"), "candidates must be an integer from 1"),
    (("train", "--dataset", TINY, "--model", "mlp", "--mlp-layers", "2000000000,8"), "mlp_layers must be"),
    (("train", "--dataset", TINY, "--model", "neumf", "--lr", "nan"), "lr must be a number"),
])
def test_out_of_range_numbers_are_readable_errors(args, words):
    proc = recviz(*args, check=False)
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr and "Traceback" not in proc.stderr


def test_an_unexpected_error_names_its_log_file(recviz_home):
    from recviz.experiments.store import RunStore

    store = RunStore()  # a sound store holding a row no RecViz wrote: its creation time is text
    store.create(RunConfig())  # (a config that is not JSON is an "unreadable" run, listed: test_hardening)
    with store.transaction() as conn:
        conn.execute("UPDATE runs SET created_at = 'yesterday'")
    proc = recviz("runs", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("recviz: internal error (") and "the full traceback is in" in proc.stderr
    log = proc.stderr.split("the full traceback is in ")[1].split(". Please")[0]
    assert "Traceback" in open(log).read() and str(recviz_home) in log


def test_a_closed_pipe_ends_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "recviz", "train", "--model", "neumf", "--help"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # like `| head -0`: the reader is gone before anything is written
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 0 and "Traceback" not in err and "BrokenPipe" not in err, err


# ---- inputs that used to end in a traceback ---------------------------------------------------------
def _ncf_with_huge_ids(tmp_path):
    folder = tmp_path / "ncf"
    folder.mkdir()
    (folder / "x.train.rating").write_text("0\t1\t5\t100\n1234567890123456789012345\t2\t3\t101\n1\t1\t4\t102\n")
    (folder / "x.test.rating").write_text("0\t3\t5\t200\n1\t2\t4\t201\n")
    (folder / "x.test.negative").write_text("(0,3)\t1\t2\n(1,2)\t3\t1\n")
    return folder


def _unwritable_out(tmp_path):
    (tmp_path / "a-file").write_text("x")
    return str(tmp_path / "a-file" / "sweep.json")  # its folder is a file: no user can write there


@pytest.mark.parametrize("make_args, words", [
    (lambda t: ("inspect", "--dataset", str(_ncf_with_huge_ids(t))),
     ("x.train.rating, line 2", "1234567890123456789012345", "too large")),
    (lambda t: ("inspect", "--dataset", "~nosuchuser/x"), ("~nosuchuser is no user's home folder", "./~nosuchuser/x")),
    (lambda t: ("inspect", "--dataset", "d" * 5000), ("5,000 characters long, too long to be a file's path",)),
    (lambda t: ("train", "--model", "itempop", "--dataset", "d" * 5000), ("5,000 characters",)),
    (lambda t: ("import", str(t), "--name", "n" * 300), ("is not a usable dataset name", "at most 100")),
    (lambda t: ("sweep", "--dataset", TINY, "--model", "itemknn", "--param", "neighbors", "--values", "5,10",
                "--out", _unwritable_out(t)), ("cannot write the sweep table", "is not a folder", "nothing was run")),
    (lambda t: ("sweep", "--dataset", TINY, "--model", "itemknn", "--param", "neighbors", "--values", "5",
                "--out", str(t / ("o" * 300 + ".json"))), ("cannot write the sweep table", "255")),
])
def test_inputs_that_used_to_crash_are_one_message_and_logged(tmp_path, recviz_home, make_args, words):
    from recviz.experiments.store import RunStore

    proc = recviz(*make_args(tmp_path), check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("recviz: error: ") == 1, proc.stderr
    for word in words:
        assert word in proc.stderr, (word, proc.stderr)
    logs = list((recviz_home / "logs").glob("*.log"))
    assert logs and "Traceback" in logs[0].read_text() and words[0] in logs[0].read_text()
    assert RunStore().list() == []  # a sweep with an unwritable --out trained nothing


@pytest.mark.slow  # fault injection: eight damaged runs, a command each
def test_tampered_run_files_are_refused_by_recommend(recviz_home):
    """Eight kinds of damage to a finished run's files: each is one message naming the file."""
    import json
    import os
    import shutil

    import numpy as np

    from recviz.experiments import record

    run_id, _, _ = record.train_here(RunConfig.build(dataset=TINY, model="itemknn"))
    run_dir = recviz_home / "runs" / str(run_id)
    pristine = recviz_home / "pristine"
    shutil.copytree(run_dir, pristine)
    top = dict(np.load(pristine / "topn.npz"))
    ids = dict(np.load(pristine / "ids.npz"))

    def savez(name, **arrays):
        np.savez(run_dir / name, **arrays)

    nan_scores = top["scores"].copy()
    nan_scores[3, 0] = np.nan
    tamper = {
        "truncated": lambda: (run_dir / "topn.npz").write_bytes((pristine / "topn.npz").read_bytes()[:300]),
        "garbage": lambda: (run_dir / "topn.npz").write_bytes(os.urandom(2000)),
        "missing file": lambda: (run_dir / "topn.npz").unlink(),
        "missing array": lambda: savez("topn.npz", items=top["items"]),
        "wrong shape": lambda: savez("topn.npz", items=top["items"][:, 0], scores=top["scores"][:, 0]),
        "NaN score": lambda: savez("topn.npz", items=top["items"], scores=nan_scores),
        "wrong dtype": lambda: savez("topn.npz", items=top["items"].astype(str), scores=top["scores"]),
        "pickled objects": lambda: savez("topn.npz", items=top["items"].astype(object), scores=top["scores"]),
        "ids cut short": lambda: savez("ids.npz", user_ids=ids["user_ids"], item_ids=ids["item_ids"][:5]),
        "meta not JSON": lambda: (run_dir / "meta.json").write_text("{ not json"),
    }
    for kind, damage in tamper.items():
        shutil.rmtree(run_dir)
        shutil.copytree(pristine, run_dir)
        damage()
        proc = recviz("recommend", "--run", str(run_id), "--user", str(ids["user_ids"][3]), check=False)
        assert proc.returncode == 2, (kind, proc.stderr)
        assert "Traceback" not in proc.stderr and "is damaged or was edited" in proc.stderr, (kind, proc.stderr)
        assert str(run_dir) in proc.stderr and "config.json" in proc.stderr, (kind, proc.stderr)
    shutil.rmtree(run_dir)
    shutil.copytree(pristine, run_dir)
    good = recviz("recommend", "--run", str(run_id), "--user", str(ids["user_ids"][3]), "--json")
    assert len(json.loads(good.stdout.strip().splitlines()[-1])["items"]) == 10
