"""Datasets on the pages: the one dataset choice all pages share, the cached prepared data, and
an upload as a file on disk for one script run."""

from __future__ import annotations

import contextlib

import streamlit as st

from pages.ui.errors import show_error
from recviz import paths
from recviz.config import RunConfig
from recviz.data import catalog
from recviz.analysis import dataset as ds
from recviz.data.load import identity, saved_names
from recviz.errors import RecvizError
from recviz.experiments.prepared import prepare_data

DEFAULT_DATASET = RunConfig().dataset  # the built-in dataset a fresh app opens on


def dataset_options() -> list[str]:
    """Datasets usable right now: saved uploads, generated and already-downloaded catalog entries."""
    ready = [row["name"] for row in catalog.describe() if row["cached"]]
    saved = saved_names()
    return saved + [n for n in ready if n not in saved]


def current_dataset() -> str:
    return st.session_state.get("dataset", DEFAULT_DATASET)


def choose_dataset(label: str = "Dataset", key: str = "dataset_choice") -> str:
    """A dataset picker bound to session_state["dataset"], the one choice all pages share: a
    dataset chosen or saved elsewhere shows up here, and a change here is seen everywhere."""
    options = dataset_options()
    current = current_dataset()
    if current not in options:
        options = [current] + options
    if st.session_state.get(key) != current:
        st.session_state[key] = current  # before the widget exists, so this run already shows it

    def changed() -> None:
        st.session_state["dataset"] = st.session_state[key]

    st.selectbox(label, options, key=key, on_change=changed, required=True)
    return current_dataset()


@contextlib.contextmanager
def uploaded(upload):
    """An uploaded file as a path on disk, under the name the person gave it (so errors name that
    file), for this script run only: removed on the way out whatever happens, so incoming/ never
    fills up. None in, None out (an optional uploader left empty)."""
    if upload is None:
        yield None
        return
    folder = paths.home() / "incoming" / upload.file_id
    path = folder / paths.safe_file_name(upload.name)  # a name too long for the file system is shortened
    folder.mkdir(parents=True, exist_ok=True)
    path.write_bytes(upload.getvalue())
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
        folder.rmdir()


def data_key(ref: str, min_user: int = 0, min_item: int = 0, min_rating: float | None = None,
             sample_users: int = 0) -> tuple:
    """What a cached read of a dataset is keyed by: the data directory, the reference, the
    version it names now (`load.identity`: a new version saved under the name by the CLI or another
    session is read afresh, never served stale) and the preparation."""
    return str(paths.home()), ref, identity(ref), min_user, min_item, min_rating, sample_users


def load_data(ref: str, min_user: int = 0, min_item: int = 0, min_rating: float | None = None,
              sample_users: int = 0):
    """The prepared dataset, read once per version and preparation (`data_key`)."""
    return _load_data(*data_key(ref, min_user, min_item, min_rating, sample_users))


@st.cache_resource(max_entries=8, show_spinner="Loading the dataset…")
def _load_data(home: str, ref: str, version: str, min_user: int, min_item: int, min_rating: float | None,
               sample_users: int):
    return prepare_data(RunConfig(dataset=ref, min_user=min_user, min_item=min_item, min_rating=min_rating,
                                  sample_users=sample_users))


def data_overview(ref: str, data) -> ds.Overview:
    """The Data page's numbers and (downsampled) chart frames of `data`, the dataset `ref` names
    now: computed once per version, so a rerun of the page reads no column of the log."""
    return _overview(data_key(ref), data)


@st.cache_data(max_entries=16, show_spinner="Summarising the dataset…")
def _overview(key: tuple, _data) -> ds.Overview:  # _data: not hashed (the key says which data it is)
    return ds.overview(_data)


def clear_data_cache() -> None:
    """After saving a dataset under an existing name (or adding titles to it), drop what is cached."""
    _load_data.clear()
    _overview.clear()


def load_data_or_error(ref: str, **kw):
    """The dataset, or None after showing the readable error on the page."""
    try:
        return load_data(ref, **kw)
    except RecvizError as err:
        show_error(err)
        return None
