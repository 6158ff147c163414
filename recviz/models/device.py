"""Where a model trains, with how many CPU threads, and from which random state.

The device comes from the run config: "auto" takes CUDA when torch sees a GPU and the CPU
otherwise. Asking for "cuda" on a machine without one is an error, never a silent CPU run: a person
who asked for the GPU and waits ten times longer deserves to know why.
"""

from __future__ import annotations

import numpy as np
import torch

from recviz.errors import ModelError
from recviz.options import threads_for


def pick_device(name: str | None = "auto") -> torch.device:
    """"auto" | "cpu" | "cuda" | "cuda:N" | "mps" → a torch.device that exists on this machine."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ModelError(f"unknown device {name!r}", fix='use "auto", "cpu", "cuda" or "cuda:N"') from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelError(
                f"device {name!r} was asked for, but torch sees no CUDA GPU here "
                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'})",
                fix='use device "auto" or "cpu", or install a CUDA build of torch on a GPU machine')
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ModelError(f"device {name!r} does not exist: this machine has {count} CUDA GPU(s)",
                             fix=f"use cuda:0 … cuda:{count - 1}")
        return device
    if device.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ModelError("device 'mps' was asked for, but Apple's MPS backend is not available",
                             fix='use device "auto" or "cpu"')
        return device
    if device.type != "cpu":
        raise ModelError(f"device type {device.type!r} is not supported", fix='use "auto", "cpu" or "cuda"')
    return device


def set_threads(threads: int) -> int:
    """Pin torch's intra-op CPU threads (process-wide) to `threads_for(threads)`; returns that."""
    if threads < 0:
        raise ModelError(f"threads must be ≥ 0, not {threads}", fix="use 0 for auto (one thread per run)")
    n = threads_for(threads)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def flush_denormals(device: torch.device) -> None:
    """On a CPU, treat subnormal floats (< 1.2e-38) as zero — process-wide.

    Adam keeps v ≈ g² per weight. With weight decay, an embedding row that gets no data gradient
    sees g = wd·p, so v shrinks towards 1e-40 and below: subnormal numbers, which x86 handles in
    microcode ~100× slower. Measured on ml-100k GMF with weight_decay 1e-5: 13.3 s per epoch
    without, 1.8 s with, and identical validation metrics. GPUs flush by default already."""
    if device.type == "cpu":
        torch.set_flush_denormal(True)


def seed_everything(seed: int) -> np.random.Generator:
    """Seed torch's global generators (CPU and every GPU: weight init draws from them) and return a
    fresh numpy Generator for everything sampled in numpy. Same seed ⇒ same numbers on the CPU;
    GPU kernels such as embedding backward use atomics and may differ in the last bits."""
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def describe(name: str | None = "auto") -> str:
    """What "auto" (or `name`) trains on, in words for the app: "CUDA · NVIDIA H100 (80 GB)" or
    "CPU · 2 cores"."""
    try:
        device = pick_device(name)
    except ModelError as err:
        return f"unavailable: {err.problem}"
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"CUDA · {props.name} ({props.total_memory / 2**30:.0f} GB)"
    import os

    return f"{device.type.upper()} · {os.cpu_count()} cores"
