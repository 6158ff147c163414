"""Sweeps: one run per value of one parameter, everything else equal — the papers' figures
(HR@10 vs η, vs negative ratio, vs embedding size). The app and `recviz sweep` share this."""

from __future__ import annotations

import time
from dataclasses import fields, replace

from recviz.config import RunConfig
from recviz.errors import RecvizError

SWEEPABLE = ("eta", "neg_ratio", "emb_dim", "layers", "lr", "neighbors")


def parse_values(param: str, text: str) -> list:
    """'0,0.2,0.4' → [0.0, 0.2, 0.4] typed like the config field; layers use ';' between values
    ('64,32,16;128,64,32') since a layer list has commas of its own."""
    kinds = {f.name: f.type for f in fields(RunConfig)}
    if param not in SWEEPABLE or param not in kinds:
        available = [p for p in SWEEPABLE if p in kinds]
        raise RecvizError(f"cannot sweep {param!r}", fix=f"sweep one of: {', '.join(available)}")
    parts = [p.strip() for p in text.split(";" if param == "layers" else ",") if p.strip()]
    if not parts:
        raise RecvizError(f"no values given for {param}", fix="e.g. --values 0,0.2,0.4,0.6,0.8,1")
    cast = {"int": int, "float": float, "str": str}[kinds[param]]
    try:
        values = [cast(p) for p in parts]
    except ValueError:
        raise RecvizError(f"{param} values must be {kinds[param]}s, got {text!r}") from None
    return list(dict.fromkeys(values))  # keep order, drop repeats


def plan(base: RunConfig, param: str, values: list) -> list[RunConfig]:
    return [replace(base, **{param: v}) for v in values]


def new_sweep_id(param: str) -> str:
    return f"{param}-{time.strftime('%Y%m%d-%H%M%S')}"
