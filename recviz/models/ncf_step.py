"""A hand-written training step for GMF, MLP and NeuMF: the log loss's forward and backward pass
written out as a few large tensor operations, instead of autograd's graph.

Why: on a CPU a batch-256 NeuMF step is mostly per-operation overhead, not arithmetic. Autograd ran
358 aten operations a step for NeuMF (emb 64, tower 128→128→64→32, dropout 0.1; 126 forward, 160
backward, 72 Adam): every `nn.Linear` is ~10 operations forward and ~15 backward (views,
transposes, `resolve_conj`, copies of the bias), every embedding lookup 7 and its backward a zeroed
table-sized gradient made anew. The network is small and fixed, so its gradient is short to write:

    forward                                   backward (dz = ∂loss/∂z = (σ(z) − y) / B)
    e_u = U[u], e_i = I[i]                    dW_out = dzᵀ·f, db_out = Σ dz, df = dz·W_out
    g = e_u^G ⊙ e_i^G            (GMF)        de_u^G = df^G ⊙ e_i^G, de_i^G = df^G ⊙ e_u^G
    h₀ = [e_u^M; e_i^M]          (MLP)        per layer, last first: da_k = dh_k·noise_k·[h_k > 0]
    h_k = relu(h_{k−1}·W_kᵀ + b_k)·noise_k      dW_k = da_kᵀ·h_{k−1}, db_k = Σ da_k, dh_{k−1} = da_k·W_k
    f = [g; h_K], z = f·W_outᵀ + b_out        dU = 0; dU[u] += [de_u^G; dh₀^u] (same for I)

— the operations autograd itself would run for this network (the same `addmm`/`mm`,
`threshold_backward` for the ReLU, `index_add_` into a zeroed table for the embeddings,
`(σ(z) − y)/B` for the loss), on detached aliases of the weights, so no graph is built. Dropout is
drawn as the tower's `recviz.models.dropout.Dropout` draws it on that device (CPU: one seed per
layer from torch's generator, in layer order, and the mask hashed from it; CUDA: `native_dropout`,
its fused kernel), so a seed gives the same masks on either path. The gradients are written to each weight's `.grad` and the optimiser steps as usual; a
table's gradient lives in one buffer reused every step (zeroed, then the batch's rows added), or is
row-sparse (`sparse_coo_tensor` of the batch's rows) for a table marked sparse (`sparse_rows`),
as autograd's sparse embedding backward gives it. Nothing reads a value back to the host, so a GPU
is never made to wait.

On a CPU, with float32 weights, the whole step is one compiled call instead (`recviz/native/ncf.c`:
the same operations, the matrix products through the BLAS `sgemm` torch itself calls; torch's
operations where no compiler is at hand): NeuMF's ~200 operations on a 256-row batch cost more in
dispatch than in arithmetic, and so did GMF's twenty.

Scope: the NCF networks of `recviz.models.ncf` as they are built there (a tower of Linear → ReLU
(→ Dropout)), pointwise log loss, fp32. The loop uses autograd for everything else: every other
model, `precision` bf16/fp16 (autocast), and on request (`GradientEpochs(plan, autograd=True)`,
`--autograd` in the benchmarks). tests/test_ncf_step.py holds the gradients to autograd's (float64
and float32, dropout on and off, sparse tables) and a seeded training to autograd's weights.
"""

from __future__ import annotations

import ctypes

import torch
from torch import nn

from recviz import native
from recviz.models import dropout

Tensor = torch.Tensor
# the backward functions autograd calls for ReLU and dropout (not in the torch namespace)
threshold_backward = torch.ops.aten.threshold_backward.default
native_dropout_backward = torch.ops.aten.native_dropout_backward.default


def tower_layers(tower: nn.Sequential | None) -> tuple[list[nn.Linear], float] | None:
    """The Linear layers and the dropout probability of a `relu_tower` (Linear → ReLU, each followed
    by `recviz.models.dropout.Dropout(p)` or none), or None for any other shape (which has no
    hand-written step; nor has a tower with torch's own `nn.Dropout`, whose masks it cannot draw)."""
    if tower is None:
        return [], 0.0
    mods = list(tower)
    with_dropout = len(mods) > 2 and isinstance(mods[2], nn.Dropout)
    width = 3 if with_dropout else 2
    if not mods or len(mods) % width:
        return None
    linears, ps = [], set()
    for k in range(0, len(mods), width):
        lin, relu, *drop = mods[k:k + width]
        if not (isinstance(lin, nn.Linear) and type(relu) is nn.ReLU and not relu.inplace):
            return None
        if drop and not (type(drop[0]) is dropout.Dropout and not drop[0].inplace):  # its masks are ours
            return None
        linears.append(lin)
        ps.update(d.p for d in drop)
    if len(ps) > 1 or any(not 0 <= q < 1 for q in ps):  # nn.Dropout(1) zeroes: autograd's business
        return None
    return linears, (ps.pop() if ps else 0.0)


class _Net(ctypes.Structure):
    """`struct ncf_net` of `recviz/native/ncf.c`, field for field: the network the compiled step
    reads and the buffers it writes."""

    _fields_ = [(name, ctypes.c_int64) for name in
                ("gmf", "mlp", "layers", "n_users", "n_items", "per_row", "capacity", "threshold")] + [
        ("scale", ctypes.c_double), ("width", ctypes.POINTER(ctypes.c_int64)),
        *((name, ctypes.c_void_p) for name in ("user", "item", "h", "c", "weight", "bias", "grad_h", "grad_c",
                                                "grad_weight", "grad_bias", "scratch", "prev_users", "prev_items",
                                                "sgemm"))]


class NCFStep:
    """`step(batch) -> loss`: the mean log loss of a batch ({"user", "item", "label"}) through an
    NCF network, its gradient written to every weight's `.grad` (see the module docstring).

    user, item: the embedding tables, columns [GMF's `gmf` | MLP's `mlp`] (either may be 0 wide);
    tower: the MLP's ReLU tower (None without an MLP part); out: the output layer h. `module` is
    the network they belong to (its `training` flag switches dropout)."""

    def __init__(self, module: nn.Module, user: nn.Embedding, item: nn.Embedding, gmf: int, mlp: int,
                 tower: nn.Sequential | None, out: nn.Linear):
        layers = tower_layers(tower)
        if layers is None or not (gmf or mlp) or bool(mlp) != (tower is not None):
            raise ValueError("not an NCF network: embedding tables, a Linear → ReLU (→ Dropout) tower, h")
        self.module, self.gmf, self.mlp, self.tables, self.out = module, gmf, mlp, (user, item), out
        self.linears, self.p = layers
        self.params = [user.weight, item.weight, *(w for lin in self.linears for w in (lin.weight, lin.bias)),
                       out.weight, out.bias]
        self._bound: list[int] = []
        self._native = native.kernel("ncf_step_f32")
        self._sgemm = native.blas_sgemm() if self.linears else None

    def _bind(self) -> None:
        """Detached aliases of the weights (and the layers' transposes), made again whenever a
        weight's storage moved (another tensor, another device): the optimisers update weights in
        place, and so does loading a state, so between those the aliases stay current."""
        self.w = [p.detach() for p in self.params]
        self.wt = [lin.weight.detach().t() for lin in self.linears]
        self.table_grads = [None if t.sparse else torch.zeros_like(t.weight) for t in self.tables]
        self._bound = [p.data_ptr() for p in self.params]
        compiled = self._native is not None and (self._sgemm is not None or not self.linears) and all(
            p.device.type == "cpu" and p.dtype == torch.float32 and p.is_contiguous() for p in self.params)
        self.out_grads = [torch.zeros_like(p) for p in self.params[2:]] if compiled else None
        self.net = None  # the compiled step's `struct ncf_net`, made for the first batch (`_room`)

    def _room(self, rows: int) -> None:
        """The compiled step's network and scratch, with room for `rows` rows; the dense gradients
        are zeroed whole by its next call (no ids of the rows they hold are kept yet)."""
        widths = [2 * self.mlp] + [lin.out_features for lin in self.linears]
        self._prev, self._prev_n = torch.empty(2, rows, dtype=torch.int64), -1
        w, grads = self.w, self.out_grads
        # the arrays the struct points into, kept alive here: the widths, then layer by layer the
        # weights, biases and their gradients (w and grads: [W_1, b_1, …, W_K, b_K, h, c])
        self._arrays = [(ctypes.c_int64 * len(widths))(*widths),
                        *((ctypes.c_void_p * max(len(self.linears), 1))(*(t.data_ptr() for t in ts))
                          for ts in (w[2:-2:2], w[3:-2:2], grads[:-2:2], grads[1:-2:2]))]
        widths_at, weight, bias, grad_weight, grad_bias = self._arrays
        self.net = _Net(
            gmf=self.gmf, mlp=self.mlp, layers=len(self.linears), n_users=len(w[0]), n_items=len(w[1]),
            per_row=self.per_row, capacity=rows, threshold=dropout.threshold(self.p) if self.p else 0,
            scale=dropout.scale(self.p) if self.p else 1.0, width=widths_at, user=w[0].data_ptr(),
            item=w[1].data_ptr(), h=w[-2].data_ptr(), c=w[-1].data_ptr(), weight=ctypes.addressof(weight),
            bias=ctypes.addressof(bias), grad_h=grads[-2].data_ptr(), grad_c=grads[-1].data_ptr(),
            grad_weight=ctypes.addressof(grad_weight), grad_bias=ctypes.addressof(grad_bias),
            scratch=None, prev_users=self._prev[0].data_ptr(), prev_items=self._prev[1].data_ptr(), sgemm=self._sgemm)
        self.scratch = torch.empty(native.kernel("ncf_scratch_floats")(ctypes.byref(self.net), rows), dtype=torch.float32)
        self.net.scratch = self.scratch.data_ptr()

    @property
    def per_row(self) -> int:
        """The tables whose gradient is one row per batch position (row-sparse): bit 0 user, bit 1 item."""
        return sum(1 << k for k, buf in enumerate(self.table_grads) if buf is None)

    def _seeds(self) -> Tensor | None:
        """This step's dropout seeds, one per layer (drawn as the tower's modules draw them), or
        None: no dropout (none in the tower, eval mode)."""
        return dropout.draw_seeds(len(self.linears)) if self.p > 0 and self.module.training else None

    def __call__(self, batch: dict[str, Tensor]) -> Tensor:
        if self._bound != [p.data_ptr() for p in self.params]:
            self._bind()
        u, i, y = batch["user"], batch["item"], batch["label"]
        if self.out_grads is not None and y.dtype == torch.float32 and u.is_contiguous() and i.is_contiguous() \
                and y.is_contiguous() and u.dtype == i.dtype == torch.int64 and len(u):
            return self._compiled(u, i, y)
        self._prev_n = -1  # the torch operations write the dense gradients whole: the kernel's next call zeroes them whole
        y = y.unsqueeze(1)
        w, g, m = self.w, self.gmf, self.mlp
        eu, ei = w[0].index_select(0, u), w[1].index_select(0, i)
        if g:
            gu, gi = (eu, ei) if not m else (eu[:, :g], ei[:, :g])
            prod = gu * gi
        if m:
            xs, relus, masks = self._tower(torch.cat([eu, ei] if not g else [eu[:, g:], ei[:, g:]], 1))
        f = prod if not m else xs[-1] if not g else torch.cat([prod, xs[-1]], 1)
        z = torch.addmm(w[-1], f, w[-2].t())  # [B, 1] logits
        loss = torch.addcmul(torch.nn.functional.softplus(z), z, y, value=-1).mean()  # softplus(z) − y·z
        # backward: the log loss's gradient (as binary_cross_entropy_with_logits_backward), then h
        dz = torch.sigmoid(z).sub_(y).div_(float(len(z)))
        df = torch.mm(dz, w[-2])
        grads = [torch.mm(dz.t(), f), dz.sum(0)]  # h's weight and bias
        if m:
            dx, tower_grads = self._tower_back(df if not g else df[:, g:], xs, relus, masks)
            grads[:0] = tower_grads
            du, di = dx[:, :m], dx[:, m:]
        if g:
            dg = df if not m else df[:, :g]
            dgu, dgi = dg * gi, dg * gu
            du, di = (dgu, dgi) if not m else (torch.cat([dgu, du], 1), torch.cat([dgi, di], 1))
        grads[:0] = [self._table_grad(0, u, du), self._table_grad(1, i, di)]
        for p, grad in zip(self.params, grads):
            p.grad = grad
        return loss.detach()

    def _compiled(self, u: Tensor, i: Tensor, y: Tensor) -> Tensor:
        """The step in one compiled call (`ncf.c`): the tables' gradients as `_table_grad` makes
        them — dense, or for a row-sparse table one row per batch position, made sparse here."""
        if self.net is None or self.net.capacity < len(u):
            self._room(len(u))
        U, I = self.w[0], self.w[1]
        gU, gI = (buf if buf is not None else torch.empty(len(u), self.gmf + self.mlp, dtype=torch.float32)
                  for buf in self.table_grads)
        loss = torch.empty((), dtype=torch.float32)
        seeds = self._seeds()
        prev_n, self._prev_n = self._prev_n, -1  # -1 until the kernel has run
        if self._native(ctypes.byref(self.net), u.data_ptr(), i.data_ptr(), y.data_ptr(), len(u), gU.data_ptr(),
                        gI.data_ptr(), prev_n, None if seeds is None else seeds.data_ptr(), loss.data_ptr()) < 0:
            self._prev_n = prev_n  # refused before writing anything
            raise IndexError("index out of range in self")  # what index_select says
        self._prev_n = len(u)
        grads = [g if dense is not None else
                 torch.sparse_coo_tensor(ids.unsqueeze(0), g, w.shape, check_invariants=False)
                 for g, dense, ids, w in zip((gU, gI), self.table_grads, (u, i), (U, I))]
        for p, grad in zip(self.params, (*grads, *self.out_grads)):
            p.grad = grad
        return loss

    def _tower(self, h: Tensor) -> tuple[list[Tensor], list[Tensor], list[Tensor | None]]:
        """The tower forward: each layer's input (and the output last), its ReLU output and its
        dropout noise (float, CPU) or mask (bool, CUDA), both as the tower's Dropout draws them there."""
        xs, relus, masks = [h], [], []
        drop = self.p > 0 and self.module.training
        seeds = self._seeds().tolist() if drop and h.device.type == "cpu" else None
        for k in range(len(self.linears)):
            r = torch.addmm(self.w[3 + 2 * k], xs[-1], self.wt[k]).relu_()
            relus.append(r)
            if drop and seeds is not None:  # the CPU path of recviz.models.dropout.Dropout
                mask = dropout.noise(seeds[k], r.shape, self.p).to(r.dtype)  # noise: 0 or 1/(1 − p)
                masks.append(mask)
                r = r * mask
            elif drop:
                r, mask = torch.native_dropout(r, self.p, True)
                masks.append(mask)
            else:
                masks.append(None)
            xs.append(r)
        return xs, relus, masks

    def _tower_back(self, dh: Tensor, xs: list[Tensor], relus: list[Tensor],
                    masks: list[Tensor | None]) -> tuple[Tensor, list[Tensor]]:
        """The tower backward from ∂L/∂output: ∂L/∂input and [dW₁, db₁, dW₂, …]."""
        grads: list[Tensor] = []
        for k in range(len(self.linears) - 1, -1, -1):
            if masks[k] is not None and masks[k].dtype == torch.bool:
                dh = native_dropout_backward(dh, masks[k], 1 / (1 - self.p))
            elif masks[k] is not None:
                dh = dh * masks[k]
            da = threshold_backward(dh, relus[k], 0)
            grads[:0] = [torch.mm(da.t(), xs[k]), da.sum(0)]
            dh = torch.mm(da, self.w[2 + 2 * k])
        return dh, grads

    def _table_grad(self, k: int, ids: Tensor, rows: Tensor) -> Tensor:
        """A table's gradient: the batch's rows added into zeros (repeats summed), as autograd's
        dense embedding backward; row-sparse for a sparse table, as its sparse backward."""
        buf = self.table_grads[k]
        if buf is None:
            return torch.sparse_coo_tensor(ids.unsqueeze(0), rows, self.w[k].shape, check_invariants=False)
        return buf.zero_().index_add_(0, ids, rows)
