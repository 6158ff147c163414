"""What one training step does, counted rather than timed: the torch operations per batch of GMF,
MLP and NeuMF (or any model), split into making the batch, forward, backward and the optimiser.

    python benchmarks/profile_step.py                                   # gmf,mlp,neumf on ml-100k, batch 256
    python benchmarks/profile_step.py --models neumf --batch-size 1024 --steps 100
    python benchmarks/profile_step.py --models neumf --autograd        # GMF/MLP/NeuMF through autograd

Counts do not depend on how busy the machine is, so this is the measure of per-operation overhead
on a shared machine; wall-clock figures from it are printed too but mean something only on an idle
one. For each phase of a step it reports (means per step over `--steps` steps, after warm-up):

- `ops`: every aten operation the profiler records, nested ones included (aten::linear and the
  aten::addmm it calls are two) — each is a trip through the dispatcher;
- `leaf`: aten operations that call no other aten operation — roughly the kernels a GPU launches;
- `py`: operations called from Python (each a Python → C++ crossing; backward's are called by the
  autograd engine in C++, so its `py` is ~0);
- `nodes`: autograd nodes run (backward only).

Phases: `batch` (getting the batch), `forward`, `backward` (autograd), `grads` (a model's
hand-written loss-and-gradient step, `recviz.models.ncf_step`: forward and backward in one; GMF,
MLP and NeuMF use it unless `--autograd`) and `optimizer` (its step).

`loop` profiles the training loop itself (`GradientEpochs.epoch` on the first `--steps` batches of
an epoch, divided by the batches): what a step really costs, the loop's bookkeeping included.
NeuMF is profiled from scratch (`pretrain=False`: its own Adam phase). The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile, record_function

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's recviz

from recviz.config import RunConfig  # noqa: E402
from recviz.experiments import experiment  # noqa: E402
from recviz.training.loop import GradientEpochs  # noqa: E402

PHASES = ("batch", "forward", "backward", "grads", "optimizer")


def _plan(model_name: str, dataset: str, batch_size: int, threads: int, device: str, extra: dict,
          autograd: bool = False):
    options = {"batch_size": batch_size, **extra}
    if model_name == "neumf":
        options.setdefault("pretrain", False)
    config = RunConfig.build(dataset=dataset, model=model_name, threads=threads, device=device, **options)
    split = experiment.prepare_split(config)
    model = experiment.build_model(config)
    model.begin(split)
    phase = model.phases()[-1]
    return GradientEpochs(model.plan(phase, split), autograd=autograd), config


def _limited(steps: GradientEpochs, n: int):
    """The plan's epoch cut to its first `n` samples (a fixed number of batches)."""
    draw = steps.plan.draw

    def first(rng):
        return {k: v[:n] for k, v in draw(rng).items()}
    steps.plan.draw = first


def _count(prof, scope_names: tuple[str, ...]) -> dict[str, Counter]:
    """Per scope (a record_function name): ops, leaf ops, autograd nodes and their names."""
    out = {s: Counter() for s in scope_names}
    names = {s: Counter() for s in scope_names}
    for ev in prof.events():
        scope = ev
        while scope is not None and scope.name not in out:
            scope = scope.cpu_parent
        if scope is None or scope is ev:
            continue
        if ev.name.startswith("aten::"):
            out[scope.name]["ops"] += 1
            names[scope.name][ev.name] += 1
            if not any(c.name.startswith("aten::") for c in ev.cpu_children):
                out[scope.name]["leaf"] += 1
            if ev.cpu_parent is scope:
                out[scope.name]["py"] += 1
        elif ev.name.startswith("autograd::engine::evaluate_function"):
            out[scope.name]["nodes"] += 1
    return {s: (out[s], names[s]) for s in scope_names}


def profile_model(name: str, args) -> dict:
    steps, config = _plan(name, args.dataset, args.batch_size, args.threads, args.device, args.options, args.autograd)
    plan, module, opt = steps.plan, steps.module, steps.optimizer
    if args.compile:  # the module's forward and backward through torch.compile (inductor)
        module.compile()
    bs = plan.batch_size
    arrays = plan.draw(steps.rng)
    data = {k: torch.from_numpy(np.ascontiguousarray(v)).to(plan.device) for k, v in arrays.items()}
    module.train()
    batches = getattr(steps, "batches", None)
    # how the loop gets batch b: precomputed views when it has them, else slices of the epoch tensors
    if batches is not None:
        views = batches(data)
        def get(b):
            return views[b]
    else:
        def get(b):
            lo = b * bs
            return {k: t[lo:lo + bs] for k, t in data.items()}

    def one(b):
        with record_function("batch"):
            batch = get(b)
        if steps.batch_grads is not None:  # the hand-written step: forward and backward in one
            with record_function("grads"):
                steps.batch_grads(batch)
            with record_function("optimizer"):
                opt.step()
            return
        with record_function("forward"):
            loss = plan.batch_loss(batch)
        with record_function("backward"):
            loss.backward()
        with record_function("optimizer"):
            opt.step()
            opt.zero_grad(set_to_none=True)

    for b in range(args.warmup):
        one(b)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for b in range(args.warmup, args.warmup + args.steps):
            one(b)
        wall = time.perf_counter() - start
    counted = _count(prof, PHASES)
    self_us = sum(ev.self_cpu_time_total for ev in prof.events() if ev.name.startswith("aten::"))
    per = {p: {k: round(v / args.steps, 1) for k, v in counted[p][0].items()} for p in PHASES}
    per["step"] = {k: round(sum(counted[p][0][k] for p in PHASES) / args.steps, 1) for k in ("ops", "leaf", "py", "nodes")}
    top = {p: {k: round(v / args.steps, 2) for k, v in counted[p][1].most_common()} for p in PHASES}

    # the loop itself, on the first `steps` batches of an epoch
    loop_steps, _ = _plan(name, args.dataset, args.batch_size, args.threads, args.device, args.options, args.autograd)
    if args.compile:
        loop_steps.module.compile()
    _limited(loop_steps, bs * args.steps)
    loop_steps.epoch(lambda: False)  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as lprof:
        with record_function("epoch"):
            loop_steps.epoch(lambda: False)
    loop = _count(lprof, ("epoch",))["epoch"][0]
    return {"model": name, "step": "hand" if steps.batch_grads is not None else "autograd", "batch_size": bs, "device": str(plan.device), "threads": torch.get_num_threads(),
            "steps": args.steps, "per_step": per, "loop_per_step": {k: round(v / args.steps, 1) for k, v in loop.items()},
            "ops_by_name": top, "wall_ms_per_step": round(1e3 * wall / args.steps, 3),
            "aten_self_ms_per_step": round(self_us / 1e3 / args.steps, 3),
            "params": len([p for p in module.parameters() if p.requires_grad]), "config_options": config.options}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default=os.environ.get("RECVIZ_ML100K", "../shared/data/ml-100k"))
    ap.add_argument("--models", default="gmf,mlp,neumf")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE",
                    help="a model option, e.g. --set emb_dim=64 (repeatable)")
    ap.add_argument("--compile", action="store_true", help="compile each model's module (torch.compile) first")
    ap.add_argument("--autograd", action="store_true", help="train through autograd even where a model has a hand-written step")
    ap.add_argument("--names", action="store_true", help="also print the operations of each phase by name")
    args = ap.parse_args(argv)
    args.options = dict(s.split("=", 1) for s in args.set)
    results = [profile_model(m.strip(), args) for m in args.models.split(",") if m.strip()]
    print(f"per step, batch {args.batch_size}, {args.steps} steps, device {args.device}, threads {args.threads}"
          + (", compiled" if args.compile else ""))
    print("ops / leaf / py per phase; loop: the training loop's own epoch, per batch")
    print(f"{'model':8} {'step':8} {'params':>6} " + " ".join(f"{p:>15}" for p in PHASES)
          + f" {'bwd nodes':>9} {'step':>15} {'loop':>15} {'wall ms':>8} {'aten self ms':>12}")

    def cell(c):
        return f"{c.get('ops', 0):g}/{c.get('leaf', 0):g}/{c.get('py', 0):g}".rjust(15)
    for r in results:
        s = r["per_step"]
        print(f"{r['model']:8} {r['step']:8} {r['params']:>6} " + " ".join(cell(s[p]) for p in PHASES)
              + f" {s['backward'].get('nodes', 0):>9g} {cell(s['step'])} {cell(r['loop_per_step'])} "
              f"{r['wall_ms_per_step']:>8.3f} {r['aten_self_ms_per_step']:>12.3f}")
        if args.names:
            for p in PHASES:
                print(f"  {p}: " + ", ".join(f"{k[6:]}×{v:g}" for k, v in r["ops_by_name"][p].items()))
    print(json.dumps({"profile_step": [{k: v for k, v in r.items() if k != "config_options"} for r in results]}))


if __name__ == "__main__":
    main()
