"""How much memory and time a full-ranking evaluation will take, said *before* it is started.

Full ranking scores every (user, item) pair. For a dot-product model (MF, GMF, BPR) that is one
matrix product; for an MLP-scored model (NCF's MLP, NeuMF, …) every pair runs the whole tower, so
MovieLens-1M (6,040 × 3,706 = 22 M pairs) through a 64→32→16→1 tower is ~0.1 TFLOP, and a
100 k-item catalogue is 30× that. The page shows this estimate so nobody starts an evaluation
that needs an hour or more memory than the machine has.

Assumptions (deliberately simple; good to a factor of ~2):
- A multiply-add counts as 2 FLOPs; biases, activations, embedding look-ups and the top-K
  selection are ignored (they are O(width) per pair, not O(width²)).
- MLP tower: input width 2·emb_dim (user and item embeddings concatenated), then `layers`, then
  one output unit. Which option holds the tower, and whether it lists the input width first (NCF's
  `mlp_layers`, "64,32,16" = 64→32→16) or only the hidden widths (EINMF's `hidden_layers`), is
  declared with each model (`ModelSpec.tower`). NeuMF's GMF branch adds ~2·emb_dim per pair:
  negligible next to the tower, so left out.
- Memory is for one batch of `batch_users` users × all items (default: all users in one batch,
  the worst case). For the MLP it is an upper bound that keeps every layer's output of every pair
  alive at once (with autograd off torch frees some earlier, its caching allocator often not).
- `flops_per_second` is sustained throughput, not peak: ~2e10 for a few CPU cores running
  float32 matmuls of these small widths; a GPU is 10–100× more.
"""

from __future__ import annotations

import math


def tower_widths(emb_dim: int, layers, layers_include_input: bool = False) -> list[int]:
    """Every width the tower passes through, input to the single output unit."""
    hidden = [int(w) for w in (layers.split(",") if isinstance(layers, str) else layers) if str(w).strip()]
    start = [] if layers_include_input else [2 * int(emb_dim)]
    return start + hidden + [1]


def full_ranking_cost(n_users: int, n_items: int, *, emb_dim: int, layers, scored_by_mlp: bool,
                      batch_users: int | None = None, bytes_per_float: int = 4,
                      flops_per_second: float = 2e10, layers_include_input: bool = False) -> dict:
    """Estimate one full-ranking pass over all users (see the module docstring for assumptions).

    Returns a dict with:
    - score_matrix_bytes: the whole n_users × n_items score matrix, were it kept at once;
    - peak_activation_bytes: working memory for one batch of users;
    - flops, seconds (= flops / flops_per_second);
    - pairs, batch_users and, for an MLP, the tower `widths` used (for display)."""
    n_users, n_items = int(n_users), int(n_items)
    batch = n_users if batch_users is None else max(1, min(int(batch_users), n_users))
    pairs = n_users * n_items
    out = {"pairs": pairs, "batch_users": batch,
           "score_matrix_bytes": pairs * bytes_per_float}
    if scored_by_mlp:
        widths = tower_widths(emb_dim, layers, layers_include_input)
        per_pair = sum(2 * a * b for a, b in zip(widths[:-1], widths[1:]))
        out["flops"] = pairs * per_pair
        out["peak_activation_bytes"] = batch * n_items * sum(widths) * bytes_per_float
        out["widths"] = widths
    else:
        out["flops"] = pairs * int(emb_dim) * 2
        # the batch's user vectors, all item vectors, and the batch's scores
        floats = batch * emb_dim + n_items * emb_dim + batch * n_items
        out["peak_activation_bytes"] = floats * bytes_per_float
    out["seconds"] = out["flops"] / float(flops_per_second)
    return out


def human(cost: dict, where: str = "this CPU") -> str:
    """One line for the page: '≈ 1.2 GB peak, ≈ 40 s on this CPU'."""
    time = format_duration(cost["seconds"])
    return (f"≈ {format_bytes(cost['peak_activation_bytes'])} peak, "
            f"{'' if time.startswith('<') else '≈ '}{time} on {where}")


def format_bytes(n: float) -> str:
    """Decimal units (1 GB = 10⁹ bytes), two significant figures: it is an estimate."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{_sig2(n / size)} {unit}"
    return f"{int(n)} B"


def format_duration(seconds: float) -> str:
    """'41 s', '12 min', '3.5 h', '2.1 days': the unit a person would say."""
    if seconds is None or not math.isfinite(seconds):
        return "unknown"
    if seconds < 1:
        return "< 1 s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{_sig2(seconds / 3600)} h"
    return f"{_sig2(seconds / 86400)} days"


def _sig2(x: float) -> str:
    return f"{x:.1f}" if x < 10 else f"{x:.0f}"


def evaluation_cost(model: str, options: dict, n_users: int, n_items: int, *,
                    score_cells: int = 1 << 23) -> dict | None:
    """The cost of one full-ranking evaluation of `model` with these options, as recviz runs it
    (users scored in chunks of `score_cells` pairs, see `recviz.eval.protocols`); None for models
    whose declaration names no per-pair MLP (`ModelSpec.tower`: their full ranking is a matrix
    product and never the bottleneck)."""
    from recviz.models import registry

    tower = registry.get(model).tower
    if tower is None:
        return None
    return full_ranking_cost(n_users, n_items, emb_dim=options.get("emb_dim", 0), layers=options[tower.option],
                             scored_by_mlp=True, batch_users=max(1, score_cells // max(1, n_items)),
                             layers_include_input=tower.includes_input)
