"""Training throughput: samples per second of the training step, per model × batch size × device.

    python benchmarks/throughput.py                                   # every device here, both datasets
    python benchmarks/throughput.py --dataset ../shared/data/ml-100k --models neumf --batch-sizes 256
    python benchmarks/throughput.py --precision bf16 --compile        # options of the CUDA cells / all cells
    python benchmarks/throughput.py --autograd                        # GMF/MLP/NeuMF through autograd too

Each cell trains a fresh model (its defaults, the batch size of the cell; NeuMF from scratch, its own
Adam phase) through the training loop's own step (`GradientEpochs.run`) for `--warmup` batches, then
times `--batches` batches (a CUDA cell is synchronised before and after) and reports samples/s and
ms per step; `step` says how it took the step (GMF, MLP and NeuMF: `hand`, the hand-written step of
`recviz.models.ncf_step`, unless `--autograd`; every other model `autograd`). Drawing the epoch's samples, moving them to the device and shuffling them are not
timed: they happen once per epoch. Devices: the CPU, and every CUDA device torch sees
(`torch.cuda.is_available()`); `--devices` picks others. `--precision` applies to CUDA cells only (the
models train in fp32 elsewhere, and the cell says what it used).

Datasets (`--dataset`, repeatable): MovieLens-100K (`../shared/data/ml-100k`, or $RECVIZ_ML100K) and
a synthetic log of 10M rows (`SYNTHETIC_10M`, recviz's synthetic spec; generating and splitting it
takes a few minutes and ~3 GB of memory). Prints a table, then one JSON line (`{"throughput": [...]}`).

The numbers are wall-clock: measure on an otherwise idle machine, and compare cells measured in the
same run only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's recviz

from recviz.config import RunConfig  # noqa: E402
from recviz.experiments import experiment  # noqa: E402
from recviz.training.loop import GradientEpochs  # noqa: E402

SYNTHETIC_10M = "synthetic:users=70000,items=10700,interactions=10000000"
ML100K = os.environ.get("RECVIZ_ML100K", str(ROOT.parent / "shared" / "data" / "ml-100k"))


def devices_here() -> list[str]:
    gpus = [f"cuda:{k}" for k in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return ["cpu", *gpus]


def label(ref: str) -> str:
    if ref.startswith("synthetic"):
        return "synthetic-10M" if ref == SYNTHETIC_10M else ref
    return Path(ref).name


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Cells:
    """The split of each dataset and the drawn epoch of each kind of sampler, made once."""

    def __init__(self, args):
        self.args, self.splits, self.epochs = args, {}, {}

    def split(self, ref: str):
        if ref not in self.splits:
            start = time.perf_counter()
            config = RunConfig.build(dataset=ref, model="gmf")
            self.splits[ref] = experiment.prepare_split(config)
            d = self.splits[ref].data
            print(f"# {label(ref)}: {d.n_users:,} users × {d.n_items:,} items, {len(d):,} rows "
                  f"(loaded and split in {time.perf_counter() - start:.0f} s)", flush=True)
        return self.splits[ref]

    def measure(self, ref: str, model_name: str, batch_size: int, device: str) -> dict:
        args = self.args
        options = {"batch_size": batch_size}
        if model_name == "neumf":
            options["pretrain"] = False
        if args.precision != "fp32":
            options["precision"] = args.precision
        split = self.split(ref)
        config = RunConfig.build(dataset=ref, model=model_name, device=device, threads=args.threads, **options)
        model = experiment.build_model(config)
        model.begin(split)
        plan = model.plan(model.phases()[-1], split)
        # the samples of one epoch, drawn once per kind of sampler and cut to what the cell needs
        key = (ref, type(model).epoch_sampler, model.loss_kind, getattr(model.opts, "neg_ratio", None),
               plan.shuffle_block)
        if key not in self.epochs:
            self.epochs[key] = plan.draw(np.random.default_rng(plan.seed))
        need = batch_size * (args.warmup + args.batches)
        arrays = {k: v[:need - need % plan.shuffle_block] for k, v in self.epochs[key].items()}
        plan.draw = lambda rng: arrays
        steps = GradientEpochs(plan, autograd=args.autograd)
        if args.compile:
            steps.module.compile()
        data, n = steps.samples()
        batches = steps.batches(data)
        steps.module.train()
        warm, timed = batches[:args.warmup], batches[args.warmup:args.warmup + args.batches]
        start = time.perf_counter()
        steps.run(warm, lambda: False)
        _sync(plan.device)
        warm_s = time.perf_counter() - start
        start = time.perf_counter()
        losses = steps.run(timed, lambda: False)
        _sync(plan.device)
        seconds = time.perf_counter() - start
        samples = sum(len(next(iter(b.values()))) for b in timed)
        assert torch.isfinite(losses).all(), "a loss is not finite"
        return {"dataset": label(ref), "model": model_name, "batch_size": batch_size, "device": str(plan.device),
                "device_name": torch.cuda.get_device_name(plan.device) if plan.device.type == "cuda" else f"{os.cpu_count()} cores",
                "precision": model.precision, "step": "autograd" if steps.batch_grads is None else "hand",
                "compiled": bool(args.compile), "threads": torch.get_num_threads(),
                "batches": len(timed), "samples": samples, "seconds": round(seconds, 4),
                "samples_per_s": round(samples / seconds, 1), "ms_per_step": round(1e3 * seconds / len(timed), 4),
                "warmup_s": round(warm_s, 2)}


def commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", action="append", help=f"repeatable (default: {ML100K} and {SYNTHETIC_10M})")
    ap.add_argument("--models", default="gmf,mlp,neumf,mf,bpr")
    ap.add_argument("--batch-sizes", default="256,1024,4096")
    ap.add_argument("--devices", default=None, help="comma-separated (default: cpu, and cuda:N for every GPU torch sees)")
    ap.add_argument("--batches", type=int, default=200, help="timed batches per cell")
    ap.add_argument("--warmup", type=int, default=20, help="batches run before timing (compiling, lazy state)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"), help="CUDA cells only")
    ap.add_argument("--compile", action="store_true", help="torch.compile each module first (warm-up compiles; "
                    "it compiles the module's forward, which a hand-written step does not call: add --autograd)")
    ap.add_argument("--autograd", action="store_true", help="train through autograd even where a model has a hand-written step")
    args = ap.parse_args(argv)
    datasets = args.dataset or [ML100K, SYNTHETIC_10M]
    devices = args.devices.split(",") if args.devices else devices_here()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    cells, rows = Cells(args), []
    header = (f"{'dataset':14} {'model':6} {'batch':>6} {'device':8} {'precision':9} {'step':8} {'samples/s':>12} "
              f"{'ms/step':>9}")
    print(header)
    for ref in datasets:
        for model_name in models:
            for size in sizes:
                for device in devices:
                    r = cells.measure(ref, model_name, size, device)
                    rows.append(r)
                    print(f"{r['dataset']:14} {r['model']:6} {r['batch_size']:>6} {r['device']:8} {r['precision']:9} {r['step']:8} "
                          f"{r['samples_per_s']:>12,.0f} {r['ms_per_step']:>9.3f}", flush=True)
    print(json.dumps({"throughput": rows, "commit": commit(), "torch": torch.__version__,
                      "cuda": torch.version.cuda, "compiled": bool(args.compile)}))


if __name__ == "__main__":
    main()
