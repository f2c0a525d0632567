"""Opening a bundle: the one offline artefact a kiosk loads (models, index, text map, catalogue, manifest).

Everything is checked before anything is used: the manifest (runtime.bundle.manifest), that every listed file is
there with its recorded size and sha256, and that the parts agree with each other (row counts, dimensions).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

import numpy as np

from ..checksums import sha256_files
from ..confidence.model import CONFIDENCE_FILE, ConfidenceModel
from ..engines.plans import PlanManifest
from ..errors import BackendError, BundleError, ModelCardError
from ..search.index import VisualIndex
from ..describe.modelcard import ModelCard, card_path_for
from ..describe.projection import Projection
from ..describe.views import QueryViews
from ..search.label_index import LabelIndex
from ..search.textmap import TextNeighbours
from .catalog import CatalogItem, CatalogRows
from .layout import (BACKENDS, CARD_FILE, CATALOG_FILE, ENGINES_DIR, FORMAT_NAME, MANIFEST, MODEL_FILE, PICTURES_DIR,
                     PROJECTION_FILE, READABLE_VERSIONS, TEXT_MAP_FILE, VECTORS_FILE, picture_name)
from .manifest import Manifest


@dataclass
class Bundle:
    """An opened, verified bundle. Read-only after opening, so it can be shared across threads."""

    path: Path
    manifest: dict[str, Any]
    card: ModelCard
    model_path: Path
    catalog: Sequence[CatalogItem]
    index: VisualIndex
    text_map: TextNeighbours
    #: SR-MAC descriptor -> index space (None: the index holds the descriptors as they are).
    projection: Projection | None = None
    #: The manifest, checked and typed (``manifest`` is the same object as read).
    meta: Manifest | None = None
    #: Products scored by the words read on a photo (None: a bundle built without reading its catalogue's labels).
    labels: LabelIndex | None = None
    #: Match confidence and "not found" (None: a bundle built before them, or with `build --calibration 0`).
    confidence: ConfidenceModel | None = None

    @property
    def reads_labels(self) -> bool:
        """Whether the bundle carries a label index and the models that read the words a photo is compared by."""
        return self.labels is not None

    @property
    def query_views(self) -> QueryViews | None:
        """How a query photo is described (runtime.describe.views); None: from the card's crop alone."""
        return self.meta.query_views if self.meta else None

    @property
    def label_weight(self) -> float:
        """How much a fully trusted text match adds to a row's visual similarity (runtime.search.fusion)."""
        return self.meta.labels.weight if self.meta and self.meta.labels else 0.0

    @property
    def text_models(self) -> tuple[Path, Path] | None:
        """The bundle's text detector and recogniser (ONNX, cards beside them), when it reads labels."""
        if not (self.meta and self.meta.labels):
            return None
        return self.path / self.meta.labels.detector, self.path / self.meta.labels.recogniser

    @property
    def backend(self) -> str:
        """The backend the bundle asks for ("auto" for bundles written before engines existed)."""
        return str(self.manifest.get("backend", "auto"))

    @property
    def plans(self) -> list[Path]:
        """TensorRT plans carried by the bundle (each with its NAME.plan.json), in the author's order."""
        return [self.path / entry["plan"] for entry in self.manifest.get("engines", [])]

    @property
    def k(self) -> int:
        return self.meta.k

    @property
    def top(self) -> int:
        return self.meta.top

    @property
    def vote(self) -> int:
        """Visual top-m of the product vote (`runtime.search.two_stage.vote_by_product`); 0 = off (bundles before it)."""
        return self.meta.vote

    @property
    def products(self) -> "ProductsByRow":
        """The product (``group``) of each catalogue row, by row: what the product vote looks up."""
        return ProductsByRow(self.catalog)

    @property
    def levels(self) -> int:
        return self.meta.levels

    def picture(self, row: int) -> Path | None:
        """The catalogue picture of ``row`` carried in the bundle, or None (bundles built without pictures)."""
        if not self.manifest.get("pictures"):
            return None
        path = self.path / PICTURES_DIR / picture_name(row)
        return path if path.is_file() else None


class ProductsByRow:
    """``products[row]`` is catalogue row ``row``'s group, parsed on access (the vote reads ~10 rows a query)."""

    def __init__(self, catalog: Sequence[CatalogItem]) -> None:
        self._catalog = catalog

    def __len__(self) -> int:
        return len(self._catalog)

    def __getitem__(self, row: int) -> str:
        return self._catalog[row].group


def read_manifest(path: Path) -> Manifest:
    """Read and check manifest.json (types, ranges, file names inside the bundle) without touching other files."""
    if not path.is_dir():
        raise BundleError(f"{path}: not a bundle directory" if path.exists() else f"{path}: no such bundle")
    manifest_path = path / MANIFEST
    try:
        data = manifest_path.read_bytes()
        raw = json.loads(data.decode("utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{path}: no {MANIFEST}; not a shadematch bundle") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BundleError(f"{manifest_path}: unreadable manifest ({exc})") from None
    meta = Manifest.parse(raw, str(manifest_path), READABLE_VERSIONS, FORMAT_NAME)
    return dataclasses.replace(meta, sha256=hashlib.sha256(data).hexdigest())


def verify_files(path: Path, manifest: Manifest, checksums: bool = True) -> None:
    """Check that every file the manifest lists is a regular file inside the bundle (no symbolic link on the way:
    a bundle is read, never followed elsewhere) with its size and (optionally) sha256.

    Sizes first (cheap, and a truncated copy is the common fault), then all checksums side by side."""
    root = path.resolve()
    for name, entry in manifest.files.items():
        file_path = path / name
        inside = root.joinpath(*PurePosixPath(name).parts)
        if any(part.is_symlink() for part in (inside, *inside.parents) if part != root and root in part.parents):
            raise BundleError(f"{path}: {name} is a symbolic link or lies under one; a bundle holds its own files")
        if not file_path.is_file():
            raise BundleError(f"{path}: {name} is missing")
        size = file_path.stat().st_size
        if size != entry.bytes:
            raise BundleError(f"{path}: {name} is {size} bytes, the manifest says {entry.bytes}")
    if not checksums:
        return
    names = list(manifest.files)
    for name, digest in zip(names, sha256_files([path / name for name in names])):
        if digest != manifest.files[name].sha256:
            raise BundleError(f"{path}: checksum mismatch for {name}; the file was modified or corrupted")


def open_bundle(path: str | Path, verify: bool = True, timings: dict[str, float] | None = None) -> Bundle:
    """Open a bundle directory; ``verify=False`` skips the sha256 pass (sizes are still checked).

    ``timings``, when given, receives the seconds each part took (checks, catalogue, vectors, index, text map):
    at 500K items that is where a kiosk's start-up goes."""
    path = Path(path)
    clock = _Stopwatch(timings)
    meta = read_manifest(path)
    manifest = meta.raw
    verify_files(path, meta, checksums=verify)
    clock.lap("verify_s")
    for required in (MODEL_FILE, CARD_FILE, VECTORS_FILE, TEXT_MAP_FILE, CATALOG_FILE):
        if required not in manifest["files"]:
            raise BundleError(f"{path}: the manifest does not list {required}")
    try:
        card = ModelCard.load(path / CARD_FILE)
    except ModelCardError as exc:
        raise BundleError(str(exc)) from None
    if card.sha256 != manifest["files"][MODEL_FILE]["sha256"]:
        raise BundleError(f"{path}: the model card's sha256 does not match {MODEL_FILE}")
    _check_engines(path, manifest, card)
    catalog = CatalogRows(path / CATALOG_FILE)
    clock.lap("catalog_s")
    try:
        vectors = np.load(path / VECTORS_FILE, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path}: {VECTORS_FILE} is not a valid array ({exc})") from None
    dim = meta.dim
    projection = _load_projection(path, manifest, card)
    if vectors.ndim != 2 or vectors.shape != (len(catalog), dim) or vectors.dtype != np.float32:
        raise BundleError(
            f"{path}: {VECTORS_FILE} is {vectors.dtype} {vectors.shape}, expected float32 ({len(catalog)}, {dim})"
        )
    if meta.items != len(catalog):
        raise BundleError(f"{path}: {CATALOG_FILE} has {len(catalog)} rows, the manifest says {meta.items}")
    clock.lap("vectors_s")
    index = VisualIndex.load(vectors, path / meta.index_file if meta.index_file else None, meta.index,
                             path / meta.index_rows if meta.index_rows else None)
    clock.lap("index_s")
    text_map = TextNeighbours.load(path / TEXT_MAP_FILE)
    clock.lap("text_map_s")
    if len(text_map) != len(catalog):
        raise BundleError(f"{path}: {TEXT_MAP_FILE} covers {len(text_map)} rows, the catalogue has {len(catalog)}")
    labels = _load_labels(path, meta, len(catalog))
    clock.lap("labels_s")
    confidence = _load_confidence(path, manifest, dim)
    return Bundle(path, manifest, card, path / MODEL_FILE, catalog, index, text_map, projection, meta, labels,
                  confidence)


def _load_confidence(path: Path, manifest: dict[str, Any], dim: int) -> ConfidenceModel | None:
    """The confidence model the manifest names (optional: older bundles answer without one), checked."""
    info = manifest.get("confidence")
    if info is None:
        return None
    if not isinstance(info, dict) or info.get("file") != CONFIDENCE_FILE or CONFIDENCE_FILE not in manifest["files"]:
        raise BundleError(f"{path}: the manifest's confidence section does not name the listed file {CONFIDENCE_FILE}")
    return ConfidenceModel.load(path / CONFIDENCE_FILE, dim)


def _load_labels(path: Path, meta: Manifest, rows: int) -> LabelIndex | None:
    """The label index, checked to cover the catalogue's rows; the reading models' cards must be beside them."""
    if meta.labels is None:
        return None
    labels = LabelIndex.load(path / meta.labels.file)
    if len(labels.row_product) != rows:
        raise BundleError(f"{path}: {meta.labels.file} covers {len(labels.row_product)} rows, the catalogue has {rows}")
    for model in (meta.labels.detector, meta.labels.recogniser):
        card = card_path_for(path / model)
        if str(card.relative_to(path)) not in meta.files:
            raise BundleError(f"{path}: the manifest does not list {card.relative_to(path)}, the card of {model}")
    return labels


def _load_projection(path: Path, manifest: dict[str, Any], card: ModelCard) -> Projection | None:
    """The bundle's projection, checked against the model (its input) and the index (its output)."""
    info = manifest["descriptor"].get("projection")
    if info is None:
        return None
    if info.get("file") != PROJECTION_FILE or PROJECTION_FILE not in manifest["files"]:
        raise BundleError(f"{path}: the manifest's projection does not name the listed file {PROJECTION_FILE}")
    projection = Projection.load(path / PROJECTION_FILE)
    dim = int(manifest["descriptor"]["dim"])
    if projection.in_dim != card.feature_dim or projection.out_dim != dim:
        raise BundleError(f"{path}: {PROJECTION_FILE} maps {projection.in_dim} -> {projection.out_dim} dims; the model "
                          f"gives {card.feature_dim} and the index holds {dim}")
    return projection


def _check_engines(path: Path, manifest: dict[str, Any], card: ModelCard) -> None:
    """Engines are optional (format 1 bundles written before them have none); when present, every plan and
    sidecar is listed (so checksummed), describes the bundle's model, and nothing unlisted sits beside them
    (the TensorRT backend would otherwise consider it)."""
    backend = manifest.get("backend", "auto")
    if backend not in BACKENDS:
        raise BundleError(f"{path}: unknown backend {backend!r} in the manifest (known: {', '.join(BACKENDS)})")
    entries = manifest.get("engines", [])
    if not isinstance(entries, list):
        raise BundleError(f"{path}: section 'engines' is malformed")
    listed = set()
    for entry in entries:
        try:
            plan, sidecar = entry["plan"], entry["manifest"]
        except (KeyError, TypeError):
            raise BundleError(f"{path}: malformed engines entry {entry!r}") from None
        for name in (plan, sidecar):
            if name not in manifest["files"]:
                raise BundleError(f"{path}: the manifest does not list {name}")
            listed.add(name)
        try:
            plan_manifest = PlanManifest.load(path / sidecar)
        except BackendError as exc:
            raise BundleError(str(exc)) from None
        if plan_manifest.onnx_sha256 != card.sha256:
            raise BundleError(f"{path}: {plan} was built from another model than {MODEL_FILE}")
    engines_dir = path / ENGINES_DIR
    if engines_dir.is_dir():
        unlisted = sorted(p.relative_to(path).as_posix() for p in engines_dir.rglob("*") if p.is_file()
                          and p.relative_to(path).as_posix() not in listed)
        if unlisted:
            raise BundleError(f"{path}: files in {ENGINES_DIR}/ that the manifest does not list: {', '.join(unlisted)}")


class _Stopwatch:
    """Records the seconds since the previous lap into ``timings`` (does nothing when it is None)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[name] = now - self._last
        self._last = now
