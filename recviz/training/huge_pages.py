"""Transparent huge pages for the large tables that lazy Adam reads and writes row by row.

A batch's rows lie anywhere in tables of up to gigabytes (a 100M-row log: 3.75M items × 64 floats
is 960 MB, with its Adam moments three times that). With 4 KiB pages each row read is also a TLB
miss; with 2 MiB pages the whole table needs ~1,500 TLB entries instead of ~700,000. Measured on
the update of GMF's two tables at 1M × 3.75M rows (`benchmarks/row_update.py`'s case, busy
machine): 0.42 → 0.30 ms a step.

Linux gives huge pages to memory that asks for them (`madvise(MADV_HUGEPAGE)`) when its setting
is `madvise` (the common default) or `always`. Memory not yet touched takes them as it is first
written (`zeros`); memory already written (a table initialised by its module) is rebuilt in place
(`MADV_COLLAPSE`, Linux ≥ 6.1), else left to the kernel's background collapsing. Everything here
is advice: where the system says no, nothing changes but the speed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

import torch

HUGE_PAGE = 2 << 20
MADV_HUGEPAGE, MADV_COLLAPSE = 14, 25  # <sys/mman.h> (Linux)


@functools.cache
def _madvise():
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int], ctypes.c_int
    return fn


def advise(t: torch.Tensor, collapse: bool = False) -> bool:
    """Ask for huge pages under `t`'s storage (the whole 2 MiB pages inside it); `collapse`: also
    rebuild the part already written into huge pages now. True where the system took the advice."""
    madvise = _madvise()
    nbytes = t.untyped_storage().nbytes()
    if madvise is None or t.device.type != "cpu" or nbytes < 2 * HUGE_PAGE:
        return False
    start = -(-t.untyped_storage().data_ptr() // HUGE_PAGE) * HUGE_PAGE
    end = (t.untyped_storage().data_ptr() + nbytes) // HUGE_PAGE * HUGE_PAGE
    if end <= start:
        return False
    ok = madvise(start, end - start, MADV_HUGEPAGE) == 0
    if ok and collapse:
        madvise(start, end - start, MADV_COLLAPSE)  # may fail (old kernel, no free huge pages): still advised
    return ok


def zeros(shape, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """`torch.zeros`, in huge pages where the system gives them (advised before the first write)."""
    t = torch.empty(shape, dtype=dtype, device=device)
    advise(t)
    return t.zero_()
