"""The optimisers of the training loop: Adam (from scratch) and SGD (NeuMF after pre-training), dense
for every weight, or row-sparse (lazy) for the embedding tables a model marks sparse.

`Adam` is torch's fused Adam kernel called directly. A CPU step of NeuMF on ml-100k (batch 256)
takes ~1.5 ms, and `torch.optim.Adam.step` spent ~0.3 ms of it in Python around the kernel:
grouping the tensors by device and dtype, re-reading its state dict, profiler hooks — on every
one of ~2,000 steps an epoch. Here the lists are built once, and a step is two calls. The
arithmetic is the same kernel with the same arguments, so the weights are bit-for-bit those of
`torch.optim.Adam(fused=True)` (a test holds this against torch), including its handling of a
weight with no gradient in a step: it is skipped, and its step count and moments stay as they are.
Where the fused kernel does not exist (older torch, devices other than the CPU and CUDA), torch's
own Adam is used. One step count serves every weight while all of them step together (torch keeps
one per weight and adds 1 to each: `_foreach_add_` has no CPU kernel and fell back to one `add_`
per weight, 5 aten operations each, 50 of NeuMF's 72 optimiser operations): the counts are equal
then, so the kernel gets the same values and the weights stay bit-for-bit torch's.

Row-sparse tables (`sparse_rows`, `recviz.models.torch_base.mark_sparse_rows`). Dense Adam reads
and writes every row of every table on every step: at 4M items × 64 dims that is a 1 GB table,
plus its gradient and two moments, rewritten per batch. A table marked sparse (torch's own
`nn.Embedding(sparse=True)` flag) gets a gradient holding only the rows the batch read, and
`RowAdam` / `RowSGD` below update those rows alone — lazy Adam:

- momentum: a row's moments (m, v) and its step count advance only on steps whose batch holds the
  row; a row's update sequence is exactly Adam's (torch's formula, bias correction with the row's
  own count t: lr·m̂/(√v̂ + eps), m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ)) run on the steps where it was
  read. So a row read on every step moves exactly as under dense Adam, and a row first read at
  step 1000 takes Adam's first step (size ≈ lr), not one inflated by 1000 steps of decayed moments
  (torch's SparseAdam corrects with the global step instead, and has no weight decay).
- decay: L2 (`l2`, weight_decay) is added to the gradient of the touched rows only: an untouched
  row keeps its value, moments and count exactly (dense Adam would keep shrinking it and moving it
  by its old momentum).
- cost: per step O(rows in the batch × dim); the memory is the weights, m and v (as dense Adam)
  plus one int32 count per row (and, on the CPU, one int32 scratch slot per row), and no
  full-table gradient. On the CPU a float32 table's update is one compiled pass over the batch's
  rows (`row_adam.c`, built on first use: `recviz.native`), the same arithmetic as the
  torch operations of `RowAdam.step` — equal to them to float32 rounding (torch's vectorised
  `sqrt` is not always correctly rounded; C's is), not bit for bit. Without a C compiler, on
  CUDA, and with `RECVIZ_NATIVE=0`, the torch operations run.

Dense weights of the same module (MLP towers, output layers, biases) keep the dense optimiser; the
two step together (`Optimizers`). Small data keeps today's numbers exactly: `sparse_rows=auto`
marks no table below `SPARSE_ROWS_FROM` rows, and then nothing here runs.
"""

from __future__ import annotations

import torch

from recviz import native
from recviz.training import huge_pages

OPTIMIZERS = ("adam", "sgd")


class Adam:
    """Adam (Kingma & Ba 2015) with L2 weight decay added to the gradient, as `torch.optim.Adam`.

    Loss scaling (fp16, `torch.amp.GradScaler`): like torch's fused optimisers it declares
    `_step_supports_amp_scaling`; the scaler then sets `grad_scale` and `found_inf` (tensors on the
    device) before `step`, and the kernel unscales the gradients and skips the update after an
    overflow itself — no value read back to the host."""

    _step_supports_amp_scaling = True

    def __init__(self, params, lr: float, weight_decay: float = 0.0, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.weight_decay, self.betas, self.eps = float(lr), float(weight_decay), betas, eps
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        # The kernel takes one float32 step count per weight (a tensor, read on the device). While
        # every weight has had a gradient at every step those counts are equal, so they are one
        # tensor, listed once per weight: one add_ a step instead of one per weight. The first step
        # that skips a weight gives each weight its own count (`_own_counts`), as torch keeps them.
        self.count = torch.zeros((), dtype=torch.float32, device=self.params[0].device if self.params else None)
        self._shared = [self.count] * len(self.params)
        self._own: list[torch.Tensor] | None = None

    @property
    def steps(self) -> list[torch.Tensor]:
        """Each weight's step count (the shared tensor, listed per weight, until one was skipped)."""
        return self._shared if self._own is None else self._own

    def zero_grad(self, set_to_none: bool = True) -> None:
        _zero_grad(self.params, set_to_none)

    def step(self) -> None:
        grad_scale, found_inf = getattr(self, "grad_scale", None), getattr(self, "found_inf", None)
        grads = [p.grad for p in self.params]
        # `g is None`, not `None in grads`: `in` compares each tensor with == (a torch call, ~12 µs each)
        if self._own is None and not any(g is None for g in grads):  # the usual step: every weight, one count
            self.count.add_(1)
            self._kernel(self.params, grads, self.exp_avg, self.exp_avg_sq, self._shared, grad_scale, found_inf)
            if found_inf is not None:  # a skipped step does not count (as torch's fused Adam)
                self.count.sub_(found_inf)
            return
        # a weight without a gradient (e.g. a behaviour branch with no pair in this batch) is skipped
        if self._own is None:
            self._own = [self.count.clone() for _ in self.params]
        live = [k for k, g in enumerate(grads) if g is not None]
        if not live:
            return
        params, steps = [self.params[k] for k in live], [self._own[k] for k in live]
        torch._foreach_add_(steps, 1)
        self._kernel(params, [grads[k] for k in live], [self.exp_avg[k] for k in live],
                     [self.exp_avg_sq[k] for k in live], steps, grad_scale, found_inf)
        if found_inf is not None:
            torch._foreach_sub_(steps, [found_inf] * len(steps))

    def _kernel(self, params, grads, exp_avg, exp_avg_sq, steps, grad_scale, found_inf) -> None:
        torch._fused_adam_(params, grads, exp_avg, exp_avg_sq, [], steps, amsgrad=False, lr=self.lr,
                           beta1=self.betas[0], beta2=self.betas[1], weight_decay=self.weight_decay,
                           eps=self.eps, maximize=False, grad_scale=grad_scale, found_inf=found_inf)

    @property
    def param_groups(self) -> list[dict]:
        """For `torch.amp.GradScaler`, which checks the gradients group by group."""
        return [{"params": self.params}]


def _touched(grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, their gradient) of a row-sparse gradient, each row once (repeats summed, rows
    sorted); a dense gradient gives the rows that have a non-zero entry."""
    if grad.is_sparse:
        grad = grad.coalesce()
        return grad.indices()[0], grad.values()
    rows = grad.ne(0).flatten(1).any(1).nonzero().squeeze(1)
    return rows, grad[rows]


class RowAdam:
    """Lazy Adam over row-sparse gradients (see the module docstring for the semantics): only the
    rows in a batch move, each with its own moments and step count."""

    def __init__(self, params, lr: float, weight_decay: float = 0.0, betas=(0.9, 0.999), eps: float = 1e-8,
                 compiled: bool = True):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.weight_decay, self.betas, self.eps = float(lr), float(weight_decay), betas, eps
        # float32 CPU tables take the compiled one-pass update where it can be built (`native`);
        # `compiled=False`, other devices and dtypes run the torch operations of `step`
        self.kernel = native.kernel("row_adam_f32") if compiled and any(_compiled_case(p) for p in self.params) else None
        # rows are read at random: the tables and their state in huge pages where the system gives them
        for p in self.params:
            huge_pages.advise(p.detach(), collapse=True)
        # a row's m and v side by side ([rows, 2, …]): one gather and one write per step for both
        self.moments = [huge_pages.zeros((p.shape[0], 2) + tuple(p.shape[1:]), p.dtype, p.device)
                        for p in self.params]
        self.exp_avg = [mv[:, 0] for mv in self.moments]  # views
        self.exp_avg_sq = [mv[:, 1] for mv in self.moments]
        self.steps = [huge_pages.zeros(p.shape[0], torch.int32, p.device) for p in self.params]
        self.calls = 0  # steps taken: no row's count is above it
        self._slots: list[torch.Tensor | None] = [None] * len(self.params)  # the native kernel's scratch
        self.corrections: dict = {}  # (device, dtype) → (step sizes, √ second corrections) by count

    def zero_grad(self, set_to_none: bool = True) -> None:
        _zero_grad(self.params, set_to_none)

    def _bias(self, t: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """lr / (1 − β₁ᵗ) and √(1 − β₂ᵗ) for each row's count t, shaped to broadcast over its row:
        looked up in tables by count (computed in float64 as torch's Adam does, then cast — the same
        values as computing them per row, for two index_selects instead of ~10 float64 passes).
        A table covers counts up to `calls` and doubles when outgrown (no value read from the device)."""
        have = self._bias_tables(p)
        shape = (-1,) + (1,) * (p.dim() - 1)
        return have[0].index_select(0, t).view(shape), have[1].index_select(0, t).view(shape)

    def _bias_tables(self, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The tables of `_bias` for `p`'s device and dtype, covering every count up to `calls`."""
        key = (p.device, p.dtype)
        have = self.corrections.get(key)
        if have is None or len(have[0]) <= self.calls:
            size = max(1024, 2 * (self.calls + 1))
            beta1, beta2 = self.betas
            counts = torch.arange(size, dtype=torch.float64, device=p.device)
            have = ((self.lr / (1 - beta1 ** counts)).to(p.dtype), (1 - beta2 ** counts).sqrt().to(p.dtype))
            self.corrections[key] = have
        return have

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        self.calls += 1
        for k, (p, mv_all, t_all) in enumerate(zip(self.params, self.moments, self.steps)):
            if p.grad is None:
                continue
            if self._compiled_step(k, p, mv_all, t_all):
                continue
            rows, grad = _touched(p.grad)
            if len(rows) == 0:
                continue
            # rows are read with index_select and written with index_copy_ (rows are distinct):
            # on a CPU `x[rows]`, `x[rows] = y` and `index_add_` cost 5-10× more (per-element or
            # per-row kernels), which made a step on a 400k-row table ~8× a step on ml-100k
            weights = p.index_select(0, rows)
            if self.weight_decay:
                grad = grad.add(weights, alpha=self.weight_decay)
            mv = mv_all.index_select(0, rows)
            m = mv[:, 0].mul_(beta1).add_(grad, alpha=1 - beta1)
            v = mv[:, 1].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            t = t_all.index_select(0, rows) + 1
            mv_all.index_copy_(0, rows, mv)
            t_all.index_copy_(0, rows, t)
            # bias corrections in float64, as torch's Adam (1 − 0.999ᵗ in float32 loses 4 digits)
            step_size, correction2 = self._bias(t, p)
            denom = (v.sqrt() / correction2).add_(self.eps)
            p.index_copy_(0, rows, weights.add_(m.div_(denom).mul_(step_size), alpha=-1.0))

    def _compiled_step(self, k: int, p: torch.Tensor, mv_all: torch.Tensor, t_all: torch.Tensor) -> bool:
        """The whole update of table `k` in one compiled pass (`row_adam.c`, see `native`): the
        same update as the torch operations below, for a float32 CPU table with a row-sparse
        gradient, where the kernel could be built. False: not done here."""
        grad = p.grad
        if self.kernel is None or not (grad.is_sparse and _compiled_case(p)):
            return False
        ids = grad._indices()[0].contiguous()  # the batch's rows, repeats not yet summed
        values = grad._values().to(torch.float32).contiguous()
        if len(ids) == 0:
            return True
        if self._slots[k] is None:
            self._slots[k] = huge_pages.zeros(p.shape[0], torch.int32, p.device).sub_(1)  # all -1
        n, dim = values.shape
        uniq, acc = torch.empty(n, dtype=torch.int64), torch.empty(n, dim, dtype=torch.float32)
        step_sizes, corrections2 = self._bias_tables(p)
        done = self.kernel(p.data_ptr(), mv_all.data_ptr(), t_all.data_ptr(), self._slots[k].data_ptr(),
                           p.shape[0], dim, ids.data_ptr(), values.data_ptr(), n, uniq.data_ptr(), acc.data_ptr(),
                           step_sizes.data_ptr(), corrections2.data_ptr(), *self.betas, self.eps, self.weight_decay)
        if done < 0:  # checked before anything was written
            raise IndexError(f"a row-sparse gradient names a row outside its {p.shape[0]}-row table")
        return True


def _compiled_case(p: torch.Tensor) -> bool:
    return p.device.type == "cpu" and p.dtype == torch.float32 and p.dim() == 2 and p.is_contiguous()


class RowSGD:
    """Plain SGD over row-sparse gradients: only the rows in a batch move; L2 decays those rows."""

    def __init__(self, params, lr: float, weight_decay: float = 0.0):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.weight_decay = float(lr), float(weight_decay)

    def zero_grad(self, set_to_none: bool = True) -> None:
        _zero_grad(self.params, set_to_none)

    @torch.no_grad()
    def step(self) -> None:
        for p in self.params:
            if p.grad is None:
                continue
            rows, grad = _touched(p.grad)
            weights = p.index_select(0, rows)  # (see RowAdam.step on index_select / index_copy_)
            if self.weight_decay:
                grad = grad.add(weights, alpha=self.weight_decay)
            p.index_copy_(0, rows, weights.add_(grad, alpha=-self.lr))


class Optimizers:
    """Several optimisers over disjoint weights, stepped as one (dense weights + sparse tables)."""

    def __init__(self, parts: list):
        self.parts = parts

    def zero_grad(self, set_to_none: bool = True) -> None:
        for part in self.parts:
            part.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for part in self.parts:
            part.step()


def _zero_grad(params, set_to_none: bool) -> None:
    for p in params:
        if set_to_none or p.grad is None or p.grad.is_sparse:
            p.grad = None
        else:
            p.grad.zero_()


def sparse_tables(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The weights of the embedding tables marked sparse (torch's `sparse` flag, set by the model
    from its `sparse_rows` option)."""
    return [m.weight for m in module.modules()
            if isinstance(m, (torch.nn.Embedding, torch.nn.EmbeddingBag)) and m.sparse and m.weight.requires_grad]


def has_fused_adam(device: torch.device) -> bool:
    return device.type in ("cpu", "cuda") and hasattr(torch, "_fused_adam_")


def make_optimizer(params, name: str, lr: float, weight_decay: float, device: torch.device, sparse=()):
    """Adam or SGD — the optimisers of the papers' Keras code — dense over `params`, and lazy
    (`RowAdam` / `RowSGD`) over the row-sparse tables among them (`sparse`, e.g. `sparse_tables`).

    Dense Adam reads and writes every embedding row every batch; its fused kernel (one pass per
    tensor for m, v and the update) is ~3× faster on a CPU than torch's per-parameter or foreach
    versions, and the fastest on CUDA too."""
    rows = {id(p) for p in sparse}
    params = [p for p in params if p.requires_grad]
    lazy = [p for p in params if id(p) in rows]
    dense = [p for p in params if id(p) not in rows]
    if not lazy:
        return _dense_optimizer(dense, name, lr, weight_decay, device)
    row_opt = RowAdam(lazy, lr, weight_decay) if name == "adam" else RowSGD(lazy, lr, weight_decay)
    return Optimizers([_dense_optimizer(dense, name, lr, weight_decay, device), row_opt] if dense else [row_opt])


def _dense_optimizer(params: list, name: str, lr: float, weight_decay: float, device: torch.device):
    if name == "sgd":
        fused = {"fused": True} if device.type in ("cpu", "cuda") else {}
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, **fused)
    # one kernel call takes one device and dtype (torch's Adam groups them; every model here has one)
    if has_fused_adam(device) and len({(p.device, p.dtype) for p in params}) <= 1:
        return Adam(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
