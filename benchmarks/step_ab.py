"""Two or more ways of taking a training step, timed against each other in one process, interleaved.

    python benchmarks/step_ab.py --models neumf --set mlp_layers=128,128,64,32 --set dropout=0.1
    python benchmarks/step_ab.py --models gmf,neumf --batch-size 1024 --rounds 200

Variants (`--variants`, default all three):
- `hand`: the loop's step as it runs today (GMF/MLP/NeuMF: the hand-written step, `recviz.models.ncf_step`);
- `autograd`: the same loop through autograd (`GradientEpochs(plan, autograd=True)`);
- `before`: autograd, and Adam counting steps per weight (one `add_` per weight, as before the
  shared step counter): the step of the commit before this benchmark existed.

Each variant trains its own copy of the model (same seed, same batches). A round runs `--block`
steps of every variant, in an order that rotates from round to round, and times each block; the
report is the median over rounds of ms per step, per variant, and each variant's ratio to the first.
Alternating in short blocks puts every variant under the same load, so on a shared machine the
ratios mean something even where the absolute times do not. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's recviz

from recviz.config import RunConfig  # noqa: E402
from recviz.experiments import experiment  # noqa: E402
from recviz.training.loop import GradientEpochs  # noqa: E402

VARIANTS = ("hand", "autograd", "before")
ML100K = os.environ.get("RECVIZ_ML100K", str(ROOT.parent / "shared" / "data" / "ml-100k"))


def make(variant: str, config: RunConfig, split) -> tuple[GradientEpochs, list]:
    model = experiment.build_model(config)
    model.begin(split)
    steps = GradientEpochs(model.plan(model.phases()[-1], split), autograd=variant != "hand")
    if variant == "before":  # one step count per weight, each advanced by its own add_
        steps.optimizer._own = [c.clone() for c in steps.optimizer.steps]
    data, _ = steps.samples()
    steps.module.train()
    return steps, steps.batches(data)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default=ML100K)
    ap.add_argument("--models", default="gmf,neumf")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--block", type=int, default=20, help="steps per variant per round")
    ap.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE",
                    help="a model option, e.g. --set dropout=0.1 (repeatable; skipped for a model without it)")
    args = ap.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    extra = dict(s.split("=", 1) for s in args.set)
    rows = []
    for name in [m for m in args.models.split(",") if m]:
        options = {"batch_size": args.batch_size, **({"pretrain": False} if name == "neumf" else {})}
        base = RunConfig.build(dataset=args.dataset, model=name, threads=args.threads, device=args.device, **options)
        known = set(base.options)
        config = RunConfig.build(dataset=args.dataset, model=name, threads=args.threads, device=args.device,
                                 **options, **{k: v for k, v in extra.items() if k in known})
        split = experiment.prepare_split(config)
        runs = {v: make(v, config, split) for v in variants}
        cursor = {v: 0 for v in variants}
        times = {v: [] for v in variants}
        for r in range(args.rounds):
            order = variants[r % len(variants):] + variants[:r % len(variants)]
            for v in order:
                steps, batches = runs[v]
                lo = cursor[v]
                if lo + args.block > len(batches):
                    lo = 0
                block = batches[lo:lo + args.block]
                cursor[v] = lo + args.block
                if args.device != "cpu":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                steps.run(block, lambda: False)
                if args.device != "cpu":
                    torch.cuda.synchronize()
                times[v].append(1e3 * (time.perf_counter() - start) / len(block))
        med = {v: statistics.median(times[v][2:]) for v in variants}  # the first rounds warm up
        first = variants[0]
        for v in variants:
            rows.append({"model": name, "variant": v, "batch_size": args.batch_size, "threads": torch.get_num_threads(),
                         "ms_per_step_median": round(med[v], 4), "ratio_to_" + first: round(med[v] / med[first], 3),
                         "rounds": args.rounds, "block": args.block, "options": {k: v for k, v in config.options.items()
                                                                                   if k in extra}})
            print(f"{name:6} {v:9} {med[v]:8.3f} ms/step (median of {args.rounds - 2} rounds)  "
                  f"×{med[v] / med[first]:.2f} of {first}", flush=True)
    print(json.dumps({"step_ab": rows}))


if __name__ == "__main__":
    main()
