"""benchmarks/taobao_like.py makes a log of Taobao's shape with something to learn, the same for the
same seed; benchmarks/scale.py runs every phase on it in its own process and reports each one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks import taobao_like

ROOT = Path(__file__).resolve().parents[1]


def test_the_log_has_taobaos_shape_and_planted_factors(tmp_path):
    rows = 200_000
    facts = taobao_like.write_parquet(tmp_path / "log.parquet", rows, seed=3, chunk_rows=30_000)
    log = pd.read_parquet(tmp_path / "log.parquet")
    assert len(log) == facts["rows"] == rows
    assert list(log.columns) == list(taobao_like.COLUMNS)
    assert log["user_id"].nunique() == rows // 100 and log["item_id"].nunique() > 0.8 * rows // 25
    shares = log["behavior_type"].value_counts(normalize=True)
    for name, share in zip(taobao_like.BEHAVIORS, taobao_like.SHARES):
        assert abs(shares[name] - share) < 0.004, (name, shares[name])
    days = (log["timestamp"].max() - log["timestamp"].min()) / 86_400
    assert 8.9 < days <= 9
    per_user = log.groupby("user_id").size()
    assert per_user.min() >= taobao_like.MIN_ROWS and per_user.max() > 10 * per_user.median()  # log-normal
    per_item = log.groupby("item_id").size().sort_values(ascending=False)
    assert per_item.iloc[: len(per_item) // 100].sum() > 0.1 * rows  # the top 1 % of items: a long head
    # every cart/fav/buy follows a click of the same user and item
    clicks = set(zip(log.user_id[log.behavior_type == "pv"], log.item_id[log.behavior_type == "pv"]))
    rest = log[log.behavior_type != "pv"]
    assert all(pair in clicks for pair in zip(rest.user_id, rest.item_id))
    # the planted factors: buys agree with them more than carts, carts more than clicks
    w = taobao_like.world(rows, seed=3)
    user = pd.Index(w.user_raw).get_indexer(log["user_id"])
    item = pd.Index(w.item_raw).get_indexer(log["item_id"])
    affinity = np.einsum("nf,nf->n", w.user_f[user], w.item_f[item])
    mean = pd.Series(affinity).groupby(log["behavior_type"].to_numpy()).mean()
    assert mean["buy"] > mean["cart"] > mean["pv"] > 0.3, mean.to_dict()


def test_the_same_seed_writes_the_same_log(tmp_path):
    a = taobao_like.write_parquet(tmp_path / "a.parquet", 20_000, seed=1)
    b = taobao_like.write_parquet(tmp_path / "b.parquet", 20_000, seed=1)
    c = taobao_like.write_parquet(tmp_path / "c.parquet", 20_000, seed=2)
    assert a == b and a != c
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet"))


@pytest.mark.slow  # eleven processes, each importing torch
def test_every_phase_runs_in_its_own_process_and_says_how_it_went(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--rows", "30000", "--out",
                           str(tmp_path), "--batches", "100", "--batch-size", "256"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    phases = {row["phase"]: row for row in report["phases"]}
    assert list(phases) == list(__import__("benchmarks.scale", fromlist=["PHASES"]).PHASES)
    for row in phases.values():
        assert row["ok"] and row["peak_rss"] > 50 * 2**20 and row["wall_s"] > 0, row
    assert report["log_arrays_bytes"] > 0 and phases["import"]["x_arrays"] > 0
    assert phases["gmf"]["samples_per_s"] > 0 and "mbnmf" in phases
    assert "HR@10" in phases["itempop"]["note"] and report["load_before"]
    assert (tmp_path / "scale-30000.json").exists() and "peak RSS" in (tmp_path / "scale-30000.txt").read_text()
    # a phase that cannot run says why in its row; the rest of the report still comes
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--rows", "30000", "--out",
                           str(tmp_path), "--phases", "import,itempop", "--max-rss-gb", "0.01"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    rows = json.loads(proc.stdout.strip().splitlines()[-1])["phases"]
    assert proc.returncode == 1
    assert "stopped above" in rows[0]["note"] and "needs import" in rows[1]["note"]
