"""`recviz bench`: every model with the settings a user gets, over several seeds, on one dataset.

Each model × seed (× batch size) is trained exactly as `recviz train --model M --seed S` trains it:
the model's declared defaults (the best settings known, chosen on validation), or with `--preset
paper` (or an entry `MODEL:PRESET`) its paper's settings. The run settings are RunConfig's
defaults — leave-one-out, 100 sampled candidates, validation = the interaction before test — unless
`valid="random"` (`--valid random`: one random earlier interaction per user, as the NCF and DMF
papers tuned). Test HR/NDCG@{5,10,20} are taken at the best validation epoch.

`peak_test=True` (`--peak-test`) also evaluates test after every epoch and reports the epoch where
test HR@10 peaked — how the NCF and DMF authors' code reports ("best iteration"). It is optimistic
by construction, never used to choose anything, and kept apart from the results: it measures how
much of a paper's number comes from choosing the epoch on test.

Runs go through `experiment.run` directly and are not stored in the run store unless `store=True`.
The JSON holds every row and the means over seeds; it is rewritten after each run, so a bench that
is interrupted keeps what it finished.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from recviz.config import RunConfig
from recviz.errors import RecvizError
from recviz.files import write_json
from recviz.models import registry

DEFAULT_MODELS = ("itempop", "itemknn", "gmf", "mlp", "neumf", "mf", "bpr", "eals", "dmf", "einmf")
KS = (5, 10, 20)
METRICS = [f"{m}@{k}" for k in KS for m in ("HR", "NDCG")]
PEAK = ("peak_test_HR@10", "peak_test_NDCG@10", "peak_test_epoch")


def parse_entry(entry: str, preset: str | None = None) -> tuple[str, str | None]:
    """"dmf" or "dmf:paper" → (model, preset); a bench-wide `preset` applies to models that declare
    it. Unknown models and presets are errors naming what exists."""
    model, _, own = entry.partition(":")
    spec = registry.get(model)
    chosen = own or (preset if preset in spec.presets else None)
    spec.preset(chosen)  # raises for a preset the model does not declare
    return model, chosen


def bench_config(entry: str, dataset: str, seed: int, batch_size: int | None = None,
                 epochs: int | None = None, device: str | None = None, threads: int | None = None,
                 valid: str | None = None, preset: str | None = None) -> RunConfig:
    """What `recviz train --dataset D --model M [--preset P] --seed S` would train, with the bench's
    batch size / epochs where the model has them."""
    model, chosen = parse_entry(entry, preset)
    spec = registry.get(model)
    run = {k: v for k, v in (("device", device), ("threads", threads), ("valid", valid)) if v is not None}
    options = {k: v for k, v in (("batch_size", batch_size), ("epochs", epochs)) if v and spec.has(k)}
    return RunConfig.build(dataset=dataset, seed=seed, model=model, preset=chosen, **run, **options)


def settings(entries, preset: str | None = None) -> dict:
    """What each bench entry trained with, for the JSON (and the README)."""
    out = {}
    for entry in entries:
        model, chosen = parse_entry(entry, preset)
        out[entry] = {"model": model, "preset": chosen, "options": registry.get(model).resolve({}, chosen)}
    return out


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def row_of(name: str, config: RunConfig, result, seconds: float) -> dict:
    """One bench row from a RunResult. Speeds are medians over the epochs of the model's own
    phase (NeuMF's, after pre-training); one-pass baselines have none."""
    from recviz.experiments.record import main_phase

    epochs = main_phase(result.history)
    train_metrics = result.test.metrics
    return {
        "model": name, "seed": config.seed, "batch_size": config.option("batch_size"),
        **{m: train_metrics.get(m) for m in METRICS},
        "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
        "seconds_per_epoch": _median([h.seconds for h in epochs]),
        "eval_seconds": _median([h.eval_seconds for h in epochs]),
        "samples_per_second": _median([h.samples_per_second for h in epochs]),
        "train_seconds": round(result.train_seconds, 3),
        "total_seconds": round(seconds, 3),
        "config": config.to_dict(),
        **peak_on_test(epochs),
    }


def peak_on_test(epochs: list) -> dict:
    """The epoch with the highest observed test HR@10 (ties: the earlier one) and its HR@10 and
    NDCG@10, as the authors' code prints "Best Iteration"; {} when test was not observed."""
    seen = [h for h in epochs if h.test_observed]
    if not seen:
        return {}
    best = max(seen, key=lambda h: h.test_observed["HR@10"])  # max keeps the first of ties
    return {"peak_test_HR@10": best.test_observed["HR@10"],
            "peak_test_NDCG@10": best.test_observed["NDCG@10"], "peak_test_epoch": best.epoch}


def means(rows: list[dict]) -> list[dict]:
    """Mean over seeds per (model, batch size), plus the std of HR@10."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["batch_size"]), []).append(r)
    out = []
    for (name, batch), rs in groups.items():
        mean = {"model": name, "batch_size": batch, "seeds": len(rs)}
        for key in (*METRICS, "epochs_run", "best_epoch", "seconds_per_epoch", "eval_seconds",
                    "samples_per_second", "train_seconds", *PEAK):
            if key in PEAK and not all(key in r for r in rs):
                continue
            vals = [r[key] for r in rs if r[key] is not None]
            mean[key] = statistics.fmean(vals) if vals else None
        hr = [r["HR@10"] for r in rs]
        mean["HR@10_std"] = statistics.stdev(hr) if len(hr) > 1 else 0.0
        out.append(mean)
    return out


def _fmt(v, spec: str) -> str:
    if v is None:
        width = "".join(ch for ch in spec.split(".")[0].split(",")[0] if ch.isdigit())
        return "—".rjust(int(width or 1))
    return format(v, spec)


def table(mean_rows: list[dict]) -> str:
    head = (f"{'model':15} {'batch':>5} {'seeds':>5}  {'HR@5':>6} {'HR@10':>14} {'HR@20':>6}  "
            f"{'NDCG@5':>6} {'NDCG@10':>7} {'NDCG@20':>7}  {'epochs':>6} {'best':>5} "
            f"{'s/epoch':>7} {'samples/s':>9} {'train s':>8}")
    lines = [head, "-" * len(head)]
    for m in mean_rows:
        hr10 = f"{m['HR@10']:.4f} ± {m['HR@10_std']:.4f}"
        lines.append(
            f"{m['model']:15} {m['batch_size'] or '—':>5} "
            f"{m['seeds']:>5}  {m['HR@5']:6.4f} {hr10:>14} {m['HR@20']:6.4f}  "
            f"{m['NDCG@5']:6.4f} {m['NDCG@10']:7.4f} {m['NDCG@20']:7.4f}  {m['epochs_run']:6.1f} "
            f"{m['best_epoch']:5.1f} {_fmt(m['seconds_per_epoch'], '7.2f')} "
            f"{_fmt(m['samples_per_second'], '9,.0f')} {m['train_seconds']:8.1f}")
    return "\n".join(lines)


def peak_table(mean_rows: list[dict]) -> str:
    """Test metrics at the epoch that was best *on test* next to the real result (at the best
    validation epoch), for the rows that observed test."""
    rows = [m for m in mean_rows if "peak_test_HR@10" in m]
    if not rows:
        return ""
    head = (f"{'model':15} {'batch':>5}  {'HR@10':>6} {'NDCG@10':>7}  {'peak HR@10':>10} {'its NDCG@10':>11} "
            f"{'peak epoch':>10}  {'best valid epoch':>16}")
    lines = ["epoch chosen on test, as the papers' code reports (optimistic; not a result):", head,
             "-" * len(head)]
    for m in rows:
        lines.append(f"{m['model']:15} {m['batch_size'] or '—':>5}  {m['HR@10']:6.4f} {m['NDCG@10']:7.4f}  "
                     f"{m['peak_test_HR@10']:10.4f} {m['peak_test_NDCG@10']:11.4f} "
                     f"{m['peak_test_epoch']:10.1f}  {m['best_epoch']:16.1f}")
    return "\n".join(lines)


def run_bench(dataset: str, models=DEFAULT_MODELS, seeds=(0, 1, 2), batch_sizes=(None,),
              epochs: int | None = None, out: str | Path | None = None, store: bool = False,
              device: str | None = None, threads: int | None = None, valid: str | None = None,
              preset: str | None = None, peak_test: bool = False, log=None) -> dict:
    """Train everything, write `out` after each run, return {"rows", "means", ...}. A batch size
    of None is each model's own default."""
    from recviz.experiments import experiment
    from recviz.experiments.prepared import prepare_data

    if peak_test and store:  # a stored run's history is what the app shows: keep test out of it
        raise RecvizError("--peak-test cannot be combined with --store",
                          fix="run the bench twice: once with --store, once with --peak-test")
    log = log or (lambda text: print(text, file=sys.stderr, flush=True))
    for entry in models:
        parse_entry(entry, preset)  # every name and preset checked before anything trains
    base = bench_config(models[0], dataset, seeds[0], valid=valid)
    data = prepare_data(base)
    stats = data.stats()
    log(f"bench on {dataset}: {stats['users']:,} users × {stats['items']:,} items, "
        f"{stats['interactions']:,} interactions")
    report = {"dataset": dataset, "data": {k: stats[k] for k in ("users", "items", "interactions")},
              "protocol": base.protocol_detail,
              "settings": settings(models, preset), "peak_test": peak_test, "rows": [], "means": [],
              "started_at": time.time()}
    for entry in models:
        iterative = registry.get(parse_entry(entry)[0]).iterative
        for batch in (batch_sizes if iterative else batch_sizes[:1]):
            for seed in seeds:
                config = bench_config(entry, dataset, seed, batch, epochs, device, threads, valid, preset)
                start = time.perf_counter()
                if store:
                    from recviz.experiments import record

                    _, result, _ = record.train_here(config, data=data)
                else:
                    result = experiment.run(config, data=data, observe_test=peak_test)
                row = row_of(entry, config, result, time.perf_counter() - start)
                report["rows"].append(row)
                report["means"] = means(report["rows"])
                log(f"  {entry:15} batch {row['batch_size'] or '—':<5} seed {seed}: HR@10 {row['HR@10']:.4f} "
                    f"NDCG@10 {row['NDCG@10']:.4f}  {row['epochs_run']} epochs (best {row['best_epoch']})"
                    f"  {row['total_seconds']:.1f} s")
                if out:
                    _write(out, report)
    report["finished_at"] = time.time()
    if out:
        _write(out, report)
    return report


def _write(path, report: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, report)
