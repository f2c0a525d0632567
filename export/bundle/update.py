"""`shadematch update`: a new version of a bundle from the old one and a delta (rows added, removed, replaced),
without running the CNN on the rows that stay.

What is recomputed and what is carried over:
- descriptors (and the words on the labels): only the added rows', with the bundle's own model, projection and
  label reader; a single-image product among them gets its store-like views averaged in, as `build` does;
- the HNSW graph is extended (runtime.search.index.VisualIndex.updated: removed rows marked deleted, added rows
  inserted), or rebuilt from the stored vectors when that is due;
- the text map: recomputed below `export.bundle.textmap.FULL_MAP_BELOW` titles or with ``full_text_map``, else updated
  for the added titles (`export.bundle.textmap.update_text_map`, which says what drifts);
- the label index is remade from the words stored for every row (no reading of old images);
- an adapted projection learned from the catalogue's own images is re-fitted on the final catalogue from the rows
  stored before projection (no CNN: `adaptation.npz`), and every row re-projected and re-indexed, as `build`
  would, below REFIT_BELOW rows; otherwise (and always for a PCA, or a projection that needed store-like views of
  single-image products) it stays the one the bundle was built with, and `info` shows how many rows came since;
- catalogue rows and pictures: old pictures are copied, new ones made.
The manifest records the parent bundle (the sha256 of its manifest) and what changed. Written atomically through
`runtime.bundle.write`; the old bundle is never touched.
"""
from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import numpy as np

from runtime.backends import open_backend
from runtime.bundle import Bundle, open_bundle
from runtime.bundle.adaptation import load_adaptation
from runtime.bundle.catalog import CatalogItem
from runtime.bundle.layout import ADAPTATION_FILE
from runtime.bundle.write import LabelsToWrite, check_target, write_bundle
from runtime.describe.embedder import Embedder
from runtime.describe.pooling import l2_normalize
from runtime.errors import CatalogError
from runtime.feedback.store import FeedbackStore
from runtime.memory import release_rows, trim
from runtime.search.index import VisualIndex

from .adapt import store_like_views
from .build import add_confidence, catalogue_reader, describe_rows, read_titles
from .catalog import CatalogRow, LoadedCatalog, read_catalog_csv, settle_problems
from .confidence import CalibrationOptions
from .features import Reads
from .feedback import ID_PREFIX as FEEDBACK_ID_PREFIX
from .feedback import FeedbackRows, feedback_rows
from .labels import label_index
from .projection import learn_adapted_projection
from .textmap import FULL_MAP_BELOW, TextMapParams, build_text_map, update_text_map

#: Below this many rows an update re-fits an adapted projection (a closed-form fit and a re-index: seconds), so it
#: answers as a build of the final catalogue does.
REFIT_BELOW = 50_000


@dataclass(frozen=True)
class UpdateOptions:
    backend: str = "auto"
    threads: int | None = None
    batch_size: int = 32
    #: Worker processes for the added rows' descriptors (0: this process), as `build --workers`.
    workers: int = 0
    skip_bad: bool = False
    overwrite: bool = False
    #: Recompute the whole text map (else only below FULL_MAP_BELOW titles).
    full_text_map: bool = False
    #: Re-fit an adapted projection on the final catalogue: None = when it can be done without the CNN and the
    #: catalogue is below REFIT_BELOW rows; False = never; True = or fail saying why not.
    refit: bool | None = None
    progress: bool = True


@dataclass(frozen=True)
class Delta:
    """Rows to add (replacements included) and ids to remove (replaced ones included)."""

    add: list[CatalogRow]
    remove: set[str]
    replaced: set[str]


@dataclass(frozen=True)
class UpdateReport:
    out: Path
    items: int
    added: int
    removed: int
    replaced: int
    skipped: int
    index: str
    text_map: str
    seconds: float
    #: Seconds per step: open (with the sha256 pass), describe (the model on the added rows), index, text_map,
    #: labels, write (bundle files and their sha256).
    steps: dict
    #: What `--feedback` added and left out (export.bundle.feedback.FeedbackRows.to_dict), or None.
    feedback: dict | None = None

    def to_dict(self) -> dict:
        return {**asdict(self), "out": str(self.out)}


def read_delta(ids: Sequence[str], add: Path | None, remove: Path | None, replace: Path | None,
               skip_bad: bool = False, extra: Sequence[CatalogRow] = ()) -> tuple[Delta, int]:
    """The delta against a catalogue of ``ids``, and how many bad rows were skipped; a CatalogError names any id that
    is added twice, added though present, or removed or replaced though absent. ``extra``: added rows read
    elsewhere (`--add-vectors`)."""
    present = set(ids)
    added, replaced, skipped = list(extra), [], 0
    for path, target in ((add, added), (replace, replaced)):
        if path is None:
            continue
        rows, problems = read_catalog_csv(path)
        settle_problems(path, problems, skip_bad)
        skipped += len(problems)
        target.extend(rows)
    removed = _read_ids(remove) if remove is not None else []
    twice = [i for i, n in Counter([r.id for r in added] + [r.id for r in replaced]).items() if n > 1]
    twice += [i for i, n in Counter(removed).items() if n > 1]
    if twice:
        raise CatalogError(f"the delta names id {twice[0]!r} twice")
    for row in added:
        if row.id in present:
            raise CatalogError(f"{add} line {row.line}: id {row.id!r} is already in the bundle (--replace changes it)")
    for row in replaced:
        if row.id not in present:
            raise CatalogError(f"{replace} line {row.line}: cannot replace {row.id!r}: not in the bundle")
    for item in removed:
        if item not in present:
            raise CatalogError(f"{remove}: cannot remove {item!r}: not in the bundle")
    both = {r.id for r in replaced} & set(removed)
    if both:
        raise CatalogError(f"id {sorted(both)[0]!r} is both removed and replaced")
    return Delta(added + replaced, set(removed) | {r.id for r in replaced}, {r.id for r in replaced}), skipped


def feed_delta(old_items: Sequence[CatalogItem], rows: Sequence[CatalogRow], extra: Sequence[CatalogRow] = ()) -> Delta:
    """The delta that makes the bundle the feed's catalogue: rows new to it are added, rows whose image (its
    content: the image cache names blobs by their sha256), title, words, group or fields changed are replaced, and
    rows the feed no longer has are removed, except feedback rows of products it still has (they are the store's
    own photos, which no feed lists). ``extra``: feedback rows to add too."""
    old = {item.id: item for item in old_items}
    new = {row.id: row for row in rows}
    products = {row.group for row in rows}
    replaced = [row for row_id, row in new.items() if row_id in old and old[row_id] != row.item()]
    removed = {item.id for item in old_items if item.id not in new
               and not (item.id.startswith(FEEDBACK_ID_PREFIX) and item.group in products)}
    added = [row for row_id, row in new.items() if row_id not in old] + list(extra)
    return Delta(added + replaced, removed | {row.id for row in replaced}, {row.id for row in replaced})


def _read_ids(path: Path) -> list[str]:
    """One id per line; blank lines are skipped."""
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path}: cannot be read ({exc})") from None


def update_bundle(bundle_path: Path, out: Path, add: Path | None = None, remove: Path | None = None,
                  replace: Path | None = None, options: UpdateOptions = UpdateOptions(),
                  add_vectors: Path | None = None, feedback: Path | None = None,
                  feed: LoadedCatalog | None = None) -> UpdateReport:
    """Write ``out``: the bundle at ``bundle_path`` changed by the delta (see the module's docstring).
    ``add_vectors``: descriptors of the ``add`` rows computed elsewhere (as `build-vectors` takes them; ``add`` is
    then a titles CSV id,title[,group[,image]] in the same order), so the model does not run at all.
    ``feedback``: a kiosk's feedback database, whose confirmed photos are added too (export.bundle.feedback).
    ``feed``: a product feed, read (export.feeds.catalog.load_feed): the whole catalogue the bundle is to become
    (feed_delta)."""
    with tempfile.TemporaryDirectory(prefix=".feedback-") as staging:
        return _update(bundle_path, out, add, remove, replace, options, add_vectors, feedback, Path(staging), feed)


def _update(bundle_path: Path, out: Path, add: Path | None, remove: Path | None, replace: Path | None,
            options: UpdateOptions, add_vectors: Path | None, feedback_db: Path | None, staging: Path,
            feed: LoadedCatalog | None) -> UpdateReport:
    started = time.perf_counter()
    steps: dict[str, float] = {}
    lap = _Laps(steps)
    if add is None and remove is None and replace is None and feedback_db is None and feed is None:
        raise CatalogError("nothing to change: give --add, --remove, --replace, --feed or --feedback")
    if feed is not None and (add is not None or remove is not None or replace is not None):
        raise CatalogError("--feed is the whole catalogue: give it without --add, --remove or --replace")
    if add_vectors is not None and (add is None or replace is not None or feedback_db is not None):
        raise CatalogError("--add-vectors goes with --add (the titles of those rows), without --replace or --feedback")
    check_target(out, options.overwrite)
    bundle = open_bundle(bundle_path)
    old_items = list(bundle.catalog)
    lap("open")
    fed = FeedbackRows()
    if feedback_db is not None:
        fed = feedback_rows(bundle, FeedbackStore(feedback_db, create=False), staging)
        if not fed.rows and add is None and remove is None and replace is None and feed is None:
            raise CatalogError(f"nothing to change: {feedback_db} holds no confirmed photo to add "
                               f"({json.dumps(fed.to_dict())})")
    given: list[CatalogItem] | None = None
    if add_vectors is not None:
        given, rows, raw = _given(add, add_vectors, bundle)
        delta, skipped = read_delta([item.id for item in old_items], None, remove, None, options.skip_bad, extra=rows)
        reads, problems = ([[] for _ in rows] if bundle.labels is not None else None), []
    elif feed is not None:
        settle_problems(feed.source, feed.problems, options.skip_bad)
        delta, skipped = feed_delta(old_items, feed.rows, extra=fed.rows), len(feed.problems)
        raw, rows, problems, reads = _describe(bundle, delta.add, options)
    else:
        delta, skipped = read_delta([item.id for item in old_items], add, remove, replace, options.skip_bad,
                                    extra=fed.rows)
        raw, rows, problems, reads = _describe(bundle, delta.add, options)
    keep = np.array([row for row, item in enumerate(old_items) if item.id not in delta.remove], dtype=np.int64)
    settle_problems(add or replace or (feed.source if feed is not None else None), problems, options.skip_bad)
    skipped += len(problems)
    # a shopper's photo is shown by its product's catalogue picture (export.bundle.feedback)
    shown = {row_id: old_items[row] for row_id, row in fed.shown.items()}
    items = [old_items[row] for row in keep] + (given if given is not None else [
        r.item(shown[r.id].image if r.id in shown else None) for r in rows])
    if not items:
        raise CatalogError("the update would leave the catalogue empty")
    raw = _with_views(bundle, raw, rows, items, len(keep), options)
    added = bundle.projection.apply(raw) if bundle.projection is not None else raw
    lap("describe")
    # the text map before the index: its transient arrays then never sit beside the index's new vector matrix
    params = _text_params(bundle)
    titles = [item.words for item in items]
    full_map = options.full_text_map or len(items) < FULL_MAP_BELOW
    text_map = build_text_map(titles, params) if full_map else update_text_map(bundle.text_map, keep, titles, params)
    del titles
    for array in (bundle.text_map.indptr, bundle.text_map.indices, bundle.text_map.similarity):
        release_rows(array, 0, len(array))  # the old map, memory-mapped, read once
    trim()  # the text map's temporaries go back to the system before the index's new matrix is made
    lap("text_map")
    graph_before = bundle.index.kind == "hnsw"
    refitted = _refit(bundle, keep, raw, items, options)
    if refitted is not None:
        projection_new, info_new, scatter, before = refitted
        index = VisualIndex.build(projection_new.apply(before), bundle.index.params, threads=options.threads or -1)
    else:
        index = bundle.index.updated(keep, added, threads=options.threads or -1)
    extended = graph_before and index.label_rows is not None
    lap("index")
    labels = _labels(bundle, keep, items, reads)
    lap("labels")
    manifest = bundle.manifest
    projection = None
    if refitted is not None:
        adaptation = (scatter, before)
        projection = (projection_new, info_new)
    else:
        adaptation = _adaptation(bundle, keep, raw)
    if bundle.projection is not None and refitted is None:
        info = {k: v for k, v in manifest["descriptor"]["projection"].items() if k not in ("file", "refit")}
        info["rows_added_since_fit"] = int(info.get("rows_added_since_fit", 0)) + len(rows)
        projection = (bundle.projection, info)
    carried = None
    if manifest.get("pictures"):
        carried = [bundle.picture(int(row)) for row in keep] + [
            bundle.picture(fed.shown[r.id]) if r.id in fed.shown else None for r in rows]
    changes = {"added": len(rows) - len(delta.replaced), "removed": len(delta.remove) - len(delta.replaced),
               "replaced": len(delta.replaced)}
    lineage = {
        "parent": {"path": str(Path(bundle_path).resolve()), "manifest_sha256": bundle.meta.sha256,
                   "items": len(old_items), "created": manifest.get("created")},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **changes,
        "index": "extended" if extended else "rebuilt" if index.kind == "hnsw" else "exact",
        "projection": "refitted" if refitted is not None else "kept" if bundle.projection is not None else "none",
        "deleted_in_graph": index.deleted,
        "text_map": "full" if full_map else "incremental",
        "updates_since_build": int((manifest.get("lineage") or {}).get("updates_since_build", 0)) + 1,
    }
    write_bundle(
        out, model_path=bundle.model_path, card=bundle.card, items=items, index=index, text_map=text_map,
        text_params=params.to_dict(), levels=bundle.levels, k=bundle.k, top=bundle.top, vote=bundle.vote,
        plans=bundle.plans, backend=bundle.backend, pictures=bool(manifest.get("pictures")),
        overwrite=options.overwrite, projection=projection, adaptation=adaptation, labels=labels,
        carried_pictures=carried, lineage=lineage, query_views=bundle.query_views,
        # the confidence model weighs descriptors: it holds while their space does, and is fitted again when not
        confidence=(bundle.confidence, manifest["confidence"]) if bundle.confidence and refitted is None else None,
    )
    lap("write")
    # the shoppers' photos, confirmed or "not here", teach the confidence model as `tune`'s labelled photos do
    labelled = [(r.image, r.group) for r in rows if r.id in fed.shown] + [(photo, None) for photo in fed.not_here]
    if bundle.confidence is not None and (refitted is not None or labelled):
        add_confidence(Path(out), CalibrationOptions.recorded(manifest.get("confidence")), options.threads,
                       labelled=labelled)
        lap("confidence")
    return UpdateReport(Path(out), len(items), changes["added"], changes["removed"], changes["replaced"], skipped,
                        lineage["index"], lineage["text_map"], time.perf_counter() - started,
                        {name: round(seconds, 2) for name, seconds in steps.items()},
                        fed.to_dict() if feedback_db is not None else None)


class _Laps:
    """Seconds since the previous lap, by step name."""

    def __init__(self, steps: dict[str, float]) -> None:
        self.steps = steps
        self.last = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.steps[name] = now - self.last
        self.last = now


def _given(titles: Path, vectors_npy: Path, bundle: Bundle) -> tuple[list[CatalogItem], list[CatalogRow], np.ndarray]:
    """Rows of a titles CSV (as catalogue items, and as delta rows) and their descriptors from a .npy, checked like
    `build-vectors` checks them."""
    items = read_titles(titles)
    try:
        raw = np.load(vectors_npy, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CatalogError(f"{vectors_npy}: not a readable .npy array ({exc})") from None
    width = bundle.card.feature_dim if bundle.projection is not None else bundle.index.dim
    if raw.dtype != np.float32 or raw.shape != (len(items), width):
        raise CatalogError(f"{vectors_npy}: {raw.dtype} {raw.shape} does not match {len(items)} rows of {titles} "
                           f"(need float32 ({len(items)}, {width}))")
    if not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-3):
        raise CatalogError(f"{vectors_npy}: rows are not L2-normalised descriptors")
    rows = [CatalogRow(line, item.id, Path(item.image), item.title, item.group, item.fields, item.text)
            for line, item in enumerate(items, start=2)]
    return items, rows, raw


def _describe(bundle: Bundle, rows: list[CatalogRow], options: UpdateOptions
              ) -> tuple[np.ndarray, list[CatalogRow], list, Reads | None]:
    """Raw descriptors of the added rows with the bundle's model (and the words on them, when the bundle reads
    labels), as `build` describes rows (in ``options.workers`` processes when more than one)."""
    if not rows:
        return np.zeros((0, bundle.card.feature_dim), np.float32), [], [], [] if bundle.labels is not None else None
    return describe_rows(rows, bundle.model_path, bundle.card, bundle.levels,
                         catalogue_reader(bundle.text_models) if bundle.labels is not None else None,
                         backend=options.backend,
                         threads=options.threads, batch_size=options.batch_size,
                         workers=options.workers if options.workers > 1 else 0, progress=options.progress)


def _with_views(bundle: Bundle, raw: np.ndarray, rows: list[CatalogRow], items: list[CatalogItem], first: int,
                options: UpdateOptions) -> np.ndarray:
    """The added rows as `build` would index them: a product with one image in the final catalogue gets its
    store-like views averaged in, when the bundle was built that way."""
    info = bundle.manifest["descriptor"].get("projection") or {}
    views = int(info.get("views_per_image") or 0)
    if not views or not info.get("view_averaged_rows") or not len(raw):
        return raw
    sizes = Counter(item.group for item in items)
    single = [i for i, row in enumerate(rows) if sizes[row.group] == 1]
    if not single:
        return raw
    raw = raw.copy()
    size = max(bundle.card.input.height, bundle.card.input.width)
    with open_backend(bundle.model_path, options.backend, threads=options.threads) as backend:
        embedder = Embedder(backend, bundle.card, bundle.levels)
        for i in single:
            shots = store_like_views(str(rows[i].image), views, size, int(info.get("seed", 0)), first + i)
            raw[i] = l2_normalize(raw[i] + embedder.embed(shots, batch_size=16).sum(axis=0))
    return raw


def _refit(bundle: Bundle, keep: np.ndarray, raw: np.ndarray, items: list[CatalogItem], options: UpdateOptions):
    """The adapted projection re-fitted on the final catalogue (projection, what to record, scatter, rows before
    projection), or None when it stays as it is (see UpdateOptions.refit)."""
    info = bundle.manifest["descriptor"].get("projection") or {}
    sizes = Counter(item.group for item in items)
    why = (None if info.get("kind") == "adapted" and info.get("refit") == ADAPTATION_FILE else
           "the bundle's projection is not an adapted one with its rows stored")
    if why is None and (info.get("images_with_views") or min(sizes.values()) < 2):
        why = "a product has a single image: its store-like views need the model"
    if options.refit is False or (options.refit is None and (why or len(items) >= REFIT_BELOW)):
        return None
    if why:
        raise CatalogError(f"cannot re-fit the projection: {why}")
    _, stored = load_adaptation(bundle.path / ADAPTATION_FILE)
    before = np.concatenate([stored[keep], raw.astype(np.float32)])
    # every separating direction, unless the build kept fewer (--reduce-dim)
    dims = 0 if info.get("out_dim") == info.get("groups", 0) - 1 else int(info.get("out_dim") or 0)
    projection, fitted, scatter = learn_adapted_projection(before, [item.group for item in items],
                                                           float(info["shrinkage"]), dims, seed=int(info.get("seed", 0)))
    fitted.update({"views_per_image": 0, "images_with_views": 0, "view_averaged_rows": 0,
                   "seed": int(info.get("seed", 0)), "variation_from": "images", "refitted_by_update": True})
    return projection, fitted, scatter, before


def _text_params(bundle: Bundle) -> TextMapParams:
    """The text map's parameters as the bundle recorded them (the fields TextMapParams knows)."""
    recorded = bundle.manifest.get("text_map") or {}
    known = TextMapParams().to_dict()
    return TextMapParams(**{key: recorded[key] for key in known if key in recorded})


def _labels(bundle: Bundle, keep: np.ndarray, items: list[CatalogItem], reads: Reads | None) -> LabelsToWrite | None:
    """The label index of the final catalogue, from the words stored for the kept rows and read on the added ones."""
    if bundle.labels is None:
        return None
    old = bundle.labels.reads.by_row(len(bundle.catalog))
    final_reads = [old[int(row)] for row in keep] + list(reads or [])
    detector, recogniser = bundle.text_models
    return LabelsToWrite(label_index(items, final_reads), detector, recogniser, bundle.label_weight)


def _adaptation(bundle: Bundle, keep: np.ndarray, raw: np.ndarray):
    """The adapted projection's scatter (as fitted) and the rows before projection of the final catalogue."""
    info = bundle.manifest["descriptor"].get("projection") or {}
    if info.get("refit") != ADAPTATION_FILE:
        return None
    scatter, rows = load_adaptation(bundle.path / ADAPTATION_FILE)
    return scatter, np.concatenate([rows[keep], raw.astype(np.float32)])


__all__ = ["UpdateOptions", "UpdateReport", "read_delta", "update_bundle"]
