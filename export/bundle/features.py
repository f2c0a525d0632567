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
from runtime.reading.photos import decode_photos, describe_and_read
from runtime.reading.reader import LabelReader

from .catalog import CatalogRow, Problem

#: The words read on each kept catalogue row, as (text, confidence) pairs; None when the build does not read labels.
Reads = list[list[tuple[str, float]]]


def extract_features(
    rows: Sequence[CatalogRow], embedder: Embedder, batch_size: int = 32, workers: int = 2, progress: bool = True,
    reader: LabelReader | None = None,
) -> tuple[np.ndarray, list[CatalogRow], list[Problem], Reads | None]:
    """Descriptors of every decodable row (and, with a ``reader``, the words on its label); rows whose image
    cannot be used come back as problems."""

    def prepare(row: CatalogRow):
        try:
            return decode_photos([row.image])[0] if reader is not None else embedder.prepare(row.image)
        except ImageError as exc:
            return Problem(row.line, str(exc), row.where)

    kept: list[CatalogRow] = []
    problems: list[Problem] = []
    chunks: list[np.ndarray] = []
    reads: Reads = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, tqdm(
        total=len(rows), unit="img", desc="features and labels" if reader else "features", disable=not progress
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
            if prepared and reader is not None:
                vectors, words = describe_and_read(embedder, reader, prepared, len(prepared))
                chunks.append(vectors)
                reads += [[(w.text, w.confidence) for w in row] for row in words]
            elif prepared:
                chunks.append(embedder.embed_batch(np.stack(prepared)))
            bar.update(len(batch_rows))
    dim = embedder.card.feature_dim
    vectors = np.concatenate(chunks) if chunks else np.zeros((0, dim), dtype=np.float32)
    return vectors, kept, problems, reads if reader is not None else None
