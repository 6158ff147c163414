"""What several commands share: the run config from parsed flags, the data a config names, and the
download progress bar."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from recviz.config import RUN_NAMES, RunConfig

OPTION_PREFIX = "opt."  # argparse dest of a model option's flag (apart from the run settings)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The RunConfig the flags describe: run settings, the model and preset, and the model's
    options that were given (the others take the model's declared defaults, or the preset's)."""
    values = vars(args)
    run = {k: values[k] for k in RUN_NAMES if values.get(k) is not None}
    for key in ("model", "preset"):
        if values.get(key):
            run[key] = values[key]
    options = {k[len(OPTION_PREFIX):]: v for k, v in values.items() if k.startswith(OPTION_PREFIX) and v is not None}
    return RunConfig.build(**run, **options)


def download_bar(done: int, total: int | None) -> None:
    if total:
        filled = int(30 * done / total)
        sys.stderr.write(f"\r  downloading [{'#' * filled}{'.' * (30 - filled)}] {done / 1e6:6.1f}/{total / 1e6:.1f} MB")
    else:
        sys.stderr.write(f"\r  downloading {done / 1e6:6.1f} MB")
    sys.stderr.flush()


def load_data(config: RunConfig):
    """The prepared dataset of a config, downloading it first if needed."""
    from recviz.experiments.prepared import prepare_data

    return prepare_data(config, progress=download_bar)


def writable_output(path: str, what: str) -> Path:
    """`path` checked before any work is done that would be lost if it could not be written: its
    folder exists and is writable, it is not a folder itself, and its name fits the file system."""
    from recviz.errors import RecvizError

    out = Path(path).expanduser()
    folder = out.parent
    problem = None
    if len(out.name.encode()) > 255:
        problem = f"its name is {len(out.name.encode())} bytes long, more than a file name may be (255)"
    elif not folder.is_dir():
        problem = f"{folder} is not a folder" + ("" if folder.exists() else " (it does not exist)")
    elif out.is_dir():
        problem = "it is a folder"
    elif not os.access(folder, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        problem = "it is not writable"
    if problem:
        raise RecvizError(f"cannot write {what} to {out}: {problem}",
                          fix="give --out a file in a folder that exists and that you can write; nothing was run")
    return out
