"""A stored run as one flat row: identity, status and headline numbers, as `recviz runs --json`
and `recviz.runs()` show it."""

from __future__ import annotations


def run_row(run) -> dict:
    """One run for `recviz runs --json`: identity, status, headline numbers."""
    s = run.summary or {}
    metrics = s.get("metrics") or {}
    c = run.config
    return {"id": run.id, "name": run.name, "status": run.status, "model": run.model, "dataset": run.dataset,
            "protocol": run.protocol,
            "protocol_detail": c.protocol_detail,
            "seed": run.seed, "device": run.device,
            "created_at": run.created_at, "finished_at": run.finished_at,
            "HR@10": metrics.get("HR@10"), "NDCG@10": metrics.get("NDCG@10"),
            "epochs_run": s.get("epochs_run"), "best_epoch": s.get("best_epoch"),
            "train_seconds": s.get("train_seconds"), "samples_per_second": s.get("samples_per_second"),
            "error": run.error}
