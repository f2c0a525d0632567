"""`shadematch bench`: where a query's time goes, stage by stage, on this machine.

It times the very stage functions the normal query path chains (Embedder.decode / preprocess / run_model /
pool, VisualIndex.search, search.distinct_products: one result per product, as Retriever.query gives), so the
numbers describe the real pipeline, not a copy of it.
Query time only: no torch, no scikit-learn, no `export`.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..backends import usable_cores
from ..bundle import open_bundle
from ..errors import ShadematchError
from ..describe.image import reduced
from ..reading.photos import decode_photos
from ..reading.reader import product_box
from ..retriever import Retriever
from ..search.fusion import TextEvidence
from ..search.two_stage import distinct_pool, distinct_products
from ..versions import installed_versions

STAGES = ("decode", "barcode", "preprocess", "text_model", "visual_model", "srmac", "text_detection", "text_recognition",
          "label_match", "index_search", "refinement")
#: Stages of reading the label: absent from a query without OCR.
READING_STAGES = ("text_detection", "text_recognition", "label_match")
THROUGHPUT_BATCHES = (1, 8, 32)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
_LIBRARIES = ("numpy", "onnxruntime", "hnswlib", "Pillow")


@dataclass(frozen=True)
class BenchOptions:
    repeats: int = 30
    warmup: int = 3
    #: rounds of the throughput measurement (each answers 32 photos at every batch size); 0 leaves it out, for a
    #: quick latency-only run (with the label read, a round is about 100 queries: ~15 s on 2 cores)
    throughput_rounds: int = 2
    backend: str = "auto"
    threads: int | None = None
    note: str = ""
    #: Read the label (default: when the bundle reads labels); the query without it is timed beside it.
    ocr: bool | None = None


def run_bench(bundle_path: Path, queries: Sequence[Path] | None = None, options: BenchOptions = BenchOptions()) -> dict[str, Any]:
    """Measure a bundle: load times, per-stage latency at batch 1, throughput at batch 1/8/32, peak RSS."""
    bundle_path = Path(bundle_path)
    load = _load_times(bundle_path)
    started = time.perf_counter()
    retriever = Retriever.open(bundle_path, backend=options.backend, threads=options.threads, ocr=options.ocr)
    load["retriever_open_s"] = time.perf_counter() - started
    with retriever:
        images = list(queries) if queries else _catalogue_images(retriever)
        if not images:
            raise ShadematchError("no query images to benchmark with (give --queries DIR)")
        ocr = retriever.reads_labels if options.ocr is None else options.ocr
        samples = _stage_samples(retriever, images, options, ocr)
        report = {
            "machine": machine_description(),
            "note": options.note,
            "bundle": _bundle_description(retriever, bundle_path),
            "backend": retriever.backend.kind,
            "threads": options.threads,
            "queries": len(images),
            "repeats": options.repeats,
            "load": load,
            "ocr": ocr,
            "photo_sizes": sorted({"x".join(map(str, _size(image))) for image in images}),
            "stages": _stage_table(samples, retriever, ocr),
            "total": _percentiles(samples["total"]),
            "throughput": {str(b): _throughput(retriever, images, b, options) for b in THROUGHPUT_BATCHES}
                          if options.throughput_rounds else {},
        }
        if ocr:
            # the same photos without reading, timed in this run: what reading the label adds
            plain = _stage_samples(retriever, images, options, False)
            report["without_ocr"] = {"total": _percentiles(plain["total"])}
            report["ocr_added_p50_ms"] = report["total"]["p50_ms"] - report["without_ocr"]["total"]["p50_ms"]
    report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
    return report


def _size(image: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(image) as opened:
        return opened.size


def _load_times(path: Path) -> dict[str, Any]:
    """Opening with the full sha256 pass and with sizes only: the first is what Retriever.open does."""
    times: dict[str, Any] = {}
    for name, verify in (("bundle_open_verify_s", True), ("bundle_open_sizes_only_s", False)):
        parts: dict[str, float] = {}
        started = time.perf_counter()
        open_bundle(path, verify=verify, timings=parts)
        times[name] = time.perf_counter() - started
        times[name.removesuffix("_s") + "_parts"] = parts
    return times


def _catalogue_images(retriever: Retriever) -> list[Path]:
    """The bundle's own catalogue images (the default query set), those that still exist on this disk."""
    paths = [retriever.bundle.path / item.image for item in retriever.bundle.catalog]  # absolute stays absolute
    return [p for p in paths if p.is_file()]


def _stage_samples(retriever: Retriever, images: Sequence[Path], options: BenchOptions, ocr: bool
                   ) -> dict[str, list[float]]:
    """Seconds per stage for single-photo queries, cycling through the photos; warm-up runs are dropped. With
    ``ocr`` the photo is decoded at reading resolution and its label read on the saliency map's product region."""
    embedder, bundle, reader, barcodes = retriever.embedder, retriever.bundle, retriever.reader, retriever.barcode_reader
    k, top, vote = bundle.k, bundle.top, bundle.vote
    products = bundle.products
    saliency = bundle.card.outputs["saliency"]
    side = embedder.decode_side  # what the visual model's inputs are cut from, of a photo decoded for reading
    samples: dict[str, list[float]] = {name: [] for name in (*STAGES, "total")}
    for run in range(options.warmup + options.repeats):
        image = images[run % len(images)]
        clock = _Clock()
        if ocr or barcodes is not None:  # Retriever.answer decodes such a photo once, at reading resolution
            photo = clock("decode", lambda: decode_photos([image])[0])
            if barcodes is not None:
                clock("barcode", barcodes.read, photo)
            batch = clock("preprocess", lambda: embedder.inputs(reduced(photo, side)))
        else:
            decoded = clock("decode", embedder.decode, image)
            batch = clock("preprocess", lambda: embedder.inputs(decoded))
        outputs = clock("visual_model", embedder.run_model, batch)
        descriptors = clock("srmac", embedder.pool, outputs)
        evidence = None
        if ocr:
            region = product_box(outputs[saliency][0, 0], photo.size, bundle.card.input)
            lines = clock("text_detection", reader.lines, photo, region)
            words = clock("text_recognition", reader.recognise, photo, lines)
            evidence = clock("label_match", TextEvidence.from_words, bundle.labels,
                             [(w.text, w.confidence) for w in words], bundle.label_weight)
        # What Retriever.query does: one result per product; a deeper search, when needed, counts as refinement.
        ids, scores = clock("index_search", bundle.index.search, descriptors, distinct_pool(top, k, vote))
        clock("refinement", distinct_products, descriptors[0], bundle.index, bundle.text_map, k, top, vote, products,
              (ids[0], scores[0]), evidence)
        if run >= options.warmup:
            for name, seconds in clock.times.items():
                samples[name].append(seconds)
            samples["total"].append(clock.total)
    return samples


class _Clock:
    """Calls a stage and records its wall time; the total is measured around all calls, separately."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self._first = time.perf_counter()
        self.total = 0.0

    def __call__(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        started = time.perf_counter()
        result = fn(*args)
        now = time.perf_counter()
        self.times[name] = now - started
        self.total = now - self._first
        return result


def _stage_table(samples: dict[str, list[float]], retriever: Retriever, ocr: bool) -> dict[str, dict[str, Any]]:
    """Percentiles per stage. The text model is not a stage of its own in any shipped graph: MANet runs
    EAST inside its graph (so its time is inside visual_model), and the ImageNet trunk has no text branch."""
    table: dict[str, dict[str, Any]] = {}
    text_output = retriever.bundle.card.outputs.get("text")
    for name in STAGES:
        if name in READING_STAGES and not ocr:
            table[name] = {"absent": True, "why": "the label is not read (OCR off, or the bundle has no label index)"}
            continue
        if name == "barcode" and retriever.barcode_reader is None:
            table[name] = {"absent": True, "why": "the catalogue has no GTINs: no photo is read for a barcode"}
            continue
        if name == "text_model":
            table[name] = (
                {"inside": "visual_model", "why": f"the visual model's graph computes the text output {text_output!r} (MANet)"}
                if text_output else {"absent": True, "why": "the bundle's visual model has no text branch"}
            )
            continue
        table[name] = _percentiles(samples[name])
    return table


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99), "mean_ms": float(ms.mean()), "n": len(ms)}


def _throughput(retriever: Retriever, images: Sequence[Path], batch: int, options: BenchOptions) -> dict[str, float]:
    """Photos per second through Retriever.query_batch (the public path) at a given batch size. Every batch size
    answers the same photos (the largest batch's worth, cycled from ``images``), so the sizes compare like for like:
    timing batch 1 on one repeated photo measured 2 calls, within the machine's noise."""
    photos = max(THROUGHPUT_BATCHES)
    feed = [images[i % len(images)] for i in range(photos)]
    calls = [feed[start:start + batch] for start in range(0, photos, batch)]
    retriever.query_batch(calls[0], batch_size=batch)  # warm-up: first run of this shape
    rounds = options.throughput_rounds
    started = time.perf_counter()
    for _ in range(rounds):
        for call in calls:
            retriever.query_batch(call, batch_size=batch)
    seconds = time.perf_counter() - started
    return {"images_per_s": rounds * photos / seconds, "ms_per_batch": 1000.0 * seconds / (rounds * len(calls))}


def _bundle_description(retriever: Retriever, path: Path) -> dict[str, Any]:
    manifest = retriever.bundle.manifest
    return {
        "path": str(path),
        "items": len(retriever.bundle.catalog),
        "model": retriever.bundle.card.name,
        "dim": int(manifest["descriptor"]["dim"]),
        "index": retriever.bundle.index.kind,
        "k": retriever.bundle.k,
        "top": retriever.bundle.top,
        "vote": retriever.bundle.vote,
        "bytes": sum(int(entry["bytes"]) for entry in manifest["files"].values()),
    }


def machine_description() -> dict[str, Any]:
    """CPU model, cores, memory, OS and library versions: numbers mean nothing without them."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = round(int(line.split()[1]) / 1024**2, 1)
                break
    except OSError:
        pass
    versions = installed_versions(_LIBRARIES)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": usable_cores(),
        "ram_gib": ram_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
        "libraries": versions,
    }


def query_images(directory: Path) -> list[Path]:
    """Image files directly in ``directory``, sorted."""
    if not directory.is_dir():
        raise ShadematchError(f"{directory}: not a directory of query photos")
    return sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def to_markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown page (machine, load, stage table, throughput)."""
    m, b = report["machine"], report["bundle"]
    libs = ", ".join(f"{k} {v}" for k, v in m["libraries"].items())
    lines = [
        f"# shadematch bench: {b['model']}, {b['items']} items ({b['index']} index, {b['dim']}-d)",
        "",
        f"Machine: {m['cpu']}, {m['cores_usable']} usable core(s) of {m['cores']}, {m['ram_gib']} GiB RAM, "
        f"{m['os']}, Python {m['python']}; {libs}.",
        f"Backend {report['backend']}, threads {report['threads'] or 'default'}; {report['repeats']} single-photo "
        f"queries over {report['queries']} photo(s).",
    ]
    if report.get("note"):
        lines += ["", f"Note: {report['note']}"]
    load = report["load"]
    lines += [
        "", "| load | seconds |", "|---|---:|",
        *(f"| {name.removesuffix('_s').replace('_', ' ')} | {value:.3f} |" for name, value in load.items()
          if isinstance(value, float)),
        "", "| stage (batch 1) | p50 ms | p95 ms | p99 ms |", "|---|---:|---:|---:|",
    ]
    for name, row in report["stages"].items():
        if "p50_ms" in row:
            lines.append(f"| {name} | {row['p50_ms']:.2f} | {row['p95_ms']:.2f} | {row['p99_ms']:.2f} |")
        else:
            lines.append(f"| {name} | {'inside ' + row['inside'] if 'inside' in row else 'absent'} ({row['why']}) | | |")
    t = report["total"]
    lines += [f"| **total** | **{t['p50_ms']:.2f}** | **{t['p95_ms']:.2f}** | **{t['p99_ms']:.2f}** |"]
    if report.get("without_ocr"):
        plain = report["without_ocr"]["total"]
        lines += [f"| total without reading the label | {plain['p50_ms']:.2f} | {plain['p95_ms']:.2f} | {plain['p99_ms']:.2f} |",
                  "", f"Reading the label adds {report['ocr_added_p50_ms']:.1f} ms at p50 "
                      f"(photos {', '.join(report.get('photo_sizes', []))})."]
    if report["throughput"]:
        lines += [
            "", "| batch | photos/s | ms per batch |", "|---:|---:|---:|",
            *(f"| {b} | {row['images_per_s']:.1f} | {row['ms_per_batch']:.1f} |" for b, row in report["throughput"].items()),
        ]
    lines += ["", f"Peak RSS: {report['peak_rss_mb']:.0f} MiB.", ""]
    return "\n".join(lines)


def write_report(report: dict[str, Any], directory: Path, name: str = "bench") -> tuple[Path, Path]:
    """``name``.json and ``name``.md in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / f"{name}.json", directory / f"{name}.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(to_markdown(report), encoding="utf-8")
    return json_path, md_path
