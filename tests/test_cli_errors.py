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
    from recviz.runs.store import RunStore

    store = RunStore()  # a sound store holding a row no RecViz wrote: its config is not JSON
    store.create(RunConfig())
    with store.transaction() as conn:
        conn.execute("UPDATE runs SET config = '{not json'")
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
