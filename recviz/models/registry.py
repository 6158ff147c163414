"""Every model RecViz knows, one line each: its declaration (`recviz.models.spec.ModelSpec`).

Declarations import no torch: the pages read this registry to list models, build the Train form and
grey out models a dataset cannot feed, and must stay fast. A model's implementation is imported
only when one is built. A test suite (or a plug-in) adds a model with `register(spec)`.
"""

from __future__ import annotations

import importlib

from recviz.data.interactions import Interactions
from recviz.errors import ModelError
from recviz.models import (dmf_spec, eals_spec, einmf_spec, itemknn_spec, itempop_spec, mf_spec, multibehavior_spec,
                           ncf_spec)
from recviz.models.spec import ModelSpec

MODELS: dict[str, ModelSpec] = {}
DEFAULT_MODEL = "neumf"  # what the Train page, the one-click run on Home and a bare RunConfig train


def register(spec: ModelSpec) -> ModelSpec:
    """Make a model known everywhere: CLI, Train page, sweeps, bench, contract test."""
    MODELS[spec.name] = spec
    return spec


for _spec in (
    itempop_spec.SPEC,
    itemknn_spec.SPEC,
    ncf_spec.GMF,
    ncf_spec.MLP,
    ncf_spec.NEUMF,
    mf_spec.MF,
    mf_spec.BPR,
    dmf_spec.DMF,
    einmf_spec.EINMF,
    multibehavior_spec.MBNMF,
    eals_spec.EALS,
):
    register(_spec)


def get(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}", fix=f"choose one of: {', '.join(MODELS)}") from None


def model_class(name: str) -> type:
    """The implementation a declaration points to (`target`, imported only now); it must carry
    that same declaration as its `spec`."""
    spec = get(name)
    module, cls = spec.target.split(":")
    found = getattr(importlib.import_module(module), cls)
    if getattr(found, "spec", None) is not spec:
        raise ModelError(f"{spec.target} does not carry the declaration of {name!r} as its `spec`",
                         fix=f"set `spec = <the ModelSpec named {name!r}>` on the class")
    return found


def build(name: str, options: dict | None = None, **run):
    """An untrained model with these options (checked against its declaration) and the run's
    seed / device / threads."""
    return model_class(name)(**(options or {}), **run)


def check_can_feed(name: str, data: Interactions) -> None:
    reason = get(name).unavailable_reason(data)
    if reason:
        raise ModelError(reason, file=data.source, fix="choose another model or dataset")
