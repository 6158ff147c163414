"""How RecViz copes with a real-sized log: every step a person takes, on a Taobao-shaped log of
`--rows` rows, each step in a fresh process so that its peak memory is its own.

    python benchmarks/scale.py --rows 1000000
    python benchmarks/scale.py --rows 10M --out /tmp/scale --phases generate,import,split-loo,itempop

The log comes from `benchmarks/taobao_like.py` (users ≈ rows/100, items ≈ rows/25, pv/cart/fav/buy,
9 days, planted factors), written as Parquet in bounded memory. Then each phase runs the code the
CLI and the app run — never a re-implementation (the phases: `benchmarks/scale_phases.py`):

| phase       | what runs                                                                                 |
|-------------|-------------------------------------------------------------------------------------------|
| generate    | the Parquet log (reused when `--out` already holds it for these rows and seed)             |
| import      | `recviz import LOG --name scale --dedup last --replace` (`cli.main`; saved as npz, as the app saves an upload) |
| inspect     | `recviz inspect --dataset scale --json`                                                    |
| split-loo   | the run's split as `experiment.prepare_split` draws it: leave-one-out, 100 candidates      |
| split-ratio | the same, 80/10/10 ratio split                                                              |
| itempop     | `experiment.run` of ItemPop: fit, then validation and test evaluation (split reloaded)      |
| itemknn     | the same for ItemKNN                                                                        |
| gmf         | GMF through `training.fit`, stopped after `--batches` batches of `--batch-size`: samples/s, the epoch time extrapolated from it, and the same on ml-100k in the same process with their ratio (`benchmarks/scale_training.py`) |
| mbnmf       | the same for multi-behaviour NeuMF with target buy (no ml-100k reference)                   |
| topn        | the Recommendations page for one user (`analysis.runview.RunView`, what the page caches per run): the first view (load, split, ItemPop fit, the run's index, a first user's list) in the note, then `work s` = one rerun's work for another user whose list is not stored (held-out rows, a history page, the list made on demand, its table) |
| data-page   | the Data page: the dataset loaded as the page loads it, `stats()`, `analysis.dataset` summaries and `recviz.charts` figures serialised |

Each phase's row gives its wall time (the whole process: start, imports, loading the data, the
work), the time of its own work (`work s`: what the acceptance limits, e.g. fit + evaluation), its
peak resident memory (`os.wait4`'s ru_maxrss of that process), that peak above what the process held
after its imports (`above base`), and that as a multiple of the imported log's final arrays. A phase
that fails, runs past `--timeout` or grows past `--max-rss-gb` (killed, so a shared machine is not
starved) says so in its row; the others still run. The table is printed, then one JSON line, and both
are written to OUT/scale-ROWS.json and .txt. Wall times depend on the machine's load: the load
average before and after is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's recviz and benchmarks

from benchmarks.scale_phases import PHASE_FUNCS, _mb

PHASES = ("generate", "import", "inspect", "split-loo", "split-ratio", "itempop", "itemknn", "gmf", "mbnmf",
          "topn", "data-page")
NEEDS = {"import": "generate", **{p: "import" for p in PHASES[2:]}}
RESULT = "SCALE-RESULT "


# ---- the parent: one child process per phase ------------------------------------------------------
def rows_arg(text: str) -> int:
    text = text.strip().upper().replace("_", "")
    scale = {"K": 10**3, "M": 10**6, "G": 10**9}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=rows_arg, required=True, help="rows of the log (1000000, 1M, 1e7)")
    p.add_argument("--phases", default="all", help=f"comma-separated, from: {', '.join(PHASES)} (default all)")
    p.add_argument("--out", help="folder for the log, the data directory and the results (default: a temporary "
                                 "folder, removed at the end)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=1800, help="seconds a phase may take (default 1800)")
    p.add_argument("--max-rss-gb", type=float, default=12.0, help="a phase above this resident memory is "
                                                                   "stopped (default 12, the acceptance bound)")
    p.add_argument("--batches", type=int, default=200, help="batches GMF and mbnmf train (default 200)")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.phases = list(PHASES) if args.phases == "all" else [x.strip() for x in args.phases.split(",") if x.strip()]
    unknown = [x for x in args.phases if x not in PHASES]
    if unknown:
        p.error(f"unknown phase(s) {unknown}; phases: {', '.join(PHASES)}")
    if args.rows < 1000:
        p.error("--rows must be at least 1000")
    from recviz.training.loop import (
        POLL_EVERY,  # the rate is timed from the first poll on
    )

    if args.batches < 2 * POLL_EVERY:
        p.error(f"--batches must be at least {2 * POLL_EVERY}: the rate is timed between polls every {POLL_EVERY} batches")
    return args


def paths(args) -> dict:
    root = Path(args.out)
    return {"root": root, "log": root / f"log-{args.rows}-{args.seed}.parquet",
            "facts": root / f"log-{args.rows}-{args.seed}.json", "home": root / f"home-{args.rows}-{args.seed}"}


def main(argv=None) -> int:
    args = parse(argv)
    if args.child:
        return child(args)
    scratch = None
    if not args.out:
        scratch = args.out = tempfile.mkdtemp(prefix="recviz-scale-")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    try:
        return parent(args)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def parent(args) -> int:
    where = paths(args)
    started = {"load": load_average(), "at": time.strftime("%Y-%m-%d %H:%M:%S")}
    print(f"scale benchmark: {args.rows:,} rows, seed {args.seed}, phases {', '.join(args.phases)}; "
          f"{os.cpu_count()} CPUs; load average {started['load']} at {started['at']}", flush=True)
    rows, failed = [], set()
    arrays = None
    for phase in args.phases:
        need = NEEDS.get(phase)
        if need in failed:
            row = {"phase": phase, "ok": False, "note": f"not run: it needs {need}, which did not finish"}
        else:
            row = run_child(phase, args, where)
        if not row["ok"]:
            failed.add(phase)
        if phase == "import" and row["ok"]:
            arrays = row.get("arrays_bytes")
        elif arrays is None and (where["home"] / "arrays.json").exists():  # imported by an earlier run
            arrays = json.loads((where["home"] / "arrays.json").read_text())["bytes"]
        if arrays and row.get("above_base") is not None:
            row["x_arrays"] = round(row["above_base"] / arrays, 2)
        rows.append(row)
        print(format_row(row), flush=True)
    ended = load_average()
    report = {"rows": args.rows, "seed": args.seed, "cpus": os.cpu_count(), "started": started["at"],
              "load_before": started["load"], "load_after": ended, "log_arrays_bytes": arrays,
              "batches": args.batches, "batch_size": args.batch_size, "phases": rows}
    table = format_table(rows)
    text = (f"{args.rows:,} rows (seed {args.seed}), {os.cpu_count()} CPUs, load average {started['load']} before, "
            f"{ended} after ({started['at']})\n{table}")
    print("\n" + text)
    print(json.dumps(report))
    from recviz.files import write_atomic, write_json

    write_json(Path(args.out) / f"scale-{args.rows}.json", report, indent=1)
    write_atomic(Path(args.out) / f"scale-{args.rows}.txt", text + "\n")
    return 0 if not failed else 1


def run_child(phase: str, args, where: dict) -> dict:
    """Run one phase in a fresh Python, watching its memory; its row."""
    log_dir = Path(args.out) / "logs"
    log_dir.mkdir(exist_ok=True)
    out_path = log_dir / f"{phase}-{args.rows}.log"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", phase, "--rows", str(args.rows),
           "--seed", str(args.seed), "--out", str(args.out), "--batches", str(args.batches),
           "--batch-size", str(args.batch_size)]
    env = {**os.environ, "RECVIZ_HOME": str(where["home"]), "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    limit = int(args.max_rss_gb * 2**30)
    stopped = None
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        elapsed = time.perf_counter() - start
        if stopped is None and elapsed > args.timeout:
            stopped = f"stopped after {args.timeout:.0f} s (--timeout)"
        elif stopped is None and _rss(proc.pid) > limit:
            stopped = f"stopped above {args.max_rss_gb:g} GB resident (--max-rss-gb)"
        if stopped and proc.returncode is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.returncode = -9
        time.sleep(0.1)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    text = out_path.read_text(errors="replace")
    found = [json.loads(line[len(RESULT):]) for line in text.splitlines() if line.startswith(RESULT)]
    row = {"phase": phase, "wall_s": round(wall, 1), "peak_rss": usage.ru_maxrss * 1024, "ok": False}
    if found:
        row.update(found[-1])
        row["above_base"] = row["peak_rss"] - row.pop("base_rss")
    if stopped:
        row.update(ok=False, note=stopped)
    elif proc.returncode != 0 and not found:
        tail = [ln for ln in text.strip().splitlines() if ln.strip()][-1:] or ["no output"]
        why = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
        row["note"] = f"failed ({why}): {tail[0][:160]} (log: {out_path})"
    return row


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def format_row(row: dict) -> str:
    work = f"{row['work_s']:.1f}" if row.get("work_s") is not None else ""
    return (f"{row['phase']:<12} {row.get('wall_s', ''):>8} {work:>8} {_mb(row.get('peak_rss')):>10} "
            f"{_mb(row.get('above_base')):>10} {row.get('x_arrays', ''):>6}  {row.get('note', '')}")


def format_table(rows: list[dict]) -> str:
    head = f"{'phase':<12} {'wall s':>8} {'work s':>8} {'peak RSS':>10} {'above base':>10} {'×arrays':>6}  note"
    return "\n".join([head, "-" * len(head)] + [format_row(r) for r in rows])


# ---- the child: one phase ------------------------------------------------------------------------
def child(args) -> int:
    where = paths(args)
    phase = args.child
    import numpy  # noqa: F401 — what every phase imports counts as its base
    import pandas  # noqa: F401

    if phase != "generate":  # RecViz's modules (torch with the training loop), so that the base holds them
        import pyarrow.compute
        import pyarrow.parquet  # noqa: F401

        import recviz.analysis.dataset
        import recviz.cli
        import recviz.commands.data
        import recviz.data.formats.detect
        import recviz.experiments.experiment  # noqa: F401

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result = {"ok": True}
    try:
        result.update(PHASE_FUNCS[phase](args, where))
    except Exception as exc:  # noqa: BLE001 — the row says what went wrong
        result = {"ok": False, "note": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"}
        import traceback

        traceback.print_exc()
    result["base_rss"] = result.get("base_rss", base_rss)
    print(RESULT + json.dumps(result, default=str), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
