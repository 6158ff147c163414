"""A run store that cannot be used as it is — damaged, in place of a folder, in a data directory this
user cannot write — is one message naming the store's path and how to recover, on every command
that touches it and on the Home page; reading commands keep working on a read-only directory."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from recviz.config import RunConfig
from recviz.experiments import record
from recviz.experiments.store import RunStore
from tests.test_cli import TINY, recviz

pytestmark = pytest.mark.slow  # each test runs recviz commands (or the app) against a broken data directory


def assert_one_message_and_a_log(proc, *words):
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stderr.count("recviz: error: ") == 1, proc.stderr
    for word in words:
        assert word in proc.stderr, (word, proc.stderr)
    log = proc.stderr.split("Details: ")[1].strip()
    assert "Traceback" in Path(log).read_text()


@pytest.mark.parametrize("args", [
    ("runs",),
    ("recommend", "--run", "1", "--user", "u0001"),
    ("train", "--dataset", TINY, "--model", "itempop"),
    ("sweep", "--dataset", TINY, "--model", "itemknn", "--param", "neighbors", "--values", "5,10"),
])
def test_a_damaged_store_is_one_message_saying_how_to_recover(recviz_home, args):
    recviz_home.mkdir(parents=True)
    db = recviz_home / "runs.db"
    db.write_bytes(os.urandom(4096) * 8)
    proc = recviz(*args, check=False)
    assert_one_message_and_a_log(proc, f"the run store {db} is damaged", f"mv {db} {db}.damaged",
                                 "config.json")


def test_a_folder_in_place_of_the_store_is_named(recviz_home):
    (recviz_home / "runs.db").mkdir(parents=True)
    proc = recviz("runs", check=False)
    assert_one_message_and_a_log(proc, f"the run store {recviz_home / 'runs.db'} is not a file")


def test_the_home_page_shows_a_damaged_store_once_with_how_to_recover(recviz_home, monkeypatch):
    from tests.test_app import ROOT, app

    monkeypatch.chdir(ROOT)
    recviz_home.mkdir(parents=True)
    (recviz_home / "runs.db").write_bytes(b"garbage, not SQLite " * 500)
    at = app()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1, [e.value for e in at.error]
    text = at.error[0].value
    assert str(recviz_home / "runs.db") in text and "move it aside" in text and "config.json" in text
    assert "Traceback" not in text and any("Details:" in c.value for c in at.caption)


def test_every_run_keeps_its_settings_beside_its_artifacts():
    store = RunStore()
    config = RunConfig.build(dataset=TINY, model="itempop", seed=4)
    run_id = store.create(config)
    kept = json.loads((store.run_dir(run_id) / "config.json").read_text())
    assert RunConfig.from_stored(kept) == store.get(run_id).config


# ---- a data directory this user cannot write ---------------------------------------------------------
def _as_a_user_who_cannot_write(home: Path, *args):
    """Run `recviz ARGS` so that `home` is not writable to it: the directory is made read-only,
    and as root (whom chmod does not stop) the command runs without capabilities (`setpriv
    --bounding-set=-all`: no CAP_DAC_OVERRIDE), still as root, so it can read a checkout that lies
    in a private folder. Either way the kernel refuses the writes: nothing is simulated."""
    scratch = tempfile.mkdtemp()  # the fallback log folder (TMPDIR) must be writable to the command
    env = dict(os.environ, RECVIZ_HOME=str(home), TMPDIR=scratch, HOME=scratch)
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot make a directory unwritable")
        prefix = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"]
    os.chmod(home, 0o555)
    try:
        return subprocess.run([*prefix, sys.executable, "-m", "recviz", *args], capture_output=True, text=True,
                              timeout=120, env=env, cwd=scratch)
    finally:
        os.chmod(home, 0o755)


@pytest.fixture
def shared_home():
    """A data directory of its own (made read-only by the test), named by RECVIZ_HOME."""
    home = Path(tempfile.mkdtemp()) / "recviz-home"
    home.mkdir()
    os.chmod(home.parent, 0o755)
    old = os.environ.get("RECVIZ_HOME")
    os.environ["RECVIZ_HOME"] = str(home)
    yield home
    os.environ["RECVIZ_HOME"] = old


def test_reading_commands_work_on_a_read_only_data_directory_and_writing_ones_name_it(shared_home):
    run_id, _, _ = record.train_here(RunConfig.build(dataset=TINY, model="itempop"))
    before = sorted(p.name for p in shared_home.iterdir())

    listed = _as_a_user_who_cannot_write(shared_home, "runs", "--json")
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout.strip().splitlines()[-1])["runs"]
    assert [(r["id"], r["status"]) for r in runs] == [(run_id, "done")]
    top = _as_a_user_who_cannot_write(shared_home, "recommend", "--run", str(run_id), "--user", "u0001", "--json")
    assert top.returncode == 0 and json.loads(top.stdout.strip().splitlines()[-1])["items"], top.stderr
    assert sorted(p.name for p in shared_home.iterdir()) == before  # nothing created by reading

    train = _as_a_user_who_cannot_write(shared_home, "train", "--dataset", TINY, "--model", "itempop")
    assert train.returncode == 1 and "Traceback" not in train.stderr, train.stderr
    assert f"the data directory {shared_home} is not writable" in train.stderr
    assert sorted(p.name for p in shared_home.iterdir()) == before

    data = shared_home.parent / "ratings.csv"
    data.write_text("user,item\n" + "".join(f"u{k},i{k % 7}\n" for k in range(40)))
    os.chmod(data, 0o644)
    imported = _as_a_user_who_cannot_write(shared_home, "import", str(data), "--name", "mine")
    assert imported.returncode == 1 and "Traceback" not in imported.stderr, imported.stderr
    assert "cannot write" in imported.stderr and str(shared_home) in imported.stderr
    assert "the data directory is not writable" in imported.stderr
