"""RecViz against RecBole 1.2.1, side by side: the same model on ml-100k, the two alternating in one
run (RecBole, RecViz, then RecViz, RecBole in the next round…), so that the machine's drift touches
both alike. RecBole runs through `../shared/peer/recbole_bench.py` in its own environment (see that
folder's README for setting it up); RecViz through its CLI.

    python benchmarks/peer.py --recbole-python /tmp/recbole-venv/bin/python
    python benchmarks/peer.py --models neumf --rounds 3 --batch-size 256 --threads 2

Each cell trains `--epochs` epochs (no early stopping) at `--batch-size` with `--threads` torch
threads, 4 negatives, Adam lr 1e-3, and reports the median training epoch in seconds (RecBole: its
measured training epochs; RecViz: the run's stored epochs, training pass only). The table gives
each model's median over rounds and RecBole's time over RecViz's; one JSON line follows. Measure
on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_run import ML100K, ROOT, train  # noqa: E402

HARNESS = ROOT.parent / "shared" / "peer" / "recbole_bench.py"
# the same network on both sides: RecBole's model and settings, then RecViz's options for it
MODELS = {
    "neumf": (["--model", "NeuMF"],
              ["--model", "neumf", "--no-pretrain", "--emb-dim", "64", "--mlp-layers", "128,128,64,32",
               "--dropout", "0.1"]),
    "gmf": (["--model", "NeuMF", "--tag", "GMF", "--set", "mlp_train=False"], ["--model", "gmf", "--emb-dim", "64"]),
    "bpr": (["--model", "BPR"], ["--model", "bpr", "--emb-dim", "64"]),
}


def recbole(python: str, options: list[str], args) -> float:
    cmd = [python, str(HARNESS), *options, "--epochs", str(args.epochs), "--stopping-step", "100", "--quiet",
           "--train-batch-size", str(args.batch_size), "--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=3600)
    result = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
    if proc.returncode or result.get("status") != "ok":
        raise SystemExit(f"{' '.join(cmd)} failed:\n{result.get('error') or proc.stderr[-2000:]}")
    return result["train_s_per_epoch_median"]


def recviz(options: list[str], args) -> float:
    run = train("--dataset", ML100K, *options, "--batch-size", str(args.batch_size), "--epochs", str(args.epochs),
                "--patience", "0", "--threads", str(args.threads))
    return run["epoch_seconds"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recbole-python", default=os.environ.get("RECBOLE_PYTHON", "/tmp/recbole-venv/bin/python"),
                   help="the Python of RecBole's environment (default $RECBOLE_PYTHON or /tmp/recbole-venv)")
    p.add_argument("--models", default=",".join(MODELS), help=f"from {', '.join(MODELS)}")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    models = args.models.split(",")
    print(f"peer: RecBole vs RecViz on {ML100K}, models {models}, {args.rounds} rounds, {args.epochs} epochs, "
          f"batch {args.batch_size}, {args.threads} threads; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at {time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)
    cells = []
    for r in range(args.rounds):
        for model in models:
            theirs, ours = MODELS[model]
            sides = [("recbole", lambda: recbole(args.recbole_python, theirs, args)), ("recviz", lambda: recviz(ours, args))]
            for tool, run in sides if r % 2 == 0 else sides[::-1]:
                seconds = run()
                cells.append({"round": r, "model": model, "tool": tool, "epoch_seconds": round(seconds, 3)})
                print(f"  round {r} {model:6} {tool:8} {seconds:6.2f} s/epoch", flush=True)
    print(f"\n{'model':8} {'RecBole s':>10} {'RecViz s':>9} {'ratio':>6}   (median training epoch over rounds)")
    ratios = {}
    for model in models:
        med = {t: statistics.median(c["epoch_seconds"] for c in cells if c["model"] == model and c["tool"] == t)
               for t in ("recbole", "recviz")}
        ratios[model] = round(med["recbole"] / med["recviz"], 2)
        print(f"{model:8} {med['recbole']:>10.2f} {med['recviz']:>9.2f} {ratios[model]:>5.1f}×")
    print(json.dumps({"peer": {"cells": cells, "ratio": ratios, "batch_size": args.batch_size,
                               "threads": args.threads, "epochs": args.epochs}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
