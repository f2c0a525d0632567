"""`shadematch tune`: a bundle's search settings chosen by measurement on the user's own labelled photos.

What it chooses: the adapted projection's shrinkage (when the bundle carries what re-fitting needs,
`adaptation.npz`), the product vote's m and Algorithm 1's k, and then, for a bundle that reads labels, the weight
of the words read (runtime.search.fusion) at that setting, by mAP@7 (the Perfect-500K challenge's metric, as
`shadematch eval` reports it), ties to the higher top-1 and then to the bundle's current setting. Every
candidate is scored on one set of query descriptors (the model runs once per photo), with exact search, so
the choice does not depend on HNSW's approximation. The tuned bundle is written beside the old one, atomically;
the old one is never touched.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from runtime import bundle as layout
from runtime.backends import open_backend
from runtime.bundle import Bundle, open_bundle
from runtime.bundle.adaptation import load_adaptation
from runtime.bundle.write import derive_bundle
from runtime.describe.embedder import Embedder
from runtime.describe.projection import Projection
from runtime.errors import CatalogError
from runtime.reading.photos import decode_photos, describe_and_read
from runtime.reading.reader import LabelReader
from runtime.search.fusion import TextEvidence
from runtime.search.index import IndexParams, VisualIndex
from runtime.search.two_stage import two_stage_search
from runtime.tools.evaluate import Query, read_queries
from runtime.tools.metrics import average_precision_at_k, mean

from .build import add_confidence
from .confidence import CalibrationOptions
from .projection import adapted_projection

SHRINKAGES = (0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
KS = (0, 1, 2, 3, 4, 5, 6)
VOTES = (0, 5, 10, 20)
LABEL_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
TOP = 7


@dataclass(frozen=True)
class Setting:
    """One candidate: shrinkage (None: the bundle's projection as it is), k, vote and the weight of the words read
    (None: the bundle reads no labels), and what it scored."""

    shrinkage: float | None
    k: int
    vote: int
    label_weight: float | None = None
    map7: float = 0.0
    top1: float = 0.0

    def key(self) -> tuple[float | None, int, int, float | None]:
        return self.shrinkage, self.k, self.vote, self.label_weight


@dataclass(frozen=True)
class TuneReport:
    out: Path
    queries: int
    chosen: Setting
    current: Setting
    table: list[Setting]

    def to_dict(self) -> dict:
        return {"out": str(self.out), "queries": self.queries, "chosen": asdict(self.chosen),
                "current": asdict(self.current), "table": [asdict(s) for s in self.table]}


def tune(bundle_path: Path, queries_csv: Path, out: Path, *, backend: str | None = None, threads: int | None = None,
         overwrite: bool = False, shrinkages: Sequence[float] = SHRINKAGES, ks: Sequence[int] = KS,
         votes: Sequence[int] = VOTES, label_weights: Sequence[float] = LABEL_WEIGHTS) -> TuneReport:
    """Score every setting on ``queries_csv`` and write the bundle with the best one to ``out``."""
    bundle = open_bundle(bundle_path)
    queries = read_queries(queries_csv)
    words = None
    with open_backend(bundle.model_path, backend or bundle.backend, threads=threads) as model:
        embedder = Embedder(model, bundle.card, bundle.levels, views=bundle.query_views)  # as the bundle's queries
        if bundle.labels is not None:
            with LabelReader.open(*bundle.text_models, threads=threads) as reader:
                raw_queries, read = describe_and_read(embedder, reader, decode_photos([q.image for q in queries]))
            words = [[(w.text, w.confidence) for w in row] for row in read]
        else:
            raw_queries = embedder.embed([q.image for q in queries])
    weight = bundle.label_weight if words is not None else None
    groups = [bundle.products[row] for row in range(len(bundle.catalog))]
    sizes = Counter(groups)
    # photos of products the catalogue lacks are scored by no setting (as `eval` leaves them out); they only teach
    # the confidence model "not found" (below)
    labelled = [(q.image, q.group if q.group in sizes else None) for q in queries]
    known = [i for i, q in enumerate(queries) if q.group in sizes]
    if not known:
        raise CatalogError(f"{queries_csv}: none of the queries shows a product of the bundle's catalogue: their group "
                           "column must name the catalogue's groups")
    queries, raw_queries = [queries[i] for i in known], raw_queries[known]
    words = [words[i] for i in known] if words is not None else None
    refit = _refit_source(bundle)
    current_shrinkage = bundle.manifest["descriptor"].get("projection", {}).get("shrinkage") if refit else None
    candidates: list[tuple[float | None, Projection | None, np.ndarray]] = []
    if refit is None:
        candidates.append((None, bundle.projection, bundle.index.vectors))
    else:
        scatter, raw_rows = refit
        for shrinkage in sorted({*shrinkages, current_shrinkage}):
            projection = adapted_projection(scatter, shrinkage, bundle.projection.out_dim)
            candidates.append((shrinkage, projection, projection.apply(raw_rows)))
    table = []
    for shrinkage, projection, rows in candidates:
        descriptors = projection.apply(raw_queries) if projection is not None else raw_queries
        index = VisualIndex.build(rows, IndexParams(exact_below=len(rows) + 1))
        for k in ks:
            for vote in votes if k else (0,):  # the vote reorders the first stage only when Algorithm 1 runs
                table.append(_score(Setting(shrinkage, k, vote, weight), descriptors, index, bundle, queries, groups,
                                    sizes, words))
    current = next(s for s in table if s.key() == (current_shrinkage, bundle.k, bundle.vote if bundle.k else 0, weight))
    chosen = _best(table, current)
    projection, rows = next((p, r) for s, p, r in candidates if s == chosen.shrinkage)
    if words is not None:  # the weight of the words, at the setting chosen with the bundle's weight
        descriptors = projection.apply(raw_queries) if projection is not None else raw_queries
        index = VisualIndex.build(rows, IndexParams(exact_below=len(rows) + 1))
        for label_weight in sorted(set(label_weights) - {weight}):
            setting = Setting(chosen.shrinkage, chosen.k, chosen.vote, float(label_weight))
            table.append(_score(setting, descriptors, index, bundle, queries, groups, sizes, words))
        chosen = _best(table, current)
    _write(bundle, out, chosen, current, projection, rows, len(queries), queries_csv, overwrite)
    # the confidence follows the store's own photos (and the chosen projection's space); photos of products the
    # catalogue does not hold teach "not found" (measured: benchmarks/grocery/README.md, "No matching product")
    add_confidence(Path(out), CalibrationOptions.recorded(bundle.manifest.get("confidence")), threads,
                   labelled=labelled)
    return TuneReport(Path(out), len(queries), chosen, current, table)


def _best(table: Sequence[Setting], current: Setting) -> Setting:
    """The highest mAP@7, ties to the higher top-1, then to the bundle's current setting."""
    return max(table, key=lambda s: (round(s.map7, 6), round(s.top1, 6), s.key() == current.key()))


def _refit_source(bundle: Bundle):
    """The adapted projection's scatter and rows before projection, when the bundle carries them."""
    info = bundle.manifest["descriptor"].get("projection") or {}
    if info.get("kind") != "adapted" or info.get("refit") != layout.ADAPTATION_FILE:
        return None
    return load_adaptation(bundle.path / layout.ADAPTATION_FILE)


def _score(setting: Setting, descriptors: np.ndarray, index: VisualIndex, bundle: Bundle, queries: Sequence[Query],
           groups: Sequence[str], sizes: Counter, words: Sequence[Sequence[tuple[str, float]]] | None = None) -> Setting:
    """mAP@7 and top-1 of one setting (the challenge's image-level ranking, as `eval` reports them)."""
    evidence = None
    if words is not None and setting.label_weight is not None:
        evidence = [TextEvidence.from_words(bundle.labels, row, setting.label_weight) for row in words]
    results = two_stage_search(descriptors, index, bundle.text_map, setting.k, TOP, setting.vote, groups,
                               evidence=evidence)
    aps = [average_precision_at_k([groups[h.row] == q.group for h in hits], sizes.get(q.group, 0), TOP)
           for q, hits in zip(queries, results)]
    firsts = [bool(hits) and groups[hits[0].row] == q.group for q, hits in zip(queries, results)]
    return Setting(setting.shrinkage, setting.k, setting.vote, setting.label_weight, mean(aps), mean(firsts))


def _write(bundle: Bundle, out: Path, chosen: Setting, current: Setting, projection: Projection | None,
           rows: np.ndarray, queries: int, queries_csv: Path, overwrite: bool) -> None:
    writers: dict[str, Callable[[Path], None]] = {}
    if chosen.shrinkage is not None and chosen.shrinkage != current.shrinkage:
        index = VisualIndex.build(rows, bundle.index.params)
        writers[layout.PROJECTION_FILE] = projection.save
        writers[layout.VECTORS_FILE] = lambda path: np.save(path, np.ascontiguousarray(rows, dtype=np.float32),
                                                            allow_pickle=False)
        if index.kind == "hnsw":
            writers[layout.INDEX_FILE] = index.save
            # a fresh graph labels rows as they are: an updated graph's label map goes
            writers[layout.INDEX_ROWS_FILE] = lambda path: path.unlink(missing_ok=True)

    def change(manifest: dict) -> None:
        manifest["search"].update({"k": chosen.k, "vote": chosen.vote})
        if layout.INDEX_FILE in writers:
            for key in ("rows", "deleted"):
                manifest["index"].pop(key, None)
        if chosen.shrinkage is not None:
            manifest["descriptor"]["projection"]["shrinkage"] = chosen.shrinkage
        if chosen.label_weight is not None:
            manifest["labels"]["weight"] = chosen.label_weight
        manifest["tuned"] = {
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "queries": queries,
            "queries_csv": queries_csv.name, "metric": "map7",
            "chosen": asdict(chosen), "before": asdict(current),
        }

    derive_bundle(bundle.path, out, writers, change, overwrite)


def print_table(report: TuneReport, rows: int = 12) -> None:
    """The settings ranked by mAP@7 (best ``rows``), then the bundle's current setting and the choice."""
    ranked = sorted(report.table, key=lambda s: (-round(s.map7, 6), -round(s.top1, 6), s.key() != report.current.key()))
    print(f"{len(report.table)} settings scored on {report.queries} labelled photos (mAP@7, exact search)")
    print(f"{'shrinkage':>9}  {'k':>2}  {'vote':>4}  {'words':>5}  {'mAP@7':>6}  {'top-1':>6}")
    for s in ranked[:rows]:
        mark = "  <- chosen" if s.key() == report.chosen.key() else ("  <- current" if s.key() == report.current.key() else "")
        print(f"{_shrinkage(s):>9}  {s.k:>2}  {s.vote:>4}  {_weight(s):>5}  {s.map7:6.3f}  {s.top1:6.3f}{mark}")
    for name, c in (("current:", report.current), ("chosen: ", report.chosen)):
        print(f"{name} shrinkage {_shrinkage(c)}, k={c.k}, vote={c.vote}, label weight {_weight(c)}: "
              f"mAP@7 {c.map7:.3f}, top-1 {c.top1:.3f}")
    print(f"wrote {report.out}")


def _shrinkage(setting: Setting) -> str:
    return "-" if setting.shrinkage is None else f"{setting.shrinkage:g}"


def _weight(setting: Setting) -> str:
    return "-" if setting.label_weight is None else f"{setting.label_weight:g}"


def report_json(report: TuneReport) -> str:
    return json.dumps(report.to_dict(), indent=2)

