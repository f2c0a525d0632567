"""`shadematch build`: catalogue CSV -> descriptors -> HNSW index + text map -> bundle."""
from __future__ import annotations

import csv
import logging
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from runtime.backends import open_backend
from runtime.backends.cpu import int8_dot_product
from runtime.bundle import sha256_file
from runtime.bundle.catalog import CatalogItem
from runtime.bundle.write import LabelsToWrite, check_target, derive_bundle, write_bundle
from runtime.confidence.model import CONFIDENCE_FILE
from runtime.describe.embedder import Embedder
from runtime.errors import CatalogError, ModelCardError
from runtime.search.index import IndexParams, VisualIndex
from runtime.tools.tables import other_columns
from runtime.describe.modelcard import INT8, PRECISIONS, ModelCard, card_path_for, quantized_path
from runtime.describe.pooling import DEFAULT_LEVELS
from runtime.describe.views import QueryViews
from runtime.reading.reader import CATALOGUE_LINES, DEFAULT_DETECTOR, DEFAULT_RECOGNISER, ENGINES, LabelReader
from runtime.retriever import Retriever

from .adapt import AdaptOptions, Adapted, adapt, view_rows
from .catalog import LoadedCatalog, load_catalog, settle_problems
from .catalog import CatalogRow
from .confidence import CalibrationOptions, calibrate, catalogue_images
from .features import Reads, extract_features
from .labels import label_index
from .projection import check_dims, learn_projection
from .shards import ShardOptions, extract_sharded
from .textmap import TextMapParams, build_text_map

ENGINES = Path(__file__).resolve().parents[2] / "engines"
#: MANet (Wang et al., Sci China Inf Sci 2020) trained by the project: better than the ImageNet trunk in both Grocery protocols
#: (engines/manet_lite0.md); the ImageNet trunk stays shipped as the untrained baseline.
DEFAULT_MODEL = ENGINES / "manet_lite0.onnx"
LABEL_WEIGHT = 1.0
LOG = logging.getLogger("shadematch")
#: The build's default precision: INT8 where the CPU runs it exactly and the model has an INT8 sibling, else fp32.
AUTO = "auto"


def model_at_precision(model: Path, precision: str | None) -> Path:
    """``model`` in ``precision`` (None: as given): its INT8 sibling (`shadematch quantize`) or the float32 parent an
    INT8 card names; AUTO: the INT8 sibling where this CPU multiplies INT8 exactly (runtime.backends.cpu) and the
    sibling exists, else ``model`` as given, with one INFO line saying why. The catalogue and the queries go through
    the same file, so their descriptors compare."""
    if precision is None:
        return model
    if precision == AUTO:
        return _auto_precision(model)
    if precision not in PRECISIONS:
        raise ModelCardError(f"unknown precision {precision!r} (known: {', '.join((AUTO, *PRECISIONS))})")
    card = load_checked_card(model)
    if card.precision == precision:
        return model
    other = quantized_path(model) if precision == INT8 else model.with_name(str(card.raw["quantized_from"]["file"]))
    if not other.is_file():
        hint = f"; make it with `shadematch quantize --onnx {model}`" if precision == INT8 else ""
        raise ModelCardError(f"no {precision} model for {model.name}: {other} is missing{hint}")
    return other


def _auto_precision(model: Path) -> Path:
    """AUTO's choice (model_at_precision), logged when it is not the INT8 sibling."""
    if load_checked_card(model).precision == INT8:
        return model
    sibling = quantized_path(model)
    feature = int8_dot_product()
    if feature is None:
        LOG.info("building in float32: this CPU has no INT8 dot-product instruction (VNNI, AMX or ARM dotprod), "
                 "so %s would be slow and inexact here", sibling.name)
        return model
    if not sibling.is_file():
        LOG.info("building in float32: %s has no INT8 sibling (make one with `shadematch quantize --onnx %s`)",
                 model.name, model)
        return model
    return sibling


def query_reader_model(model: Path, visual_precision: str) -> Path:
    """The text detector or recogniser a bundle's queries read with: ``model``'s INT8 sibling when the visual model
    is INT8 (chosen for a CPU with an INT8 dot-product instruction, which speeds all three) and the sibling exists,
    else ``model`` itself. The catalogue is read with ``model``: offline, the most exact reads go into the label
    index. On Grocery Store val the INT8 pair read as many products from the words alone as the float32 pair
    (seen 35 vs 33 of 296 photos, unseen 14 vs 13 of 94), the fused answers unchanged, in 0.65x the time
    (benchmarks/reading/README.md)."""
    sibling = quantized_path(model)
    if visual_precision != INT8 or not sibling.is_file() or load_checked_card(model).precision == INT8:
        return model
    load_checked_card(sibling)
    return sibling


def catalogue_reader(models: tuple[Path, Path]) -> tuple[Path, Path]:
    """The detector and recogniser that read catalogue images for a bundle reading with ``models``: each INT8 query
    model (query_reader_model) is swapped for the float32 parent its card names, found among the shipped models by
    its sha256, so rows an update adds are read as `build` read the others; the INT8 file itself, with an INFO
    line, when the parent is not here."""
    detector, recogniser = models
    return _float32_parent(detector), _float32_parent(recogniser)


def _float32_parent(model: Path) -> Path:
    """``model`` itself, or the shipped float32 file its INT8 card names (see catalogue_reader)."""
    card = ModelCard.load(card_path_for(model))
    parent = card.raw.get("quantized_from") or {}
    if card.precision != INT8 or not parent.get("file"):
        return model
    shipped = ENGINES / str(parent["file"])
    if shipped.is_file() and sha256_file(shipped) == parent.get("sha256"):
        return shipped
    LOG.info("reading the added catalogue images with the bundle's INT8 %s: its float32 parent %s is not among the "
             "shipped models", card.task.replace("_", " "), parent["file"])
    return model


def load_checked_card(model: Path) -> ModelCard:
    """The model's card, checked to describe this very file."""
    if not model.is_file():
        raise ModelCardError(f"model not found: {model}")
    card = ModelCard.load(card_path_for(model))
    if card.sha256 != sha256_file(model):
        raise ModelCardError(f"{card_path_for(model).name}: sha256 does not match {model.name}; re-export the model")
    return card


@dataclass
class BuildOptions:
    model: Path = DEFAULT_MODEL
    backend: str = "auto"
    threads: int | None = None
    batch_size: int = 32
    skip_bad: bool = False
    overwrite: bool = False
    #: Algorithm 1's visual top-k: 1 measured best in the Grocery Store in-store protocol with the adapted
    #: projection and the vote, and costs catalogue-only less than a point of mAP@7 (benchmarks/grocery/README.md).
    k: int = 1
    top: int = 7
    #: Visual top-m whose product vote picks the first result (runtime.search.two_stage.vote_by_product); 0 = off.
    vote: int = 10
    #: Carry a small JPEG of every catalogue image (the kiosk's cards), so the bundle needs nothing outside it.
    pictures: bool = True
    levels: int = DEFAULT_LEVELS
    #: The descriptor's projection, learned at build time (export.bundle.adapt): "adapted" to the catalogue's products
    #: (the default), "pca" (with reduce_dim) or "none".
    projection: str = "adapted"
    #: Dimensions the index keeps (0: every direction that separates products for "adapted"; a PCA needs N): for
    #: large catalogues, where index size, build, load and query time grow with the dimension (runtime.describe.projection).
    reduce_dim: int = 0
    #: Store-like views per single-image product (the adapted projection's within-product variation there).
    views: int = 16
    #: Shrinkage of the within-product scatter; None = by its source (export.bundle.projection).
    shrinkage: float | None = None
    index: IndexParams = field(default_factory=IndexParams)
    text: TextMapParams = field(default_factory=TextMapParams)
    progress: bool = True
    engines: tuple[Path, ...] = ()  # TensorRT plans of the model to carry (`shadematch engine build`)
    bundle_backend: str = "auto"  # the backend the bundle asks for when opened
    # Worker processes for feature extraction (each one ONNX Runtime thread); 0 = one process. A work
    # directory keeps finished shards, so an interrupted build resumes where it stopped.
    workers: int = 0
    work_dir: Path | None = None
    # Feature extraction on Ray (extra `distributed`): `workers` actors; ray.init() first for a cluster.
    ray: bool = False
    #: Read the text on every catalogue image into a label index, so queries can match the words on the photo.
    ocr: bool = True
    #: The text detector and recogniser (ONNX with cards) the bundle reads with.
    text_detector: Path = DEFAULT_DETECTOR
    text_recogniser: Path = DEFAULT_RECOGNISER
    #: Weight of a fully trusted text match against the visual similarity (runtime.search.fusion); chosen on
    #: Grocery Store val (benchmarks/grocery/README.md), re-chosen on a user's queries by `shadematch tune`.
    label_weight: float = LABEL_WEIGHT
    #: "auto" (INT8 where this CPU multiplies it exactly), "fp32", "int8" (the model's quantised sibling) or None
    #: (``model`` as given): see model_at_precision. INT8 with 8-bit weights keeps the descriptors at cosine 0.989 to
    #: float32's and the same raw top-1 on Grocery val, at 0.6x the visual model's time (benchmarks/int8/README.md).
    precision: str | None = AUTO
    #: How the confidence model ("not found") is fitted on the finished bundle; None: the bundle has none.
    calibration: CalibrationOptions | None = field(default_factory=CalibrationOptions)
    #: How a query photo is described (runtime.describe.views: its crop and central zooms, summed); None: one view.
    query_views: QueryViews | None = field(default_factory=QueryViews)


@dataclass(frozen=True)
class BuildReport:
    out: Path
    items: int
    skipped: int
    seconds: float


def build_bundle(catalog: Path | LoadedCatalog, out: Path, options: BuildOptions = BuildOptions()) -> BuildReport:
    """Index a catalogue (its CSV, or one already read: a product feed) into a bundle at ``out``; bad rows abort
    unless ``options.skip_bad``."""
    started = time.perf_counter()
    check_target(out, options.overwrite)  # said before the long work, not after it
    if not 1 <= options.k <= options.top:
        raise ValueError(f"need 1 <= k <= top, got k={options.k}, top={options.top}")
    if options.vote < 0:
        raise ValueError(f"need vote >= 0, got {options.vote}")
    loaded = load_catalog(catalog)
    catalog_csv, rows, problems = loaded.source, loaded.rows, loaded.problems
    settle_problems(catalog_csv, problems, options.skip_bad)
    # TensorRT plans are built from the float32 model: a bundle that carries them keeps that model on the CPU too
    precision = None if options.engines and options.precision == AUTO else options.precision
    options = replace(options, model=model_at_precision(options.model, precision), precision=None)
    card = load_checked_card(options.model)
    try:  # said before the long feature extraction, not after it
        adapt_options = AdaptOptions(options.projection, options.reduce_dim, options.views, options.shrinkage)
        if options.projection == "pca":
            check_dims(options.reduce_dim, card.feature_dim, len(rows))
    except ValueError as exc:
        raise CatalogError(str(exc)) from None
    vectors, kept, image_problems, reads = _extract(rows, card, options)
    settle_problems(catalog_csv, image_problems, options.skip_bad)
    if not kept:
        raise CatalogError(f"{catalog_csv}: no usable catalogue rows")
    adapted = _adapt(vectors, kept, card, adapt_options, options)
    vectors, projection = adapted.vectors, adapted.projection
    index = _index(vectors, options)
    text_map = build_text_map([row.text or row.title for row in kept], options.text)
    items = [row.item() for row in kept]
    labels = None
    if reads is not None:
        labels = LabelsToWrite(label_index(kept, reads), query_reader_model(options.text_detector, card.precision),
                               query_reader_model(options.text_recogniser, card.precision),
                               options.label_weight)
    write_bundle(
        out, model_path=options.model, card=card, items=items, index=index, text_map=text_map,
        text_params=options.text.to_dict(), levels=options.levels, k=options.k, top=options.top, vote=options.vote,
        pictures=options.pictures, projection=projection,
        adaptation=(adapted.scatter, adapted.raw) if adapted.scatter is not None else None, plans=options.engines,
        backend=options.bundle_backend, overwrite=options.overwrite, labels=labels, query_views=options.query_views,
    )
    if options.calibration is not None:
        add_confidence(Path(out), options.calibration, options.threads, [(row.image, row.group) for row in kept])
    skipped = len(problems) + len(image_problems)
    return BuildReport(Path(out), len(items), skipped, time.perf_counter() - started)


def add_confidence(bundle: Path, calibration: CalibrationOptions, threads: int | None = None,
                   images: Sequence[tuple[Path, str]] | None = None,
                   labelled: Sequence[tuple[Path, str | None]] = ()) -> None:
    """Fit the finished bundle's confidence model (export.bundle.confidence) and add it, atomically, to the bundle.
    ``images``: the catalogue images to make views of (default: the bundle's own, catalogue_images); ``labelled``:
    store photos too, for `tune`."""
    with Retriever.open(bundle, backend="onnxruntime", threads=threads) as retriever:
        views_of = catalogue_images(retriever.bundle) if images is None else images
        model, info = calibrate(retriever, views_of, calibration, labelled)
    derive_bundle(bundle, bundle, {CONFIDENCE_FILE: model.save},
                  lambda manifest: manifest.update(confidence=model.section(info)), overwrite=True)


def _index(vectors: np.ndarray, options: BuildOptions, threads: int = -1) -> VisualIndex:
    """The index, or a CatalogError when a descriptor row is not a finite unit vector (VisualIndex.build says which)."""
    try:
        return VisualIndex.build(vectors, options.index, threads=threads)
    except ValueError as exc:
        raise CatalogError(str(exc)) from None


def _adapt(vectors: np.ndarray, kept, card: ModelCard, adapt_options: AdaptOptions, options: BuildOptions) -> Adapted:
    """The rows to index and the projection (export.bundle.adapt); views run on a backend of this process."""
    try:
        if adapt_options.projection == "adapted" and len(view_rows([row.group for row in kept], adapt_options.views, 0)):
            with open_backend(options.model, options.backend, threads=options.threads) as backend:
                return adapt(vectors, kept, Embedder(backend, card, options.levels), adapt_options, options.progress)
        return adapt(vectors, kept, None, adapt_options, options.progress)
    except ValueError as exc:
        raise CatalogError(f"{exc}") from None


def _reduce(vectors: np.ndarray, dims: int):
    """The catalogue's descriptors in the PCA space of ``dims`` dimensions, and the projection (or as they are)."""
    if not dims:
        return vectors, None
    try:
        projection = learn_projection(vectors, dims)
    except ValueError as exc:
        raise CatalogError(str(exc)) from None
    return projection[0].apply(vectors), projection


def _extract(rows, card: ModelCard, options: BuildOptions):
    """Descriptors of the catalogue (and the words on each image with ``options.ocr``)."""
    return describe_rows(rows, options.model, card, options.levels,
                         (options.text_detector, options.text_recogniser) if options.ocr else None,
                         backend=options.backend, threads=options.threads, batch_size=options.batch_size,
                         workers=options.workers, work_dir=options.work_dir, ray=options.ray, progress=options.progress)


def describe_rows(rows: Sequence[CatalogRow], model: Path, card: ModelCard, levels: int,
                  reader: tuple[Path, Path] | None, *, backend: str = "auto", threads: int | None = None,
                  batch_size: int = 32, workers: int = 0, work_dir: Path | None = None, ray: bool = False,
                  progress: bool = True) -> tuple[np.ndarray, list[CatalogRow], list, Reads | None]:
    """Raw descriptors of catalogue rows (and, with ``reader``'s detector and recogniser, the words on each image),
    as export.bundle.features.extract_features returns them: on Ray, in resumable shards over ``workers`` processes (kept
    in ``work_dir`` when given), or in this process. `build` and `update` both describe rows this way."""
    if ray:
        from .distributed import extract_on_ray  # Ray is an optional extra: imported only when asked for

        return extract_on_ray(rows, model, card, levels, batch_size=batch_size, workers=max(1, workers),
                              backend=backend, reader=reader)
    if workers > 1 or work_dir is not None:
        shard_options = ShardOptions(workers=max(1, workers), batch_size=batch_size, backend=backend, reader=reader,
                                     progress=progress)
        if work_dir is not None:
            return extract_sharded(rows, model, card, levels, work_dir, shard_options)
        with tempfile.TemporaryDirectory(prefix="shadematch-shards-") as work:
            return extract_sharded(rows, model, card, levels, Path(work), shard_options)
    with open_backend(model, backend, threads=threads) as session:
        embedder = Embedder(session, card, levels)
        label_reader = LabelReader.open(*reader, threads=threads, max_lines=CATALOGUE_LINES) if reader else None
        try:
            return extract_features(rows, embedder, batch_size, workers=threads or 2, progress=progress,
                                    reader=label_reader)
        finally:
            if label_reader is not None:
                label_reader.close()


def build_bundle_from_vectors(
    vectors_npy: Path, titles_csv: Path, out: Path, options: BuildOptions = BuildOptions(), timings: dict | None = None
) -> BuildReport:
    """A bundle from descriptors computed elsewhere (a feature-extraction run, a synthetic catalogue) and a
    CSV with the columns id,title[,group[,image]] (other columns: the items' fields) in the same row order: the
    CNN does not run again.

    ``timings``, when given, receives the seconds of each step (index, text map, writing)."""
    started = time.perf_counter()
    timings = {} if timings is None else timings
    check_target(out, options.overwrite)  # said before the long work, not after it
    try:
        vectors = np.load(vectors_npy, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CatalogError(f"{vectors_npy}: not a readable .npy array ({exc})") from None
    items = read_titles(titles_csv)
    if vectors.ndim != 2 or vectors.dtype != np.float32 or len(vectors) != len(items):
        raise CatalogError(
            f"{vectors_npy}: {vectors.dtype} {vectors.shape} does not match {len(items)} rows of {titles_csv} "
            "(need float32 (rows, dim))"
        )
    norms = np.linalg.norm(vectors[: min(len(vectors), 1000)], axis=1)
    if not np.allclose(norms, 1.0, atol=1e-3):
        raise CatalogError(f"{vectors_npy}: rows are not L2-normalised descriptors")
    card = load_checked_card(options.model)
    # CPU seconds beside wall seconds: on a shared machine the wall time says little about the work.
    clock, cpu = time.perf_counter(), time.process_time()
    vectors, projection = _reduce(vectors, options.reduce_dim)
    timings["projection_s"] = time.perf_counter() - clock
    clock, cpu = time.perf_counter(), time.process_time()
    index = _index(vectors, options, threads=options.threads or -1)
    timings["index_s"], timings["index_cpu_s"] = time.perf_counter() - clock, time.process_time() - cpu
    clock, cpu = time.perf_counter(), time.process_time()
    text_map = build_text_map([item.words for item in items], options.text)
    timings["text_map_s"], timings["text_map_cpu_s"] = time.perf_counter() - clock, time.process_time() - cpu
    clock = time.perf_counter()
    write_bundle(
        out, model_path=options.model, card=card, items=items, index=index, text_map=text_map,
        text_params=options.text.to_dict(), levels=options.levels, k=options.k, top=options.top, vote=options.vote,
        overwrite=options.overwrite, projection=projection,
    )
    timings["write_s"] = time.perf_counter() - clock
    return BuildReport(Path(out), len(items), 0, time.perf_counter() - started)


def read_titles(path: Path) -> list[CatalogItem]:
    """Rows id,title[,group[,image]] of a titles CSV, with the line of the first bad row in the error; its other
    columns are the items' fields, as in a catalogue CSV."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"id", "title"} <= set(reader.fieldnames):
                raise CatalogError(f"{path}: needs the columns id,title[,group[,image]]")
            others = other_columns(path, list(reader.fieldnames), ("id", "title", "group", "image"))
            items = []
            for line, row in enumerate(reader, start=2):
                if not row.get("id"):
                    raise CatalogError(f"{path} line {line}: empty id")
                items.append(CatalogItem(row["id"], row.get("title") or "", row.get("image") or "",
                                         row.get("group") or row["id"], {name: row[name] or "" for name in others}))
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path}: cannot be read ({exc})") from None
    if not items:
        raise CatalogError(f"{path}: no rows")
    return items
