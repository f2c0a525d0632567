"""`shadematch build`: catalogue CSV -> descriptors -> HNSW index + text map -> bundle."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from runtime.backends import open_backend
from runtime.bundle import sha256_file
from runtime.catalog import CatalogItem
from runtime.embedder import Embedder
from runtime.errors import BundleError, CatalogError, ModelCardError
from runtime.index import IndexParams, VisualIndex
from runtime.modelcard import ModelCard, card_path_for
from runtime.pooling import DEFAULT_LEVELS

from .bundle import write_bundle
from .catalog import read_catalog_csv, settle_problems
from .features import extract_features
from .textmap import TextMapParams, build_text_map

ENGINES = Path(__file__).resolve().parents[1] / "engines"
#: MANet (seed 002) trained by the project: better than the ImageNet trunk in both Grocery protocols
#: (engines/manet_lite0.md); the ImageNet trunk stays shipped as the untrained baseline.
DEFAULT_MODEL = ENGINES / "manet_lite0.onnx"


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
    k: int = 3
    top: int = 7
    #: Visual top-m whose product vote picks the first result (runtime.search.vote_by_product); 0 = off.
    vote: int = 10
    levels: int = DEFAULT_LEVELS
    index: IndexParams = field(default_factory=IndexParams)
    text: TextMapParams = field(default_factory=TextMapParams)
    progress: bool = True
    engines: tuple[Path, ...] = ()  # TensorRT plans of the model to carry (`shadematch engine build`)
    bundle_backend: str = "auto"  # the backend the bundle asks for when opened


@dataclass(frozen=True)
class BuildReport:
    out: Path
    items: int
    skipped: int
    seconds: float


def build_bundle(catalog_csv: Path, out: Path, options: BuildOptions = BuildOptions()) -> BuildReport:
    """Index a catalogue into a bundle at ``out``; bad rows abort unless ``options.skip_bad``."""
    started = time.perf_counter()
    if Path(out).exists() and not options.overwrite:
        raise BundleError(f"{out} already exists (use --force to replace it)")
    if not 1 <= options.k <= options.top:
        raise ValueError(f"need 1 <= k <= top, got k={options.k}, top={options.top}")
    if options.vote < 0:
        raise ValueError(f"need vote >= 0, got {options.vote}")
    rows, problems = read_catalog_csv(catalog_csv)
    settle_problems(catalog_csv, problems, options.skip_bad)
    card = load_checked_card(options.model)
    with open_backend(options.model, options.backend, threads=options.threads) as backend:
        embedder = Embedder(backend, card, options.levels)
        vectors, kept, image_problems = extract_features(
            rows, embedder, options.batch_size, workers=options.threads or 2, progress=options.progress
        )
    settle_problems(catalog_csv, image_problems, options.skip_bad)
    if not kept:
        raise CatalogError(f"{catalog_csv}: no usable catalogue rows")
    index = VisualIndex.build(vectors, options.index)
    text_map = build_text_map([row.title for row in kept], options.text)
    items = [CatalogItem(row.id, row.title, str(row.image), row.group) for row in kept]
    write_bundle(
        out, model_path=options.model, card=card, items=items, index=index, text_map=text_map,
        text_params=options.text.to_dict(), levels=options.levels, k=options.k, top=options.top, vote=options.vote,
        plans=options.engines, backend=options.bundle_backend, overwrite=options.overwrite,
    )
    skipped = len(problems) + len(image_problems)
    return BuildReport(Path(out), len(items), skipped, time.perf_counter() - started)
