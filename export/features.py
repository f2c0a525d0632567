"""Batched descriptor extraction for a catalogue, through the same runtime Embedder the kiosk uses.

Decoding runs in a thread pool (Pillow releases the GIL while decoding) so the model is not kept waiting.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np
from tqdm import tqdm

from runtime.describe.embedder import Embedder
from runtime.errors import ImageError

from .catalog import CatalogRow, Problem


def extract_features(
    rows: Sequence[CatalogRow], embedder: Embedder, batch_size: int = 32, workers: int = 2, progress: bool = True
) -> tuple[np.ndarray, list[CatalogRow], list[Problem]]:
    """Descriptors of every decodable row; rows whose image cannot be used come back as problems."""

    def prepare(row: CatalogRow) -> np.ndarray | Problem:
        try:
            return embedder.prepare(row.image)
        except ImageError as exc:
            return Problem(row.line, str(exc))

    kept: list[CatalogRow] = []
    problems: list[Problem] = []
    chunks: list[np.ndarray] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, tqdm(
        total=len(rows), unit="img", desc="features", disable=not progress
    ) as bar:
        for start in range(0, len(rows), batch_size):
            batch_rows = rows[start : start + batch_size]
            prepared = []
            for row, result in zip(batch_rows, pool.map(prepare, batch_rows)):
                if isinstance(result, Problem):
                    problems.append(result)
                else:
                    kept.append(row)
                    prepared.append(result)
            if prepared:
                chunks.append(embedder.embed_batch(np.stack(prepared)))
            bar.update(len(batch_rows))
    dim = embedder.card.feature_dim
    vectors = np.concatenate(chunks) if chunks else np.zeros((0, dim), dtype=np.float32)
    return vectors, kept, problems
