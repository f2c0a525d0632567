"""Handing memory back to the system: freed heap pages, and pages of memory-mapped files read once.

glibc keeps freed blocks in its per-thread arenas for reuse, so a process that builds a large temporary and drops
it keeps the pages in its RSS: a kiosk swapping bundles grew by the old bundle's size at every reload, and a 500K
update held the text map's temporaries beside the index's new matrix. `trim` asks glibc to return them.
"""
from __future__ import annotations

import ctypes
import gc
import mmap

import numpy as np


def trim() -> None:
    """Collect garbage, then return free heap pages to the system (glibc's malloc_trim; elsewhere nothing)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def release_rows(vectors: np.ndarray, start: int, stop: int) -> None:
    """Drop rows start..stop of a read-only memory-mapped matrix from this process's memory (the kernel reads them
    from the file again if they are touched). Without it, checking or copying a 500K x 1280 matrix left its 2.4 GB
    resident for the life of the process. Anything but a memory-mapped file is left alone."""
    owner = vectors  # a plain view of a memory map (np.asarray of one) has the map as its base
    while owner is not None and not isinstance(owner, np.memmap):
        owner = owner.base
    handle = getattr(owner, "_mmap", None)
    if handle is None or not hasattr(mmap, "MADV_DONTNEED") or vectors.ndim < 1 or vectors.strides[0] <= 0:
        return
    # bytes from the start of the mmap object (numpy maps from an allocation-granularity boundary below the offset)
    where = owner.offset % mmap.ALLOCATIONGRANULARITY + (
        vectors.__array_interface__["data"][0] - owner.__array_interface__["data"][0])
    row_bytes = vectors.strides[0]
    first = where + start * row_bytes
    last = where + min(stop, len(vectors)) * row_bytes
    page = mmap.PAGESIZE
    first = -(-first // page) * page  # whole pages only: never a page that holds rows outside the range
    last = last // page * page
    if last > first:
        try:
            handle.madvise(mmap.MADV_DONTNEED, first, last - first)
        except (OSError, ValueError):
            pass
