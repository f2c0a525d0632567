"""Evaluate a bundle on labelled query photos: mAP@7 visual-only and two-stage, and the k ablation of
the k table of Hou, Ji and Wang (ACM Multimedia 2020) (share of queries improved / impaired by the refinement).

A query whose product is not in the bundle's catalogue cannot be found by any setting: counting it would only
lower every figure by the share of such queries and hide it. So those queries are left out of every figure and
reported apart (``not_in_catalog``); the queries scored wrong at top-1 are listed (``wrong``) with what they got."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..confidence.nonproducts import non_product_photos
from ..errors import CatalogError
from .metrics import average_precision_at_k, mean
from .plain import shorten
from ..results import Match
from ..retriever import Retriever
from .tables import read_table, resolve_path

TOP = 7
#: Generated non-product photos `eval` measures "not found" on, and their seed (builds use others: export.bundle.confidence).
NON_PRODUCTS = 160
NON_PRODUCT_SEED = 7
ABLATION_KS = tuple(range(1, 7))
#: How many wrong or unscored queries the plain output lists before "and N more".
SHOWN = 20


@dataclass(frozen=True)
class Query:
    image: Path
    group: str
    subset: str


def read_queries(path: Path) -> list[Query]:
    """Queries CSV: ``image,group[,subset]``; relative image paths are relative to the CSV."""
    queries = []
    for line, row in read_table(path, ("image", "group"), ("subset",)):
        if not row["image"] or not row["group"]:
            raise CatalogError(f"{path} line {line}: image and group must not be empty")
        queries.append(Query(resolve_path(row["image"], path), row["group"], row["subset"]))
    if not queries:
        raise CatalogError(f"{path}: no queries")
    return queries


def evaluate(
    retriever: Retriever,
    queries: list[Query],
    batch_size: int = 16,
    progress: Callable[[int, int], None] | None = None,
    ocr: bool | None = None,
    non_products: int = NON_PRODUCTS,
) -> dict[str, Any]:
    """Run every query once through the model (and the label reader), then score visual-only, the bundle's k and
    k = 1..6. With OCR on (default: when the bundle reads labels) the report is that of the fused search and
    ``ocr_off`` holds the same figures without the words, from the same model pass. Queries of products not in
    the catalogue are not run: they are listed in ``not_in_catalog`` (see the module's docstring). With a
    confidence model, ``not_found`` measures "no matching product" on ``non_products`` generated photos."""
    sizes = Counter(item.group for item in retriever.bundle.catalog)
    unknown = [q for q in queries if not sizes[q.group]]
    queries = [q for q in queries if sizes[q.group]]
    if not queries:
        raise CatalogError(f"none of the {len(unknown)} queries shows a product of the bundle's catalogue (the first's "
                           f"group is {unknown[0].group!r}): their group column must name the catalogue's groups")
    chunks, words = [], []
    for start in range(0, len(queries), batch_size):
        descriptors, read = retriever.describe([q.image for q in queries[start : start + batch_size]],
                                               batch_size=batch_size, ocr=ocr)
        chunks.append(descriptors)
        words = None if read is None else words + read
        if progress:
            progress(min(start + batch_size, len(queries)), len(queries))
    descriptors = np.concatenate(chunks)
    report = score(retriever, queries, descriptors, words)
    if words is not None:
        off = score(retriever, queries, descriptors, None)
        report["ocr"] = {"photos_with_text": sum(1 for row in words if row), "label_weight": retriever.bundle.label_weight}
        report["ocr_off"] = {key: off[key] for key in ("map7_visual", "map7", "top1_visual", "top1", "products", "subsets")
                             if key in off}
    if retriever.bundle.confidence is not None and non_products:
        report["not_found"] = not_found_figures(retriever, queries, descriptors, words, non_products, batch_size, ocr)
    report["queries_without_catalogue_items"] = report["not_in_catalog_count"] = len(unknown)
    report["not_in_catalog"] = [{"image": str(q.image), "group": q.group} for q in unknown]
    return report


def not_found_figures(retriever: Retriever, queries: list[Query], descriptors: np.ndarray, words: list | None,
                      non_products: int, batch_size: int, ocr: bool | None) -> dict[str, Any]:
    """How "no matching product" behaves: the share of generated non-product photos (runtime.confidence; a seed no
    build uses) it answers, by kind, and the share of real queries that keep their answer (all; those answered
    right; and the share of wrong answers it turns into "not found")."""
    results = retriever.search(descriptors, words=words)
    found = np.array([retriever.found(r) for r in results])
    right = np.array([bool(r) and r[0].group == q.group for q, r in zip(queries, results)])
    photos = non_product_photos(non_products, NON_PRODUCT_SEED)
    fake_found = []
    for start in range(0, len(photos), batch_size):
        chunk = [image for _, image in photos[start:start + batch_size]]
        fake_descriptors, fake_words = retriever.describe(chunk, batch_size=batch_size, ocr=ocr)
        fake_found += [retriever.found(r) for r in retriever.search(fake_descriptors, words=fake_words)]
    kinds = [kind for kind, _ in photos]
    rejected = ~np.array(fake_found)
    return {
        "threshold": retriever.threshold,
        "non_product_photos": len(photos),
        "rejected": round(float(rejected.mean()), 4),
        "rejected_by_kind": {kind: round(float(rejected[[k == kind for k in kinds]].mean()), 4) for kind in dict.fromkeys(kinds)},
        "real_kept": round(float(found.mean()), 4),
        "right_kept": round(float(found[right].mean()), 4) if right.any() else None,
        "wrong_rejected": round(float((~found[~right]).mean()), 4) if (~right).any() else None,
    }


def score(retriever: Retriever, queries: list[Query], descriptors: np.ndarray, words: list | None,
          text_weight: float | None = None) -> dict[str, Any]:
    """The report of `evaluate` for descriptors (and words read) already computed, of queries whose product is in
    the catalogue."""
    group_sizes = Counter(item.group for item in retriever.bundle.catalog)

    def scores(k: int, vote: int | None = None) -> tuple[list[float], list[bool]]:
        results = retriever.search(descriptors, k=k, top=TOP, vote=vote, distinct=False, words=words,
                                   text_weight=text_weight)
        aps = [_ap(q, r, group_sizes) for q, r in zip(queries, results)]
        firsts = [bool(r) and r[0].group == q.group for q, r in zip(queries, results)]
        return aps, firsts

    visual_ap, visual_top1 = scores(0)
    bundle_k = retriever.bundle.k
    per_k = {k: scores(k) for k in sorted({*ABLATION_KS, bundle_k})}
    ap, top1 = per_k[bundle_k]
    report: dict[str, Any] = {
        "queries": len(queries),
        "k": bundle_k,
        **_summary(visual_ap, visual_top1, ap, top1),
        "ablation": {
            str(k): {
                "map7": mean(per_k[k][0]),
                "improved_pct": 100.0 * mean([a > v + 1e-12 for a, v in zip(per_k[k][0], visual_ap)]),
                "impaired_pct": 100.0 * mean([a < v - 1e-12 for a, v in zip(per_k[k][0], visual_ap)]),
            }
            for k in ABLATION_KS
        },
        "vote": retriever.bundle.vote,
    }
    if retriever.bundle.vote > 1:
        # The product vote's own share: the bundle's k again, the first stage left to the single nearest row.
        ap_plain, top1_plain = scores(bundle_k, vote=0)
        report["without_vote"] = {"map7": mean(ap_plain), "top1": mean(top1_plain)}
    results = retriever.search(descriptors, k=bundle_k, top=TOP, words=words, text_weight=text_weight)
    ranks = product_ranks(results, queries)
    report["products"] = _product_summary(ranks)
    report["wrong"] = [_wrong(q, r) for q, r, rank in zip(queries, results, ranks) if rank != 1]
    subsets = sorted({q.subset for q in queries if q.subset})
    if subsets:
        report["subsets"] = {
            name: {**_summary(*(
                [values[i] for i, q in enumerate(queries) if q.subset == name]
                for values in (visual_ap, visual_top1, ap, top1)
            ), queries=sum(q.subset == name for q in queries)),
                "products": _product_summary([r for r, q in zip(ranks, queries) if q.subset == name])}
            for name in subsets
        }
    return report


def product_ranks(results: list[list[Match]], queries: list[Query]) -> list[int]:
    """Rank (1-based) of each query's product among its distinct-product results; 0 when absent."""
    return [next((rank for rank, m in enumerate(r, start=1) if m.group == q.group), 0) for r, q in zip(results, queries)]


def _wrong(query: Query, results: list[Match]) -> dict[str, Any]:
    """A query whose first result is another product: the photo, its product and what it got instead."""
    answer = {"id": results[0].id, "title": results[0].title, "group": results[0].group} if results else None
    return {"image": str(query.image), "group": query.group, "answer": answer}


def miss_lines(report: dict[str, Any], shown: int = SHOWN) -> list[str]:
    """The wrong and the unscored queries of a report as lines for a person, at most ``shown`` of each."""
    lines = []
    if report["wrong"]:
        lines.append(f"wrong at top-1 ({len(report['wrong'])} of {report['queries']}):")
        lines += [f"  {w['image']}: expected {w['group']}, answered "
                  + (f"{w['answer']['group']} ({shorten(w['answer']['title'])})" if w["answer"] else "nothing")
                  for w in report["wrong"][:shown]]
        lines += _more(len(report["wrong"]), shown)
    if report["not_in_catalog"]:
        lines.append(f"not in the catalogue, left out of every figure ({report['not_in_catalog_count']}):")
        lines += [f"  {q['image']}: {q['group']}" for q in report["not_in_catalog"][:shown]]
        lines += _more(report["not_in_catalog_count"], shown)
    return lines


def _more(count: int, shown: int) -> list[str]:
    return [f"  … and {count - shown} more (see --json)"] if count > shown else []


def _product_summary(ranks: list[int]) -> dict[str, float]:
    """What a shopper sees (one result per product): the right product first, its reciprocal rank within the
    list (MRR@7) and whether it is in the list at all."""
    return {"top1": mean([r == 1 for r in ranks]), "mrr7": mean([1.0 / r if r else 0.0 for r in ranks]),
            "recall7": mean([r > 0 for r in ranks])}


def _summary(visual_ap: list[float], visual_top1: list[bool], ap: list[float], top1: list[bool], queries: int | None = None) -> dict[str, Any]:
    summary = {"map7_visual": mean(visual_ap), "map7": mean(ap), "top1_visual": mean(visual_top1), "top1": mean(top1)}
    return summary if queries is None else {"queries": queries, **summary}


def _ap(query: Query, results: list[Match], group_sizes: Counter) -> float:
    return average_precision_at_k([m.group == query.group for m in results], group_sizes[query.group], TOP)
