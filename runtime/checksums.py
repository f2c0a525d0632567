"""sha256 of files, one at a time or side by side: what bundles and engine plans record and verify.

Its own module because both the bundle format (runtime.bundle) and the TensorRT plan sidecars
(runtime.engines.plans) need it; living in the bundle module it made the two import each other.
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_files(paths: Sequence[Path], workers: int | None = None) -> list[str]:
    """The sha256 of each file, in the given order, hashed side by side.

    hashlib and file reads release the GIL, so threads hash on every core: at 500K items the two big files
    (vectors, index: 2.5 GB each) take the time of one instead of two. Biggest first keeps the cores busy."""
    workers = workers or max(1, min(len(paths), os.cpu_count() or 1))
    biggest_first = sorted(range(len(paths)), key=lambda i: -Path(paths[i]).stat().st_size)
    digests: list[str] = [""] * len(paths)
    with ThreadPoolExecutor(workers, thread_name_prefix="sha256") as pool:
        for i, digest in zip(biggest_first, pool.map(sha256_file, [paths[i] for i in biggest_first])):
            digests[i] = digest
    return digests
