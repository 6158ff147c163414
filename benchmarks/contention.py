"""How much a run slows down beside other work: a default-settings `recviz train` on ml-100k, alone
and beside one and two CPU-bound processes (`python -c "while True: pass"`), in rounds that
alternate the three conditions so that a drift of the machine touches each alike.

    python benchmarks/contention.py                         # NeuMF, 2 epochs, 2 rounds
    python benchmarks/contention.py --model gmf --rounds 3 --busy 0,1,2

Each cell runs the CLI exactly as a user types it (`recviz train --dataset ML100K --model M --epochs
E --patience 0 --json`, every other setting its default: the thread policy under test included) in
a fresh data directory, and reads the run's median training epoch (its main phase's epochs as
stored: samples / the median training speed, the training pass only) and the thread count it
recorded. The table gives each condition's median over rounds and its ratio to the first condition
(alone); one JSON line follows. Run it on an otherwise idle machine: the "alone" cells are the baseline.
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
from cli_run import ML100K, train  # noqa: E402

SPIN = "while True: pass"


def cell(model: str, epochs: int, busy: int, extra: list[str]) -> dict:
    """The run beside `busy` spinning processes (started first, killed after)."""
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(busy)]
    try:
        time.sleep(0.5 if busy else 0)  # let them reach the cores
        run = train("--dataset", ML100K, "--model", model, "--epochs", str(epochs), "--patience", "0", *extra)
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    return {"busy": busy, "epoch_seconds": run["epoch_seconds"], "samples_per_second": run["samples_per_second"],
            "threads": run.get("threads")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="neumf")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--busy", default="0,1,2", help="numbers of spinning processes beside the run (0 = alone)")
    p.add_argument("extra", nargs="*", help="more `recviz train` options after --, e.g. -- --threads 2")
    args = p.parse_args(argv)
    conditions = [int(b) for b in args.busy.split(",")]
    print(f"contention: {args.model} on {ML100K}, {args.epochs} epochs, {args.rounds} rounds, busy {conditions}; "
          f"{os.cpu_count()} CPUs; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"at {time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)
    cells: list[dict] = []
    for r in range(args.rounds):
        order = conditions if r % 2 == 0 else conditions[::-1]
        for busy in order:
            got = cell(args.model, args.epochs, busy, args.extra)
            cells.append({"round": r, **got})
            print(f"  round {r} beside {busy}: {got['epoch_seconds']:.2f} s/epoch, "
                  f"{got['samples_per_second']:,.0f} samples/s, {got['threads']} thread(s)", flush=True)
    seconds = {b: statistics.median(c["epoch_seconds"] for c in cells if c["busy"] == b) for b in conditions}
    base = seconds[conditions[0]]
    print(f"\n{'beside':>8} {'s/epoch':>8} {'× alone':>8}   (median over rounds)")
    for b in conditions:
        print(f"{b:>8} {seconds[b]:>8.2f} {seconds[b] / base:>8.2f}")
    print(json.dumps({"contention": {"model": args.model, "epochs": args.epochs, "cells": cells,
                                     "ratio": {b: round(seconds[b] / base, 3) for b in conditions}}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
