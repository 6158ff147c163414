"""Compiled CPU kernels for the steps where numpy's or torch's operations cost more than their
arithmetic. Each is a C file beside this one, declared in `KERNELS`:

- `row_adam.c`, `row_adam_f32`: the lazy Adam update of a large embedding table (`training.optim.RowAdam`);
- `ncf.c`, `ncf_step_f32`: GMF's, MLP's and NeuMF's forward and backward on a batch
  (`models.ncf_step`), the matrix products through torch's own BLAS (`blas_sgemm`), and
  `dropout_noise_f32`: the masks of `models.dropout`;
- `itemknn.c`, `knn_pair_scores_f32`: ItemKNN's score of (user, item) pairs (`models.itemknn`);
- `radix.c`, `radix_sort_i64`: a stable linear-time sort of integer keys (`data.arrays`);
- `search.c`, `nth_unseen_i64`, `seen_pairs_i64` and `member_i64`: a user's n-th unseen item and
  whether a user has an item, each by a search in that user's keys only (`data.sampling`), and
  membership through a hash set (`data.arrays.isin_ints`).

Every caller keeps a numpy or torch path that computes the same numbers, taken where the kernel
cannot be had; tests hold the two together.

Why C for lazy Adam: lazy Adam over a batch's rows is ~20 small torch operations per table (coalesce the
repeated ids, gather the rows, their moments and counts, ~10 elementwise passes, three scatters
back). On a CPU each costs more in dispatch and in passes over memory than the arithmetic: a GMF
step with both tables row-sparse took 1.4 ms against 0.5 ms with dense Adam on the same small
tables (batch 1024, one thread), and that gap is what kept a 100M-row log's training at a quarter
of ml-100k's samples/s. The kernel does the whole update in one pass over the batch's rows.

How it is built: with the system's C compiler (`cc`, or `$CC`), on first use, into a cache folder
(`$RECVIZ_NATIVE_CACHE`, else `$XDG_CACHE_HOME/recviz/native`, else `~/.cache/recviz/native`),
named by a hash of the source, the compiler and its flags; a compiled file is reused by every later
process. Plain C and ctypes: no torch or numpy headers to compile against (seconds, not minutes)
and no build step at install. Where there is no compiler, or it fails, or `RECVIZ_NATIVE=0`,
`kernel(name)` gives None and the caller runs its own operations instead — the same numbers (the
float32 arithmetic in the same order), only slower. CUDA tensors always take the torch path: on a
GPU those operations are cheap.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

from recviz.files import move_into_place

HERE = Path(__file__).parent
_P, _I64, _F64 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double
# kernel → (its C file beside this module, argument types); every kernel returns int64 (< 0: refused)
KERNELS = {
    "row_adam_f32": ("row_adam.c", [_P, _P, _P, _P, _I64, _I64, _P, _P, _I64, _P, _P, _P, _P, _F64, _F64, _F64, _F64]),
    "radix_sort_i64": ("radix.c", [_P, _P, _I64, _P, _P, _P, _P, _I64]),
    "nth_unseen_i64": ("search.c", [_P, _P, _I64, _I64, _P, _P, _I64, _I64, _P]),
    "seen_pairs_i64": ("search.c", [_P, _P, _I64, _I64, _P, _P, _I64, _P]),
    "member_i64": ("search.c", [_P, _I64, _P, _I64, _P, _I64, _P]),
    "knn_pair_scores_f32": ("itemknn.c", [_P, _P, _P, _I64, _I64, _P, _P, _P, _P, _I64, _I64, _P, _P]),
    "ncf_step_f32": ("ncf.c", [_P, _P, _P, _P, _I64, _P, _P, _I64, _P, _P]),
    "ncf_scratch_floats": ("ncf.c", [_P, _I64]),
    "blas_check_f32": ("ncf.c", [_P]),
    "dropout_noise_f32": ("ncf.c", [_I64, _I64, _I64, _F64, _P]),
}
# -O3 vectorises the row loops, for this machine's vector width where the compiler knows it
# (-march=native; the cached file's name carries the CPU's flags); no -ffast-math and no FMA
# contraction, so every float operation rounds as torch's do; -fno-math-errno lets sqrtf be one
# instruction (the result is the same)
FLAGS = ("-O3", "-fPIC", "-shared", "-ffp-contract=off", "-fno-math-errno")
NATIVE_FLAGS = ("-march=native",)
DISABLE = "RECVIZ_NATIVE"  # set to 0 to run the torch operations instead


def cache_dir() -> Path:
    if os.environ.get("RECVIZ_NATIVE_CACHE"):
        return Path(os.environ["RECVIZ_NATIVE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "recviz" / "native"


def compiler() -> str | None:
    return _which(os.environ.get("CC") or "cc") or _which("gcc")


@functools.cache
def _which(name: str) -> str | None:
    """`shutil.which`, once a process per name: kernels are asked for in loops (~35 µs a search)."""
    return shutil.which(name)


@functools.cache
def _library(source: str, source_text: str, cc: str, cache: str) -> ctypes.CDLL | None:
    """The compiled library of one C file (built once per source, compiler and flags), or None when
    building or loading it failed — remembered, so a process tries once."""
    try:
        return _build(HERE / source, source_text, cc, cache)
    except (OSError, subprocess.SubprocessError):
        return None


def _build(source: Path, source_text: str, cc: str, cache: str) -> ctypes.CDLL:
    version = subprocess.run([cc, "--version"], check=False, capture_output=True, text=True, timeout=60).stdout
    for flags in (FLAGS + NATIVE_FLAGS, FLAGS):  # without -march=native where the compiler refuses it
        key = hashlib.sha256("\0".join([source_text, cc, version, _cpu(), *flags]).encode()).hexdigest()[:16]
        path = Path(cache) / f"{source.stem}-{key}.so"
        if path.exists() or _compile(cc, flags, source, path):
            break
    else:
        raise OSError(f"{cc} could not compile {source.name}")
    lib = ctypes.CDLL(str(path))
    for name, (file, argtypes) in KERNELS.items():
        if file == source.name:
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = argtypes, _I64
    return lib


def _compile(cc: str, flags: tuple[str, ...], source: Path, path: Path) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    # compiled beside its final name and renamed: processes compiling at once never load half a file
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".so")
    os.close(fd)
    try:
        done = subprocess.run([cc, *flags, "-o", tmp, str(source), "-lm"], check=False, capture_output=True,
                              timeout=120)
        if done.returncode == 0:
            move_into_place(tmp, path)
        return done.returncode == 0
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _cpu() -> str:
    """What -march=native compiles for: the CPU's model and feature flags (Linux), else the machine."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
    return "\n".join(next((x for x in lines if x.startswith(k)), "") for k in ("model name", "flags", "Features"))


@functools.cache
def _source_text(source: str) -> str:
    """A kernel's C source, read once a process (kernels are asked for in loops)."""
    return (HERE / source).read_text()


@functools.cache
def blas_sgemm() -> int | None:
    """The address of the Fortran BLAS `sgemm_` torch's CPU library exports (MKL in the x86 wheels),
    or None where it exports none, or one that fails a small product with a known answer
    (`blas_check_f32`): the compiled NCF step calls it for its matrix products, so they are the
    products torch's `mm` computes, on the threads `torch.set_num_threads` gave the BLAS."""
    import torch  # only callers that hold torch tensors ask

    check = kernel("blas_check_f32")
    if check is None:
        return None
    for path in sorted((Path(torch.__file__).parent / "lib").glob("*torch_cpu*")):
        try:
            address = ctypes.cast(ctypes.CDLL(str(path)).sgemm_, ctypes.c_void_p).value
        except (OSError, AttributeError):
            continue
        if check(address) == 0:  # it multiplies as sgemm does (its integers: 4 or 8 bytes)
            return address
    return None


def kernel(name: str):
    """The compiled function `name` (a key of KERNELS), or None where it cannot be had (see the
    module docstring)."""
    source = KERNELS[name][0]
    if os.environ.get(DISABLE, "1") == "0":
        return None
    cc = compiler()
    if cc is None:
        return None
    lib = _library(source, _source_text(source), cc, str(cache_dir()))
    return None if lib is None else getattr(lib, name)
