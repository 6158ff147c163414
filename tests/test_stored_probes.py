"""Issue 25's re-probe: stored files damaged or replaced after they were saved, and runs that cannot
be read back, through the CLI (`recviz.cli.main`, in process) and the API. Each case is one
RecvizError naming the file and a fix: never a parser's exception, never "internal error"."""

import json
import os
import sqlite3

import numpy as np
import pandas as pd
import pytest

from recviz.errors import RecvizError


@pytest.fixture
def saved(tmp_path):
    """A saved dataset 'small' (20 users × 30 items) with titles, and a finished itempop run on it."""
    import recviz
    from recviz.cli import main

    rng = np.random.default_rng(0)
    pairs = {(int(u), int(i)) for u, i in rng.integers(1, [21, 31], size=(160, 2))}
    log = tmp_path / "log.csv"
    pd.DataFrame(sorted(pairs), columns=["user", "item"]).to_csv(log, index=False)
    titles = tmp_path / "titles.csv"
    titles.write_text("item_id,title\n" + "".join(f"{i},Title {i}\n" for i in range(1, 31)))
    assert main(["import", str(log), "--name", "small", "--titles", str(titles)]) == 0
    run = recviz.train("small", model="itempop", candidates=2)
    return {"folder": __import__("recviz").paths.uploads_dir() / "small", "run": run.save(),
            "user": str(run._result.split.data.user_ids[0])}


def _swap_dir(path):
    os.remove(path)
    path.mkdir()


DAMAGE = {  # what is done to the saved dataset's folder → what the message says
    "titles not text": (lambda f: (f / "items.csv").write_bytes(b"\x00\xff\xfe garbage\n"), "titles cannot be read"),
    "titles ragged": (lambda f: (f / "items.csv").write_text("a,b\n1\n2,3,4,5\n"), "titles cannot be read"),
    "titles other columns": (lambda f: (f / "items.csv").write_text("id,name\n1,x\n"), "not item, title, genres"),
    "titles a folder": (lambda f: _swap_dir(f / "items.csv"), "titles are not a regular file"),
    "titles a pipe": (lambda f: (os.remove(f / "items.csv"), os.mkfifo(f / "items.csv")),
                      "titles are not a regular file"),
    "version file missing": (lambda f: os.remove(f / "v1.npz"), "the file of 'small' v1 is missing"),
    "version file a folder": (lambda f: _swap_dir(f / "v1.npz"), "v1 is not a regular file"),
    "version file a pipe": (lambda f: (os.remove(f / "v1.npz"), os.mkfifo(f / "v1.npz")),
                            "v1 is not a regular file"),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_a_damaged_saved_dataset_is_one_message_in_the_cli_and_the_api(saved, case, capsys):
    import recviz
    from recviz.cli import main

    damage, says = DAMAGE[case]
    damage(saved["folder"])
    with pytest.raises(RecvizError, match=says) as err:
        recviz.load("small")
    assert str(saved["folder"]) in str(err.value) and err.value.fix
    capsys.readouterr()
    assert main(["inspect", "--dataset", "small"]) == 2
    out = capsys.readouterr().err
    assert says in out and "internal error" not in out and "Fix:" in out
    if case.startswith("titles"):  # a run's recommendations show the dataset's titles
        assert main(["recommend", "--run", str(saved["run"]), "--user", saved["user"]]) == 2
        assert says in capsys.readouterr().err
        with pytest.raises(RecvizError, match=says):
            recviz.open_run(saved["run"]).recommend(saved["user"])


def _unreadable(store_path, run_id, how):
    with sqlite3.connect(store_path) as conn:
        if how == "bad JSON":
            conn.execute("UPDATE runs SET config = '{nope' WHERE id = ?", (run_id,))
        else:  # a run of a model not registered here (the README's toy model, saved from a notebook)
            conn.execute("UPDATE runs SET model = 'toy', config = ? WHERE id = ?",
                         (json.dumps({"model": "toy", "dataset": "small", "options": {"factors": 8}}), run_id))


@pytest.mark.parametrize("how, why", [("bad JSON", "Expecting property name"), ("unknown model", "unknown model 'toy'")])
def test_report_and_compare_say_a_run_is_unreadable_and_why(saved, how, why, capsys):
    import recviz
    from recviz.cli import main
    from recviz.experiments.store import RunStore

    good = saved["run"]
    bad = recviz.train("small", model="itempop", candidates=2, seed=1).save()
    _unreadable(RunStore().path, bad, how)
    capsys.readouterr()
    assert main(["report", str(bad), str(good)]) == 0  # the readable run is still reported
    out = capsys.readouterr().out
    assert f"#{bad}" in out and "is unreadable: " in out and why in out and f"#{good}" in out
    assert main(["compare", str(good), str(bad)]) == 2
    err = capsys.readouterr().err
    assert "is unreadable: " in err and why in err and "internal error" not in err
    with pytest.raises(RecvizError, match=f"unreadable: .*{why}"):
        recviz.compare(good, bad)
    report = recviz.report(bad, good)  # the API's report lists it with the reason, beside the rest
    assert report is not None
