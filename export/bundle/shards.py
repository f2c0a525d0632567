"""Catalogue feature extraction in shards: parallel worker processes on a CPU, large batches on a GPU engine,
resumable after an interruption.

Rows are cut into contiguous shards; each shard's descriptors go to ``<work>/shard-NNNNN.npz`` through a
temporary name and a rename, so a shard file exists only once it is complete. A rerun with the same work
directory skips finished shards. ``plan.json`` records what the shards were made from (model sha256, levels,
shard size, the rows' ids and images): resuming with anything else is refused instead of mixing descriptors.

On a CPU each worker process (spawned, not forked: ONNX Runtime sessions and threads do not survive a fork)
opens its own ONNX Runtime session with one thread, which beats one session with N threads for small CNNs.
On a GPU run one worker with a large ``batch_size`` (e.g. ``backend="tensorrt"``).
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from runtime.backends import open_backend
from runtime.bundle import sha256_file
from runtime.describe.embedder import Embedder
from runtime.errors import CatalogError, ImageError
from runtime.describe.modelcard import ModelCard, card_path_for
from runtime.reading.photos import decode_photos, describe_and_read
from runtime.reading.reader import CATALOGUE_LINES, LabelReader
from runtime.search.label_index import RowReads

from .catalog import CatalogRow, Problem
from .features import Reads

PLAN = "plan.json"


@dataclass(frozen=True)
class ShardOptions:
    workers: int = 2
    #: Small enough that the workers finish together (a 2,640-image catalogue in 2,048-row shards left one worker
    #: idle for three quarters of the run), large enough that a shard file per 512 rows stays cheap.
    shard_rows: int = 512
    batch_size: int = 32
    backend: str = "auto"
    threads_per_worker: int = 1
    #: The text detector and recogniser that read each row's label beside its descriptor (None: no reading).
    reader: tuple[Path, Path] | None = None
    #: A progress bar of the rows in finished shards.
    progress: bool = False


@dataclass
class ShardReport:
    """Which shards this run computed and which it found finished (resumed)."""

    computed: list[int] = field(default_factory=list)
    reused: list[int] = field(default_factory=list)


def extract_sharded(
    rows: Sequence[CatalogRow], model: Path, card: ModelCard, levels: int, work: Path,
    options: ShardOptions = ShardOptions(), report: ShardReport | None = None,
) -> tuple[np.ndarray, list[CatalogRow], list[Problem], Reads | None]:
    """Descriptors (and words read) of every decodable row, as export.bundle.features.extract_features returns them."""
    report = ShardReport() if report is None else report
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    _check_plan(work, rows, model, levels, options.shard_rows, options.reader)
    starts = list(range(0, len(rows), options.shard_rows))
    todo = [i for i in range(len(starts)) if not _shard_path(work, i).is_file()]
    report.reused = [i for i in range(len(starts)) if i not in todo]
    tasks = [(i, [(row.line, str(row.image)) for row in rows[starts[i] : starts[i] + options.shard_rows]]) for i in todo]
    reader = tuple(map(str, options.reader)) if options.reader else None
    init = (str(model), card.raw, levels, options.backend, options.threads_per_worker, options.batch_size, str(work), reader)
    total = sum(len(items) for _, items in tasks)
    what = "features and labels" if reader else "features"
    with tqdm(total=total, unit="img", desc=what, disable=not options.progress or not tasks) as bar:
        if options.workers <= 1:
            _init_worker(*init)
            for task in tasks:
                report.computed.append(_run_shard(task))
                bar.update(len(task[1]))
        elif tasks:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=options.workers, mp_context=context, initializer=_init_worker,
                                     initargs=init) as pool:
                sizes = {index: len(items) for index, items in tasks}
                for index in pool.map(_run_shard, tasks):
                    report.computed.append(index)
                    bar.update(sizes[index])
    return _merge(rows, work, len(starts), card.feature_dim, options.reader is not None)


# --- one worker process ------------------------------------------------------------------------------------

_WORKER: dict[str, object] = {}


def _init_worker(model: str, card_raw: dict, levels: int, backend: str, threads: int, batch_size: int, work: str,
                 reader: tuple[str, str] | None = None) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    card = ModelCard.from_dict(card_raw)
    _WORKER.clear()
    _WORKER.update(embedder=Embedder(open_backend(model, backend, threads=threads), card, levels),
                   batch_size=batch_size, work=Path(work),
                   reader=LabelReader.open(*reader, threads=threads, max_lines=CATALOGUE_LINES) if reader else None)


def _run_shard(task: tuple[int, list[tuple[int, str]]]) -> int:
    index, items = task
    embedder: Embedder = _WORKER["embedder"]  # type: ignore[assignment]
    batch_size: int = _WORKER["batch_size"]  # type: ignore[assignment]
    reader: LabelReader | None = _WORKER["reader"]  # type: ignore[assignment]
    kept, problems, chunks, words = [], [], [], []
    for start in range(0, len(items), batch_size):
        prepared = []
        for position, (line, image) in enumerate(items[start : start + batch_size], start=start):
            try:
                prepared.append(decode_photos([image])[0] if reader is not None else embedder.prepare(image))
                kept.append(position)
            except ImageError as exc:
                problems.append((line, str(exc)))
        if prepared and reader is not None:
            vectors, read = describe_and_read(embedder, reader, prepared, len(prepared))
            chunks.append(vectors)
            words += [[(w.text, w.confidence) for w in row] for row in read]
        elif prepared:
            chunks.append(embedder.embed_batch(np.stack(prepared)))
    vectors = np.concatenate(chunks) if chunks else np.zeros((0, embedder.card.feature_dim), np.float32)
    target = _shard_path(_WORKER["work"], index)  # type: ignore[arg-type]
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "wb") as handle:
        reads = RowReads.from_lists(words)  # row: the index among this shard's kept rows
        np.savez(handle, vectors=vectors, kept=np.asarray(kept, np.int64),
                 problem_lines=np.asarray([p[0] for p in problems], np.int64),
                 problem_messages=np.asarray([p[1] for p in problems], dtype=str),
                 read_text=reads.text, read_confidence=reads.confidence, read_row=reads.row)
    os.replace(tmp, target)
    return index


# --- planning and merging ----------------------------------------------------------------------------------

def _shard_path(work: Path, index: int) -> Path:
    return work / f"shard-{index:05d}.npz"


def _check_plan(work: Path, rows: Sequence[CatalogRow], model: Path, levels: int, shard_rows: int,
                reader: tuple[Path, Path] | None = None) -> None:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(f"{row.id}\x00{row.image}\n".encode())
    plan = {"model_sha256": sha256_file(model), "levels": levels, "shard_rows": shard_rows, "rows": len(rows),
            "rows_sha256": digest.hexdigest(),
            # shards with words and shards without them never mix
            # the cards too: they say how the models are fed (the detector's input size)
            "reader_sha256": [sha256_file(p) for m in reader for p in (Path(m), card_path_for(Path(m)))] if reader else None}
    path = work / PLAN
    if path.is_file():
        earlier = json.loads(path.read_text(encoding="utf-8"))
        if earlier != plan:
            changed = sorted(key for key in plan if earlier.get(key) != plan[key])
            raise CatalogError(f"{work}: its shards were made from another catalogue or model ({', '.join(changed)} "
                               "differ); use an empty work directory")
        return
    tmp = path.with_name(PLAN + ".tmp")
    tmp.write_text(json.dumps(plan, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _merge(rows: Sequence[CatalogRow], work: Path, shards: int, dim: int, with_reads: bool
           ) -> tuple[np.ndarray, list[CatalogRow], list[Problem], Reads | None]:
    vectors, kept, problems, reads = [], [], [], []
    shard_rows = json.loads((work / PLAN).read_text(encoding="utf-8"))["shard_rows"]
    for index in range(shards):
        with np.load(_shard_path(work, index), allow_pickle=False) as shard:
            vectors.append(shard["vectors"])
            kept += [rows[index * shard_rows + int(i)] for i in shard["kept"]]
            problems += [Problem(int(line), str(message))
                         for line, message in zip(shard["problem_lines"], shard["problem_messages"])]
            reads += RowReads(shard["read_text"], shard["read_confidence"], shard["read_row"]).by_row(len(shard["kept"]))
    merged = np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32)
    return merged, kept, problems, reads if with_reads else None
