"""The training phases of `benchmarks/scale.py` (gmf, mbnmf): `training.fit` on the run's split,
stopped after `--batches` batches through the loop's own `should_stop` poll, timed per batch.

- The run's split is drawn (or found) first in a process of its own (`scale.py --child split-MODEL`),
  so that the phase's peak memory is training's: the split's own cost is the split phases' row.
- An epoch is built chunk by chunk (`recviz.training.chunks`); the phase times the first chunk's
  draw and extrapolates the epoch from the chunks' setup and the measured batches, labelled as such.
- Rates are per wall second and per CPU second of the training thread (`time.thread_time`: with
  one torch thread the steps run on it), the second being what a shared machine's load distorts
  least.
- gmf also times GMF on MovieLens-100K (`../shared/data/ml-100k` beside the repository, or
  $RECVIZ_ML100K), in the same process with the same batch size, threads and batches, and reports
  both rates and their ratio — the acceptance's "within 25 % of its ml-100k figure, run in the same
  command". Without the dataset the row says so and gives the large log's rate alone.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

ML100K = Path(os.environ.get("RECVIZ_ML100K", Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"))
MODELS = {"gmf": {}, "mbnmf": {"target": "buy"}}  # phase → the run's config beyond model, protocol, batch size


def config_for(args, model: str, dataset: str):
    from recviz.config import RunConfig

    return RunConfig(dataset=dataset, seed=args.seed, model=model, protocol="loo", candidates=100,
                     options={"batch_size": args.batch_size}, **MODELS.get(model, {}))


def draw_split(args, model: str, dataset: str) -> dict:
    """The child behind `--child split-MODEL`: the run's split drawn, or found in the store."""
    from recviz.experiments.experiment import prepare_data, prepare_split

    config = config_for(args, model, dataset)
    prepare_split(config, prepare_data(config))
    return {"work_s": 0.0}


def split_first(args, model: str) -> float:
    """Draw (or find) the run's split in a fresh process; its seconds."""
    start = time.perf_counter()
    cmd = [sys.executable, str(Path(__file__).with_name("scale.py")), "--child", f"split-{model}", "--rows",
           str(args.rows), "--seed", str(args.seed), "--out", str(args.out), "--batch-size", str(args.batch_size)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def timed_batches(args, model: str, dataset: str) -> dict:
    """Train `model` on `dataset` for `args.batches` batches (or one whole epoch, when shorter) and
    time it: samples/s after the first POLL_EVERY batches, the first chunk's setup, the epoch
    extrapolated."""
    import dataclasses

    from recviz.data.training_samples import EpochDraw
    from recviz.errors import Cancelled
    from recviz.experiments.experiment import build_model, prepare_data, prepare_split
    from recviz.training import chunks, loop

    config = config_for(args, model, dataset)
    start = time.perf_counter()
    data = prepare_data(config)
    split = prepare_split(config, data)
    del data
    ready = time.perf_counter()
    model_ = build_model(config)
    drawn = {"draws": 0, "draw_s": 0.0}
    plan_of = model_.plan

    def plan(phase, split_):  # the model's own plan, each draw timed, the epoch's size noted
        p = plan_of(phase, split_)
        epoch = p.draw

        def fn(rng, units):
            t = time.perf_counter()
            arrays = epoch(rng, units)
            drawn["draws"] += 1
            drawn.setdefault("first_draw_s", time.perf_counter() - t)
            return arrays
        per_chunk = chunks.chunk_units(epoch.rows_per_unit, p.batch_size)
        drawn.update(samples=epoch.samples, chunks=1 if epoch.samples <= chunks.EPOCH_CHUNK
                     else math.ceil(epoch.units / per_chunk))
        return dataclasses.replace(p, draw=EpochDraw(epoch.units, epoch.rows_per_unit, fn))

    model_.plan = plan
    # the epoch's order of positives is drawn once per epoch, before its first chunk: timed on its
    # own, so that it is not counted again for every chunk of the extrapolated epoch
    order_of = loop.unit_order

    def unit_order(units, generator):
        t = time.perf_counter()
        order = order_of(units, generator)
        drawn["order_s"] = drawn.get("order_s", 0.0) + time.perf_counter() - t
        return order

    loop.unit_order = unit_order
    polls, done = [], []  # polls: (time, epochs finished so far, this thread's CPU seconds)
    stop_at = 1 + math.ceil(args.batches / loop.POLL_EVERY)  # the epoch's first poll comes before any batch

    def should_stop() -> bool:
        polls.append((time.perf_counter(), len(done), time.thread_time()))
        return len(polls) >= stop_at or len(done) >= 1  # or a whole (short) epoch is done

    try:
        loop.fit(model_, split, on_epoch=done.append, should_stop=should_stop)
        raise RuntimeError("training ended before the batches were done")
    except Cancelled:
        pass
    finally:
        loop.unit_order = order_of
    import torch

    threads = torch.get_num_threads()
    epoch_batches = math.ceil(drawn["samples"] / args.batch_size)
    out = {"samples_per_s": None, "epoch_samples": drawn["samples"], "threads": threads, "load_s": ready - start,
           "ready": ready, "chunks": drawn["chunks"]}
    if done:  # the first epoch was shorter than the batches asked for: measured whole
        epoch = polls[-1][0] - polls[0][0]
        return {**out, "samples_per_s": drawn["samples"] / epoch, "epoch_s": epoch, "end": polls[-1][0],
                "batches": epoch_batches, "whole": True}
    within = [t for t, _, _ in polls[1:]]  # after 50, 100, … batches
    batches = len(within) * loop.POLL_EVERY
    per_batch = (within[-1] - within[0]) / (batches - loop.POLL_EVERY)  # after the first POLL_EVERY: warm
    cpu_per_batch = (polls[-1][2] - polls[1][2]) / (batches - loop.POLL_EVERY)
    order_s = drawn.get("order_s", 0.0)  # once an epoch
    setup = within[0] - polls[0][0] - loop.POLL_EVERY * per_batch - order_s  # the first chunk: draw, copy, shuffle
    return {**out, "samples_per_s": args.batch_size / per_batch, "setup_s": setup, "end": within[-1],
            "samples_per_cpu_s": args.batch_size / cpu_per_batch, "order_s": order_s,
            "epoch_s_extrapolated": order_s + drawn["chunks"] * setup + epoch_batches * per_batch, "batches": batches,
            "epoch_batches": epoch_batches, "first_draw_s": drawn.get("first_draw_s", 0.0), "whole": False}


def describe(t: dict, batch_size: int) -> str:
    if t["whole"]:
        return (f"a whole epoch measured ({t['epoch_samples']:,} samples, {t['batches']:,} batches of {batch_size}, "
                f"with its validation): {t['epoch_s']:,.1f} s, {t['samples_per_s']:,.0f} samples/s")
    return (f"{t['batches']} batches of {batch_size}: {t['samples_per_s']:,.0f} samples/s "
            f"({t['samples_per_cpu_s']:,.0f} per CPU second of the training thread); epoch of "
            f"{t['epoch_samples']:,} samples in {t['chunks']} chunk(s) ≈ {t['epoch_s_extrapolated']:,.0f} s "
            f"EXTRAPOLATED (the epoch's order {t['order_s']:.1f} s + per chunk setup {t['setup_s']:.1f} s incl. draw "
            f"{t['first_draw_s']:.1f} s + {t['epoch_batches']:,} batches, no validation)")


def batches_phase(args, model: str, name: str, base_rss) -> dict:
    """A training phase's row: the large log's rate (and for gmf, ml-100k's beside it)."""
    split_s = split_first(args, model)
    base = base_rss()
    t = timed_batches(args, model, name)
    row = {"base_rss": base, "work_s": t["end"] - t["ready"], "samples_per_s": round(t["samples_per_s"]),
           "epoch_samples": t["epoch_samples"], "chunks": t["chunks"]}
    row["epoch_s" if t["whole"] else "epoch_s_extrapolated"] = round(t.get("epoch_s", t.get("epoch_s_extrapolated")), 1)
    note = (f"{describe(t, args.batch_size)} on {t['threads']} torch thread(s); split drawn or found first in its "
            f"own process ({split_s:.1f} s); load + split {t['load_s']:.1f} s")
    if model == "gmf":
        note += "; " + _reference(args, model, t, row)
    row["note"] = note
    return row


def _reference(args, model: str, big: dict, row: dict) -> str:
    """GMF on ml-100k with the same batch size, threads and batches, after the large log's run."""
    if not (ML100K / "u.data").exists():
        return f"ml-100k not found at {ML100K} (set RECVIZ_ML100K): no reference rate, no ratio"
    ref = timed_batches(args, model, str(ML100K))
    rate = ref["samples_per_s"]
    row.update(ml100k_samples_per_s=round(rate), ratio_to_ml100k=round(big["samples_per_s"] / rate, 3))
    note = (f"ml-100k in the same process: {describe(ref, args.batch_size)} on {ref['threads']} torch thread(s); "
            f"ratio {big['samples_per_s'] / rate:.2f} of ml-100k's rate")
    if not (ref["whole"] or big["whole"]):  # CPU seconds: what a busy machine's wall clock hides
        cpu = big["samples_per_cpu_s"] / ref["samples_per_cpu_s"]
        row.update(ml100k_samples_per_cpu_s=round(ref["samples_per_cpu_s"]), ratio_to_ml100k_cpu=round(cpu, 3))
        note += f" ({cpu:.2f} per CPU second)"
    return note
