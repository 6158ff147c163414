"""How much memory and time a run will take, said *before* it is started: a full-ranking
evaluation's cost (below), and the memory of a whole run (`check_memory`, further down), which
`recviz train` and the Train page check so that a run too big for the machine is refused with a fix
instead of ending in an out-of-memory kill.

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
from dataclasses import dataclass, field, replace

from recviz.errors import RecvizError


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


# ---- memory of a whole run, checked before it starts -------------------------------------------------
# What a run holds at its peak, by part (`training_memory`), against what this machine has free
# (`available_memory`). Rules of thumb, each the arrays the code keeps (float32 weights; int64 ids):
# - weights: every weight the model learns (`Recommender.weight_shapes`, shapes from a module built
#   on torch's meta device, so nothing is allocated);
# - training state: the best epoch's copy of the weights (kept on the device) and, for a weight
#   trained by gradients, its gradient and Adam's two moments — a row-sparse table (`sparse_rows`)
#   has no full-table gradient but one int32 step count per row (and one int32 scratch slot of
#   the compiled update, `recviz.native`);
# - epoch samples: one chunk's (user, item, label) arrays as the loop builds them — the whole epoch
#   when it has at most EPOCH_CHUNK samples, else a chunk of that many (`recviz.training.chunks`) —
#   the numpy arrays, the negatives' temporaries while they are drawn, the shuffled copy on the
#   device (SAMPLE_COPIES × SAMPLE_BYTES) and the permutation; a chunked epoch adds its order of
#   positives (int32, 4 bytes a row);
# - split: the data's own arrays, train's copy of them, the row indices of the three parts, the
#   seen-item indexes of train and of train + validation, and the stored loo candidates;
# - evaluation: one block of scores with its top-K work (SCORE_CELLS × 16 bytes), and for an
#   MLP-scored model under full ranking the tower's activations over one forward pass (SCORE_PAIRS
#   pairs, or one user's items when there are more).
SAMPLE_BYTES = 20  # user + item (int64) + label (float32)
SAMPLE_COPIES = 3  # the numpy arrays, the build's temporaries, the shuffled copy
HEADROOM = 0.9  # refuse a run whose estimate is above this share of what is free


@dataclass(frozen=True)
class DataSize:
    """The sizes the memory of a run follows: users, items, rows (interactions, an upper bound on
    distinct pairs) and the bytes one row of the data's arrays takes."""

    users: int
    items: int
    rows: int
    row_bytes: int = 24

    @classmethod
    def of(cls, data) -> "DataSize":
        arrays = [a for a in (data.user, data.item, data.rating, data.timestamp, data.behavior) if a is not None]
        return cls(int(data.n_users), int(data.n_items), int(len(data)),
                   max(1, sum(a.itemsize for a in arrays) if len(data) else 16))

    def sampled(self, users: int) -> "DataSize":
        """The expected size after keeping `users` of the users with all their rows (items kept: an
        upper bound)."""
        users = min(int(users), self.users)
        return replace(self, users=users, rows=int(math.ceil(self.rows * users / max(1, self.users))))


def training_memory(config, size: DataSize, behaviors: tuple[str, ...] = ()) -> dict[str, int]:
    """Bytes a run of `config` needs at its peak on data of `size`, by part (see above): weights,
    training_state, samples, split, evaluation; `total`; and `device`, the part that sits on the
    accelerator when the run trains on one (weights, training state and the epoch's device copies)."""
    from recviz.eval.protocols import SCORE_CELLS
    from recviz.models import registry

    model = registry.build(config.model, config.options, device="cpu")
    weights = model.weight_shapes(size.users, size.items, tuple(behaviors))
    w_bytes = sum(w.nbytes for w in weights)
    state = w_bytes  # the best epoch's copy
    for w in weights:
        if w.by_gradient:
            state += 2 * w.nbytes + (8 * w.shape[0] if w.row_sparse else w.nbytes)  # moments + grad, or counts + slots
    gradient = any(w.by_gradient for w in weights)
    pairwise = getattr(model, "loss_kind", "") == "pairwise"
    per_pair = 1 if pairwise else 1 + int(config.options.get("neg_ratio", 1))
    from recviz.training.chunks import EPOCH_CHUNK

    epoch = size.rows * per_pair if gradient else 0
    samples = min(epoch, EPOCH_CHUNK)  # held at once: one chunk
    sample_bytes = samples * (SAMPLE_BYTES * SAMPLE_COPIES + 8) + (4 * size.rows if epoch > EPOCH_CHUNK else 0)
    on_device = samples * (SAMPLE_BYTES + 8)  # the shuffled copy and the permutation
    candidates = 2 * size.users * config.candidates * 8 if config.protocol == "loo" else 0
    split = 2 * size.rows * size.row_bytes + size.rows * 8 + 2 * (size.rows * 16 + size.users * 8) + candidates
    evaluation = SCORE_CELLS * 16
    if config.protocol == "ratio" and config.spec.tower is not None:
        from recviz.models.torch_base import SCORE_PAIRS  # pairs per forward pass when scoring

        evaluation += evaluation_cost(config.model, config.options, 1, size.items,
                                      score_cells=SCORE_PAIRS)["peak_activation_bytes"]
    parts = {"weights": w_bytes, "training_state": state, "samples": sample_bytes, "split": split,
             "evaluation": evaluation}
    return {**parts, "total": sum(parts.values()), "device": w_bytes + state + on_device}


def available_memory() -> int | None:
    """Bytes this machine can still give a process: the OS's available memory (psutil when
    installed, else /proc/meminfo's MemAvailable), capped by the cgroup's (container's) limit less
    its use; None where neither can be read."""
    free = None
    try:
        import psutil

        free = int(psutil.virtual_memory().available)
    except ImportError:
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        free = int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    for limit_file, used_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                  ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                   "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_file) as f:
                limit = f.read().strip()
            with open(used_file) as f:
                used = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:  # "max" or a huge number: no limit
            left = max(0, int(limit) - used)
            free = left if free is None else min(free, left)
        break
    return free


def device_memory(device: str) -> int | None:
    """Free bytes on the GPU a run with this `device` setting would train on; None for the CPU (or
    when it cannot be read)."""
    if device == "cpu":
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    index = int(device.split(":")[1]) if device.startswith("cuda:") else torch.cuda.current_device()
    try:
        return int(torch.cuda.mem_get_info(index)[0])
    except RuntimeError:
        return None


@dataclass
class MemoryCheck:
    """A run's estimated memory against what is free: `fits`, and when it does not, `changes` the
    estimate says would fit — each a dict of settings (a smaller embedding size; a user sample)."""

    config: object  # the RunConfig checked
    need: dict[str, int]
    host_free: int | None
    device_free: int | None
    fits: bool
    changes: list[dict] = field(default_factory=list)

    def host_need(self) -> int:
        return self.need["total"] - (self.need["device"] if self.device_free is not None else 0)

    def line(self) -> str:
        """'Training needs ≈ 1.2 GB of memory (weights 80 MB, …); 7.5 GB free here.'"""
        return f"Training {self._needs()}."

    def problem(self) -> str:
        return (f"this run would not fit in memory: it {self._needs()} (a run must stay under "
                f"{HEADROOM:.0%} of what is free)")

    def fix(self, name=lambda option: option.flag) -> str:
        """What to change, each setting written by `name(option)` (a flag for the CLI, the field's
        title on the Train page)."""
        if not self.changes:
            return "free memory, or train on a machine with more"
        return "use " + " or ".join(", ".join(f"{name(self._option(k))} {_format(v)}" for k, v in change.items())
                                    for change in self.changes)

    def _option(self, key: str):
        from recviz.config import RUN_NAMES, run_option

        return run_option(key) if key in RUN_NAMES else self.config.spec.option(key)

    def _needs(self) -> str:
        names = {"weights": "weights", "training_state": "optimiser state and best copy",
                 "samples": "epoch samples", "split": "data and split", "evaluation": "evaluation"}
        parts = ", ".join(f"{names[k]} {format_bytes(self.need[k])}" for k in names if self.need[k])
        text = f"needs ≈ {format_bytes(self.host_need())} of memory ({parts})"
        if self.host_free is not None:
            text += f"; {format_bytes(self.host_free)} free here"
        if self.device_free is not None:
            text += f"; ≈ {format_bytes(self.need['device'])} on the GPU, {format_bytes(self.device_free)} free there"
        return text


def _format(value) -> str:
    return f"{value:,}" if isinstance(value, int) and value >= 10_000 else str(value)


def _fits(need: dict, host_free: int | None, device_free: int | None) -> bool:
    host = need["total"] - (need["device"] if device_free is not None else 0)
    ok = host_free is None or host <= HEADROOM * host_free
    return ok and (device_free is None or need["device"] <= HEADROOM * device_free)


def memory_check(config, size: DataSize, *, behaviors: tuple[str, ...] = (), host_free: int | None = None,
                 device_free: int | None = None) -> MemoryCheck:
    """`training_memory` of `config` on `size` against `host_free` (and `device_free` when it trains
    on a GPU); when it does not fit, the fix names settings the estimate says fit: the largest
    embedding size (halving emb_dim and every layer list) and the largest user sample."""
    need = training_memory(config, size, behaviors)
    if _fits(need, host_free, device_free):
        return MemoryCheck(config, need, host_free, device_free, True)
    changes = [_smaller_embeddings(config, size, behaviors, host_free, device_free)]
    users = _largest_sample(config, size, behaviors, host_free, device_free)
    changes.append({"sample_users": users} if users else None)
    return MemoryCheck(config, need, host_free, device_free, False, [c for c in changes if c])


def _smaller_embeddings(config, size, behaviors, host_free, device_free) -> dict | None:
    spec, options = config.spec, dict(config.options)
    names = [o.name for o in spec.options if o.name == "emb_dim" or o.kind == "widths"]
    if not names:
        return None
    for _ in range(8):
        changed = {}
        for o in (spec.option(n) for n in names):
            value = options[o.name]
            if o.kind == "int":
                changed[o.name] = max(1, value // 2)
            else:
                widths = [max(2, int(w) // 2) for w in value.split(",")]
                widths[0] += widths[0] % 2  # NCF's first width holds both embeddings: even
                changed[o.name] = ",".join(map(str, widths))
        if changed == {k: options[k] for k in changed}:
            return None
        options.update(changed)
        try:
            trial = config.replace(**changed)
        except RecvizError:  # a width the model's rules refuse: stop shrinking
            return None
        if _fits(training_memory(trial, size, behaviors), host_free, device_free):
            return {k: v for k, v in changed.items() if v != config.options[k]}
    return None


def _largest_sample(config, size, behaviors, host_free, device_free) -> int | None:
    """The most users (two significant figures) whose sample the estimate says fits."""
    lo, hi = 0, size.users - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _fits(training_memory(config, size.sampled(mid), behaviors), host_free, device_free):
            lo = mid
        else:
            hi = mid - 1
    if lo < 2:
        return None
    digits = 10 ** max(0, len(str(lo)) - 2)
    return lo // digits * digits


def check_memory(config, data, *, prepared: bool = True, host_free: int | None = None,
                 device_free: int | None = None, measure: bool = True) -> MemoryCheck:
    """The memory check of a run of `config` on `data`: prepared as the run will read it, or not yet
    (`prepared=False`, the Train page's dataset: the config's user sample is then estimated, k-core
    left out, an upper bound). With `measure`, what is free is read from this machine
    (`available_memory`, and `device_memory` for the run's device) where not given."""
    if measure and host_free is None:
        host_free = available_memory()
    if measure and device_free is None and config.spec.uses_device:
        device_free = device_memory(config.device)
    size = DataSize.of(data)
    if not prepared and config.sample_users:
        size = size.sampled(config.sample_users)
    return memory_check(config, size, behaviors=tuple(data.behaviors or ()), host_free=host_free,
                        device_free=device_free)


def refuse_if_too_big(config, data, **kw) -> MemoryCheck:
    """`check_memory`, raising a RecvizError that names the parts and the fix when the run would not
    fit — instead of a run that ends in an out-of-memory kill."""
    check = check_memory(config, data, **kw)
    if not check.fits:
        raise RecvizError(check.problem(), fix=check.fix() + "; nothing was run")
    return check
