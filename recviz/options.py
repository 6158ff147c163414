"""How a setting is declared: once, with its type, default, range, one line of help and the paper's
value. Everything else is generated from these declarations: the CLI flags, the Train page's form,
the sweep lists, the validation of a config, and the `--help` text.

Two kinds of settings use this language:
- a model's own options, declared beside the model (`recviz.models.spec.ModelSpec.options`);
- the settings every run has (dataset, protocol, seed, device, …), declared on `RunConfig`.

This module imports nothing heavier than the standard library: the pages and `import recviz` read it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from recviz.errors import RecvizError

KINDS = ("int", "float", "str", "bool", "widths")
MAX_WIDTH = 8192  # one layer's width: wider is never useful here, and a typo must not allocate 2e9 floats
MAX_DEPTH = 16  # widths in one tower


@dataclass(frozen=True)
class Option:
    """One setting. `low`/`high` bound numbers (inclusive); `choices` bound strings; `widths` is a
    comma-separated list of positive layer widths, stored as the canonical string ("256,128,64").
    `rule` adds a model-specific check (returns the problem, or None). `formerly` lists names this
    option had in configs stored by earlier versions, so those runs still load."""

    name: str
    kind: str
    default: Any
    help: str
    label: str = ""  # short widget label; the name when empty
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    optional: bool = False  # None is a value ("not set")
    sweep: bool = False  # offered as a sweep parameter
    paper: Any = None  # the value the model's paper used, for the help text
    log: bool = False  # spans orders of magnitude (learning rate, L2): widgets step ×10
    rule: Callable[[Any], str | None] | None = field(default=None, compare=False)
    formerly: tuple[str, ...] = ()

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"option {self.name}: kind must be one of {KINDS}, not {self.kind!r}")

    # ---- names ----------------------------------------------------------------------------------
    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    def with_default(self, default, **changes) -> Option:
        """The same option with another default (a model's own best value)."""
        return replace(self, default=default, **changes)

    # ---- what is allowed ------------------------------------------------------------------------
    def allowed(self) -> str:
        """'an integer from 1 to 1024', 'one of nce, ce', … (for errors and help)."""
        if self.choices:
            text = "one of " + ", ".join(str(c) for c in self.choices)
        elif self.kind == "bool":
            text = "true or false"
        elif self.kind == "widths":
            text = f"comma-separated layer widths from 1 to {MAX_WIDTH} (at most {MAX_DEPTH})"
        elif self.kind in ("int", "float"):
            noun = "an integer" if self.kind == "int" else "a number"
            if self.low is not None and self.high is not None:
                text = f"{noun} from {_num(self.low)} to {_num(self.high)}"
            elif self.low is not None:
                text = f"{noun} ≥ {_num(self.low)}"
            elif self.high is not None:
                text = f"{noun} ≤ {_num(self.high)}"
            else:
                text = noun
        else:
            text = "text"
        return text + (" (or empty: not set)" if self.optional else "")

    def describe(self) -> str:
        """The help line: what it does, the default and the paper's value."""
        parts = [self.help, f"default {format_value(self.default)}"]
        if self.paper is not None and self.paper != self.default:
            parts.append(f"paper: {format_value(self.paper)}")
        return "; ".join(parts)

    # ---- parsing --------------------------------------------------------------------------------
    def parse(self, value: Any, owner: str = "", error: type[RecvizError] = RecvizError) -> Any:
        """`value` (typed, or text from a flag or a form) as this option's type, or `error` naming
        the option, what it allows, and `owner` (the model)."""
        who = f"{owner}: " if owner else ""

        def bad(problem: str | None = None) -> RecvizError:
            return error(f"{who}{self.name} must be {self.allowed()}, not {value!r}"
                         + (f" ({problem})" if problem else ""),
                         fix=f"set {self.flag} to {self.allowed()}" + (f"; see `recviz train --model {owner} --help`"
                                                                     if owner else ""))

        if value is None or (isinstance(value, str) and not value.strip() and self.optional):
            if self.optional:
                return None
            raise bad()
        try:
            typed = self._cast(value)
        except (TypeError, ValueError, OverflowError):
            raise bad() from None
        if self.choices and typed not in self.choices:
            raise bad()
        if self.kind in ("int", "float"):
            if (self.low is not None and typed < self.low) or (self.high is not None and typed > self.high):
                raise bad()
        problem = self.rule(typed) if self.rule is not None else None
        if problem:
            raise bad(problem)
        return typed

    def _cast(self, value: Any) -> Any:
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if self.kind == "int":
            if isinstance(value, bool):
                raise TypeError(value)
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError(value)
                return int(value)
            return int(str(value).strip())
        if self.kind == "float":
            if isinstance(value, bool):
                raise TypeError(value)
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(value)
            return number
        if self.kind == "widths":
            parts = value.split(",") if isinstance(value, str) else list(value)
            widths = [int(str(w).strip()) for w in parts if str(w).strip()]
            if not widths or len(widths) > MAX_DEPTH or min(widths) < 1 or max(widths) > MAX_WIDTH:
                raise ValueError(value)
            return ",".join(str(w) for w in widths)
        return str(value)


def widths(text: str) -> tuple[int, ...]:
    """"256,128,64" (an already parsed `widths` value) → (256, 128, 64)."""
    return tuple(int(w) for w in text.split(","))


def format_value(value: Any) -> str:
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return _num(value)
    return str(value)


def _num(x: float) -> str:
    """0.001 → '0.001', 1e-06 → '1e-06', 2147483647 → '2147483647' (a whole number reads whole)."""
    if float(x).is_integer() and abs(x) < 1e16:
        return str(int(x))
    return f"{x:g}"


# ---- settings of a run that a model also reads ------------------------------------------------------
# Declared here, below both the models and RunConfig, because a model is built with them too.
SEED = Option("seed", "int", 0, "seeds the split (unless split_seed is set), the weights and the negatives", low=0,
              high=2**31 - 1, sweep=True)
DEVICES = ("auto", "cpu", "cuda")  # and cuda:N
DEVICE = Option("device", "str", "auto", "auto (CUDA when present) | cpu | cuda | cuda:N", label="Device",
                rule=lambda d: None if d in DEVICES or (d.startswith("cuda:") and d[5:].isdigit())
                else "write auto, cpu, cuda or cuda:N")
# 0 = auto: one thread per run (threads_for says why)
THREADS = Option("threads", "int", 0, "torch CPU threads of a run (0 = auto: one, which keeps a run's speed beside "
                 "other busy processes)", low=0, high=1024)


AUTO_THREADS = 1


def threads_for(threads: int) -> int:
    """The torch CPU threads a run uses: `threads`, or for 0 (auto) one.

    Why one: the small matmuls of these models barely use a second core (a NeuMF epoch on ml-100k:
    2.48 s with 2 threads, 2.93 s with 1), while torch's default — one spinning OpenMP thread per
    core — collapses beside any other busy process: 138.8 s per epoch against 4.5 s with one thread
    on a 2-core machine with one CPU-bound neighbour. Cores are better spent on runs side by side
    (sweeps, the queue). Results can depend on the thread count (the order of float sums), so the
    count used is recorded with every run."""
    if threads < 0:
        raise ValueError(f"threads must be ≥ 0, not {threads}")
    return threads or AUTO_THREADS
