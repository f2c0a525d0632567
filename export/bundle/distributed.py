"""Catalogue indexing across machines on Ray: the feature extraction of a catalogue too large for one machine.

``ray.data`` splits the catalogue rows into blocks and ``map_batches`` runs them through the runtime backend
(the same Embedder the kiosk uses) in actor workers, each with its own model session; the blocks come back
in row order and are merged into one descriptor matrix, from which one bundle is built as usual. Connect to
a cluster with ``ray.init(address=...)`` before calling; without one Ray starts a local instance.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from runtime.backends import open_backend
from runtime.describe.embedder import Embedder
from runtime.errors import ImageError
from runtime.describe.modelcard import ModelCard
from runtime.reading.photos import decode_photos, describe_and_read
from runtime.reading.reader import CATALOGUE_LINES, LabelReader

from .catalog import CatalogRow, Problem
from .features import Reads


class EmbedRows:
    """A Ray actor's work: one model session per worker, a batch of rows in, descriptors (or errors) out, and
    the words on each row's label when the actor has a reader (as JSON text per row)."""

    def __init__(self, model: str, card_raw: dict[str, Any], levels: int, backend: str, threads: int,
                 reader: tuple[str, str] | None = None) -> None:
        card = ModelCard.from_dict(card_raw)
        self.embedder = Embedder(open_backend(model, backend, threads=threads), card, levels)
        self.reader = LabelReader.open(*reader, threads=threads, max_lines=CATALOGUE_LINES) if reader else None

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        dim = self.embedder.card.feature_dim
        prepared, ok, errors = [], [], []
        for image in batch["image"]:
            try:
                if self.reader is not None:
                    prepared.append(decode_photos([str(image)])[0])
                else:
                    prepared.append(self.embedder.prepare(str(image)))
                ok.append(True)
                errors.append("")
            except ImageError as exc:
                ok.append(False)
                errors.append(str(exc))
        vectors = np.zeros((len(ok), dim), dtype=np.float32)
        words = ["[]"] * len(ok)
        if prepared and self.reader is not None:
            vectors[np.asarray(ok)], read = describe_and_read(self.embedder, self.reader, prepared, len(prepared))
            for slot, row in zip(np.nonzero(ok)[0], read):
                words[slot] = json.dumps([[w.text, w.confidence] for w in row], ensure_ascii=False)
        elif prepared:
            vectors[np.asarray(ok)] = self.embedder.embed_batch(np.stack(prepared))
        return {"row": batch["row"], "vector": vectors, "ok": np.asarray(ok), "error": np.asarray(errors, dtype=object),
                "words": np.asarray(words, dtype=object)}


def extract_on_ray(
    rows: Sequence[CatalogRow], model: Path, card: ModelCard, levels: int, *, batch_size: int = 32,
    workers: int = 2, backend: str = "auto", threads_per_worker: int = 1, reader: tuple[Path, Path] | None = None,
) -> tuple[np.ndarray, list[CatalogRow], list[Problem], Reads | None]:
    """Descriptors (and words read, with ``reader``) of every decodable row, as export.bundle.features.extract_features
    returns them, on Ray."""
    import ray

    dataset = ray.data.from_items([{"row": i, "image": str(row.image)} for i, row in enumerate(rows)])
    embedded = dataset.map_batches(
        EmbedRows, fn_constructor_args=(str(model), card.raw, levels, backend, threads_per_worker,
                                        tuple(map(str, reader)) if reader else None),
        batch_size=batch_size, batch_format="numpy", concurrency=workers, num_cpus=threads_per_worker,
    )
    parts = list(embedded.iter_batches(batch_size=None, batch_format="numpy"))
    order = np.argsort(np.concatenate([p["row"] for p in parts])) if parts else np.zeros(0, np.int64)
    vectors = np.concatenate([p["vector"] for p in parts])[order] if parts else np.zeros((0, card.feature_dim), np.float32)
    ok = np.concatenate([p["ok"] for p in parts])[order] if parts else np.zeros(0, bool)
    errors = np.concatenate([p["error"] for p in parts])[order] if parts else np.zeros(0, object)
    words = np.concatenate([p["words"] for p in parts])[order] if parts else np.zeros(0, object)
    kept = [row for row, good in zip(rows, ok) if good]
    problems = [Problem(row.line, str(message), row.where) for row, good, message in zip(rows, ok, errors) if not good]
    reads = [[(str(t), float(c)) for t, c in json.loads(w)] for w, good in zip(words, ok) if good] if reader else None
    return np.ascontiguousarray(vectors[ok], dtype=np.float32), kept, problems, reads
