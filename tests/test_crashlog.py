"""Where an unexpected error's traceback goes when the data directory cannot be written: never a
fixed path in the shared temporary directory that another local user could plant a link at."""

import os
import tempfile
import time

import pytest

from recviz import crashlog


@pytest.fixture
def shared_tmp(tmp_path, monkeypatch):
    """A stand-in for /tmp, and a data directory that cannot be created (its parent is a file)."""
    shared = tmp_path / "tmp"
    shared.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("RECVIZ_HOME", str(tmp_path / "file" / "home"))
    return shared


def boom() -> Exception:
    try:
        raise KeyError("x")
    except KeyError as exc:
        return exc


def test_the_fallback_ignores_a_link_planted_at_the_old_fixed_path(shared_tmp, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    planted = shared_tmp / "recviz" / "logs"
    planted.mkdir(parents=True)
    (planted / f"errors-{time.strftime('%Y%m%d')}.log").symlink_to(victim)

    log = crashlog.write(boom(), "test")
    assert victim.read_text() == "precious\n"
    assert log is not None and log.parent.parent == shared_tmp / f"recviz-{os.getuid()}"
    assert "KeyError" in log.read_text() and os.stat(log.parent.parent).st_mode & 0o777 == 0o700


@pytest.mark.parametrize("plant", ["link", "open"])
def test_a_private_directory_that_is_not_private_is_refused(shared_tmp, tmp_path, plant):
    victim_dir = tmp_path / "elsewhere"
    victim_dir.mkdir()
    mine = shared_tmp / f"recviz-{os.getuid()}"
    if plant == "link":  # someone made our directory a link to theirs
        mine.symlink_to(victim_dir)
    else:  # someone made it first, open to everybody
        mine.mkdir(mode=0o777)
        os.chmod(mine, 0o777)
    assert crashlog.write(boom(), "test") is None
    assert not any(victim_dir.rglob("*.log"))
    assert "no log file could be written" in crashlog.message(boom(), None)


def test_a_log_file_that_is_a_link_is_not_followed_in_the_data_directory(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / crashlog.LOG_DIR).mkdir(parents=True)
    monkeypatch.setenv("RECVIZ_HOME", str(home))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (home / crashlog.LOG_DIR / f"errors-{time.strftime('%Y%m%d')}.log").symlink_to(victim)
    log = crashlog.write(boom(), "test")
    assert victim.read_text() == "precious\n" and log is not None and log.is_relative_to(tmp_path / f"recviz-{os.getuid()}")
