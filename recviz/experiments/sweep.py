"""Sweeps: one run per value of one option, everything else equal — the papers' figures (HR@10 vs
η, vs negative ratio, vs embedding size). Which options can be swept is declared with each model
(`Option.sweep`). The app and `recviz sweep` share this."""

from __future__ import annotations

import time

from recviz.config import RunConfig
from recviz.errors import RecvizError
from recviz.models.spec import ModelSpec
from recviz.options import SEED


def parse_values(spec: ModelSpec, param: str, text: str) -> list:
    """'0,0.2,0.4' → [0.0, 0.2, 0.4], each checked as the option declares; layer lists use ';'
    between values ('64,32,16;128,64,32') since a list has commas of its own."""
    sweepable = {o.name: o for o in spec.sweepable()}
    if param not in sweepable:
        raise RecvizError(f"cannot sweep {param!r} of {spec.name}",
                          fix=f"sweep one of: {', '.join(sweepable) or 'none (this model has no such option)'}")
    option = sweepable[param]
    parts = [p.strip() for p in text.split(separator(option.name, spec)) if p.strip()]
    if not parts:
        raise RecvizError(f"no values given for {param}", fix=f"e.g. {VALUES_EXAMPLE}")
    if any(p in ("...", "…") for p in parts):
        raise RecvizError(f"'{text}': a list of values cannot be continued with '...'",
                          fix=f"list every value, or give a range START:STOP:STEP (stop included), e.g. {VALUES_EXAMPLE}")
    values = [option.parse(v, spec.name) for p in parts for v in _expand(p, option)]
    return list(dict.fromkeys(values))  # keep order, drop repeats


VALUES_EXAMPLE = "0:1:0.2 (0, 0.2, 0.4, 0.6, 0.8, 1) or 0,0.5,1"
RANGE_MAX = 1000  # values one range may give


def _expand(part: str, option) -> list[str]:
    """"0:1:0.2" → ["0", "0.2", …, "1"] (stop included) for a number option; anything else as given."""
    if option.kind not in ("int", "float") or part.count(":") != 2:
        return [part]
    from decimal import Decimal, InvalidOperation

    try:
        start, stop, step = (Decimal(x.strip()) for x in part.split(":"))
    except InvalidOperation:
        raise RecvizError(f"'{part}' is not a range START:STOP:STEP of numbers", fix=f"e.g. {VALUES_EXAMPLE}") from None
    if step <= 0 or stop < start:
        raise RecvizError(f"'{part}': a range goes up from START to STOP by a positive STEP",
                          fix=f"e.g. {VALUES_EXAMPLE}")
    count = int((stop - start) / step) + 1
    if count > RANGE_MAX:
        raise RecvizError(f"'{part}' gives {count:,} values, more than {RANGE_MAX} runs", fix="take a larger step")
    return [str(start + k * step) for k in range(count)]  # decimal steps: 0.6, never 0.6000000000000001


def separator(param: str, spec: ModelSpec) -> str:
    """How sweep values are separated: ';' for layer lists, ',' otherwise."""
    return ";" if spec.option(param).kind == "widths" else ","


def parse_seeds(text: str | None) -> list[int]:
    """'0,1,2' → [0, 1, 2], each checked as the seed option declares (order kept, repeats dropped).
    A value's mean over seeds is the only honest point on a sweep curve: on ml-100k seed noise
    alone moves HR@10 by ±0.01–0.02, as much as most effects the papers plot."""
    parts = [p.strip() for p in str(text or "").split(",") if p.strip()]
    if not parts:
        raise RecvizError("no seeds given", fix="e.g. --seeds 0,1,2")
    return list(dict.fromkeys(SEED.parse(p) for p in parts))


def launch_label(n_runs: int) -> str:
    """What the Train page's button says for a sweep of `n_runs` runs: "Launch 1 run", "Launch 6 runs"."""
    return f"Launch {n_runs} run{'' if n_runs == 1 else 's'}"


def plan(base: RunConfig, param: str, values: list, seeds: list[int] | None = None) -> list[RunConfig]:
    """One config per value — per value and seed when `seeds` are given (value-major: every seed of
    the first value, then the next value), everything else as in `base`."""
    return [base.replace(**{param: v}, **({} if seed is None else {"seed": seed}))
            for v in values for seed in (seeds or [None])]


def summarize(rows: list[dict], param: str, metrics=("HR@10", "NDCG@10")) -> list[dict]:
    """A sweep's table: one row per value, in the order run, with each metric's mean over the
    value's runs (seeds), its sample standard deviation (None for one run) and the run ids."""
    import numpy as np

    out: dict = {}
    for r in rows:
        out.setdefault(repr(r[param]), {param: r[param], "rows": []})["rows"].append(r)
    table = []
    for group in out.values():
        line = {param: group[param], "runs": [r["run_id"] for r in group["rows"]],
                "seeds": [r.get("seed") for r in group["rows"]]}
        for m in metrics:
            values = np.array([r[m] for r in group["rows"] if r.get(m) is not None], dtype=float)
            line[m] = float(values.mean()) if len(values) else None
            line[f"{m} std"] = float(values.std(ddof=1)) if len(values) > 1 else None
        table.append(line)
    return table


def new_sweep_id(param: str) -> str:
    """"<option>-<time>": which option a sweep varies can be read back from its id (`param_of`)."""
    return f"{param}-{time.strftime('%Y%m%d-%H%M%S')}"


def param_of(sweep_id) -> str | None:
    """The option a sweep varied, from its id; None outside sweeps."""
    return str(sweep_id).split("-")[0] if sweep_id not in (None, "") else None


def suggested_values(spec: ModelSpec, param: str) -> str:
    """A starting list of values for the sweep form, from the option's declaration: six even steps
    across a range no wider than 1 (η, dropout), else half, the default and twice it."""
    option = spec.option(param)
    default = option.default
    if option.kind == "widths" or option.choices or default is None:
        return str(default)
    if option.low is not None and option.high is not None and option.high - option.low <= 1:
        return ",".join(f"{option.low + k * (option.high - option.low) / 5:g}" for k in range(6))
    if option.kind == "int":
        values = [max(int(option.low or 1), default // 2), default, default * 2]
    elif option.log or default == 0:
        values = [default / 10, default, default * 10] if default else [0, 1e-6, 1e-4]
    else:
        values = [default / 2, default, default * 2]
    if option.high is not None:
        values = [min(v, option.high) for v in values]
    return ",".join(f"{v:g}" for v in dict.fromkeys(values))
