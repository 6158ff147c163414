"""A saved dataset's versions.json decides which files are read: a damaged or hand-edited one is
one message naming it, and nothing it says can send a read outside the data directory."""

import json

import pytest

from recviz import paths
from recviz.data import saved
from recviz.errors import DataError
from tests.helpers import random_interactions


@pytest.fixture
def index():
    saved.save("mine", random_interactions(n_users=20, n_items=30, per_user=(4, 6), seed=1))
    path = paths.uploads_dir() / "mine" / saved.INDEX
    assert saved.load("mine").n_users == 20
    return path


def outside(tmp_path):
    """A dataset somewhere else that a tampered index would like us to read."""
    other = tmp_path / "elsewhere.npz"
    random_interactions(n_users=7, n_items=9, per_user=(2, 3), seed=2).save(other)
    return other


@pytest.mark.parametrize("tamper", [
    lambda e, other: e[0].update(file=str(other)),  # an absolute path
    lambda e, other: e[0].update(version="../../../elsewhere"),  # a path in the version number
    lambda e, other: e[0].update(format="npz/../../../../elsewhere"),
    lambda e, other: e[0].update(file="../elsewhere.npz"),
])
def test_an_index_cannot_send_a_read_outside_the_data_directory(index, tmp_path, tamper):
    other = outside(tmp_path)
    entries = json.loads(index.read_text())
    tamper(entries, other)
    index.write_text(json.dumps(entries))
    with pytest.raises(DataError) as err:
        saved.load("mine", "v1")
    assert str(index) in str(err.value) and "Fix:" in str(err.value)


@pytest.mark.parametrize("text", ["{not json", "{}", "[]", '[{"version": 1}]', '["v1"]'])
def test_a_damaged_index_is_one_message_naming_it(index, text):
    index.write_text(text)
    with pytest.raises(DataError, match="index") as err:
        saved.load("mine")
    assert str(index) in str(err.value)


def test_a_version_file_that_is_a_link_out_is_refused(index, tmp_path):
    other = outside(tmp_path)
    target = index.parent / "v1.npz"
    target.unlink()
    target.symlink_to(other)
    with pytest.raises(DataError, match="outside the data directory"):
        saved.load("mine")


def test_a_swapped_version_file_is_refused_not_shown_as_the_other_version(index):
    saved.save("mine", random_interactions(n_users=25, n_items=30, per_user=(4, 6), seed=9), replace=True)
    v1, v2 = index.parent / "v1.npz", index.parent / "v2.npz"
    swap = index.parent / "swap"
    v1.rename(swap), v2.rename(v1), swap.rename(v2)
    with pytest.raises(DataError, match="does not hold the data saved as 'mine' v1") as err:
        saved.load("mine", "v1")
    assert str(v1) in str(err.value)
