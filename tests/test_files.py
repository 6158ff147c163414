"""recviz.files: the one atomic, durable write (and JSON read/write) every file RecViz keeps goes through."""

import os
import re
from pathlib import Path

import numpy as np
import pytest

from recviz import files

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fsyncs(monkeypatch):
    """For each os.fsync call: whether its descriptor was a folder (None where /proc cannot say)."""
    calls = []
    real = os.fsync

    def record(fd):
        calls.append(os.path.isdir(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else None)
        return real(fd)

    monkeypatch.setattr(os, "fsync", record)
    return calls


@pytest.mark.parametrize("content, expected", [
    (b"\x00bytes\xff", b"\x00bytes\xff"),
    ("text, ünïcode", "text, ünïcode".encode()),
    (lambda fh: fh.write(b"from a callback"), b"from a callback"),
])
def test_writes_bytes_text_or_a_callback_and_flushes_the_file_and_its_folder(tmp_path, fsyncs, content, expected):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    assert files.write_atomic(target, content) == target
    assert target.read_bytes() == expected
    assert len(fsyncs) == 2
    if fsyncs[0] is not None:
        assert fsyncs == [False, True]  # the file's data, then the folder's entry for it
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_numpy_writes_through_the_file_handle(tmp_path):
    target = files.write_atomic(tmp_path / "a.npz", lambda fh: np.savez(fh, x=np.arange(3)))
    with np.load(target) as z:
        assert z["x"].tolist() == [0, 1, 2]


def test_a_failing_write_leaves_the_old_file_and_no_temporary(tmp_path, fsyncs):
    target = tmp_path / "keep.json"
    target.write_text("old")

    def half_then_fail(fh):
        fh.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        files.write_atomic(target, half_then_fail, suffix=".part")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.json"]
    assert fsyncs == []  # nothing was renamed


def test_a_folder_that_cannot_be_written_is_an_oserror_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        files.write_atomic(tmp_path / "missing" / "x.json", b"{}")
    assert str(tmp_path / "missing") in str(err.value)


def test_json_round_trip_takes_numpy_values(tmp_path):
    obj = {"n": np.int64(3), "hr": np.float32(0.5), "per_user": np.array([1, 2]), "when": Path("/x")}
    path = files.write_json(tmp_path / "r.json", obj, indent=1)
    assert files.read_json(path) == {"n": 3, "hr": 0.5, "per_user": [1, 2], "when": "/x"}
    assert path.read_text().startswith("{\n ")
    assert files.json_text([np.bool_(True)]) == "[true]"


def test_only_recviz_files_renames_files_into_place():
    """One place writes a file atomically: any other `os.replace` / `os.rename` in recviz/ would be a
    second, hand-written copy of it."""
    found = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "recviz").rglob("*.py")
                   if re.search(r"\bos\.(replace|rename)\(", p.read_text()))
    assert found == ["recviz/files.py"]


def test_npz_save_atomic_writes_what_np_load_and_npz_load_read_back(tmp_path):
    """`recviz.data.npz.save_atomic` writes the zip of .npy files `np.savez_compressed` writes, at
    zlib's fastest level: the arrays (ints, floats, a text scalar, 2-D, empty) come back equal."""
    from recviz.data import npz

    arrays = {"rows": np.arange(100_000, dtype=np.int64), "scores": np.linspace(0, 1, 7, dtype=np.float32),
              "header": np.array("a text header ✓"), "cands": np.arange(12).reshape(3, 4), "none": np.zeros(0)}
    path = npz.save_atomic(tmp_path / "x.npz", arrays)
    with np.load(path, allow_pickle=False) as z:
        assert sorted(z.files) == sorted(arrays)
    back = npz.load(path)  # its size checks pass too
    for name, array in arrays.items():
        assert back[name].dtype == array.dtype and np.array_equal(back[name], array), name
    assert [p.name for p in tmp_path.iterdir()] == ["x.npz"]
