"""Handing freed memory back to the system.

glibc keeps freed blocks in its per-thread arenas for reuse, so a process that builds a large temporary and drops
it keeps the pages in its RSS: a kiosk swapping bundles grew by the old bundle's size at every reload, and a 500K
update held the text map's temporaries beside the index's new matrix. `trim` asks glibc to return them.
"""
from __future__ import annotations

import ctypes
import gc


def trim() -> None:
    """Collect garbage, then return free heap pages to the system (glibc's malloc_trim; elsewhere nothing)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
