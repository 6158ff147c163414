"""How long reading an interaction log takes from CSV and from Parquet, through the one reader
path every `--dataset PATH` and `recviz.load(path)` uses (validation and indexing included).

    python benchmarks/load_parquet.py                 # 10M rows, best of 3
    python benchmarks/load_parquet.py --rows 1000000 --repeat 1

It writes a synthetic log (users, items, 1-5 ratings, Unix timestamps; no repeated pairs) once as
CSV and once as Parquet in a temporary folder, checks that both read to the same dataset, and prints
the file sizes, the best read time of each and the ratio. Run it on an otherwise idle machine: the
numbers are wall-clock seconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's recviz


def synthetic_log(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    users, items = max(10, rows // 50), max(10, rows // 200)
    # distinct (user, item) pairs without a hash table the size of the log
    pairs = np.unique(rng.integers(0, users * items, int(rows * 1.02), dtype=np.int64))
    pairs = rng.permutation(pairs)[:rows]
    return pd.DataFrame({"user_id": pairs // items, "item_id": pairs % items,
                         "rating": rng.integers(1, 6, len(pairs)).astype(np.float64),
                         "timestamp": rng.integers(1_500_000_000, 1_700_000_000, len(pairs))})


def best_time(path: Path, repeat: int):
    from recviz.data.load import load

    best, data = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        data = load(str(path))
        best = min(best, time.perf_counter() - start)
    return best, data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="reads of each file; the best counts")
    parser.add_argument("--dir", help="where to write the files (default: a temporary folder)")
    args = parser.parse_args()
    scratch = [] if args.dir else [tempfile.mkdtemp(prefix="recviz-load-")]
    if not os.environ.get("RECVIZ_HOME"):  # never touch a real ~/.recviz
        scratch.append(tempfile.mkdtemp(prefix="recviz-home-"))
        os.environ["RECVIZ_HOME"] = scratch[-1]
    folder = Path(args.dir or scratch[0])
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return run(args, folder)
    finally:
        for path in scratch:
            shutil.rmtree(path, ignore_errors=True)


def run(args, folder: Path) -> int:
    log = synthetic_log(args.rows)
    csv, parquet = folder / "log.csv", folder / "log.parquet"
    log.to_csv(csv, index=False)
    log.to_parquet(parquet, index=False)
    del log
    t_csv, from_csv = best_time(csv, args.repeat)
    t_parquet, from_parquet = best_time(parquet, args.repeat)
    from recviz.data.saved import fingerprint

    same = fingerprint(from_csv) == fingerprint(from_parquet)
    print(f"{len(from_csv):,} interactions, {from_csv.n_users:,} users × {from_csv.n_items:,} items; "
          f"best of {args.repeat}; same dataset: {same}")
    print(f"  CSV      {csv.stat().st_size / 1e6:8.1f} MB  {t_csv:7.2f} s")
    print(f"  Parquet  {parquet.stat().st_size / 1e6:8.1f} MB  {t_parquet:7.2f} s  ({t_csv / t_parquet:.1f}× faster)")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
