"""The public Python API: open a bundle, ask with a photo, get the 7 best catalogue products (``Match`` and
``Answer``, the result types, live in `runtime.results` and are imported here by their old names)."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Sequence

import numpy as np

from .backends import Backend, open_backend, usable_cores
from .barcode.lookup import GtinLookup
from .barcode.reader import BarcodeReader
from .backends.cpu import int8_dot_product
from .bundle import Bundle, open_bundle
from .describe.embedder import Embedder
from .describe.image import ImageSource
from .describe.modelcard import INT8
from .errors import ShadematchError
from .reading.photos import decode_photos, describe_and_read
from .reading.reader import LabelReader, Word
from .results import Answer, Match
from .search.fusion import TextEvidence
from .search.two_stage import Hit, two_stage_search

LOG = logging.getLogger("shadematch")


class Retriever:
    """A loaded bundle plus an inference backend (and a label reader when the bundle carries a label index).

    Thread safety: ``query``, ``query_batch`` and ``search`` may run from several threads at once (the
    bundle is read-only; ONNX Runtime sessions are thread-safe, and the TensorRT backend gives each thread its
    own execution context and stream); ``close`` must come last.
    """

    def __init__(self, bundle: Bundle, backend: Backend, reader: LabelReader | None = None, threads: int | None = None,
                 barcodes: bool = True) -> None:
        self.bundle = bundle
        #: The catalogue's GTINs and the barcode reader, when it has some (and ``barcodes``); else None.
        self.gtins, self.barcode_reader = _barcode_stage(bundle) if barcodes else (None, None)
        self.backend = backend
        workers, make = 1, None
        if backend.kind == "onnxruntime":
            # several photos: one single-thread run per core (runtime.describe.embedder), made when first needed
            workers = threads or usable_cores()
            make = lambda: open_backend(bundle.model_path, "onnxruntime", threads=1, spin=False)  # noqa: E731
        self.embedder = Embedder(backend, bundle.card, bundle.levels, projection=bundle.projection, workers=workers,
                                 worker_backend=make, views=bundle.query_views)
        self.reader = reader

    @classmethod
    def open(
        cls, path: str | Path, *, backend: str | None = None, threads: int | None = None, verify: bool = True,
        ocr: bool | None = None, barcodes: bool = True,
    ) -> "Retriever":
        """Open and verify a bundle, then load its visual model with ``backend`` ("auto", "tensorrt",
        "onnxruntime"; default: the bundle's choice). "auto" runs one of the bundle's TensorRT plans when
        one fits this GPU and library, else ONNX Runtime (the reason is logged to the "shadematch" logger).
        ``ocr``: load the bundle's label reader (default: when the bundle carries one; True on a bundle without
        one is an error)."""
        bundle = open_bundle(path, verify=verify)
        if ocr and not bundle.reads_labels:
            raise ShadematchError(f"{bundle.path}: the bundle has no label index; rebuild it with `shadematch build --ocr on`")
        if bundle.card.precision == INT8 and int8_dot_product() is None:
            LOG.info("%s: its model is INT8, but this CPU has no INT8 dot-product instruction (VNNI, AMX or ARM "
                     "dotprod): queries run slower and less exactly than where it was built; rebuild it with "
                     "`shadematch build --precision fp32` for this machine", bundle.path)
        models = bundle.text_models if ocr is not False else None
        reader = LabelReader.open(*models, threads=threads) if models else None
        # with a reader, three sessions take turns on the cores: none may keep its threads spinning after a run
        visual = open_backend(bundle.model_path, backend or bundle.backend, threads=threads, spin=reader is None)
        return cls(bundle, visual, reader, threads, barcodes)

    @property
    def reads_labels(self) -> bool:
        """Whether queries read the text on the photo and fuse it with the visual search."""
        return self.reader is not None and self.bundle.labels is not None

    def query(self, image: ImageSource, *, k: int | None = None, top: int | None = None,
              distinct: bool = True, ocr: bool | None = None) -> list[Match]:
        """The best ``top`` (default 7) products for one photo, each by its best catalogue image (``distinct``
        False: the best ``top`` catalogue images, several of one product allowed)."""
        return self.query_batch([image], k=k, top=top, distinct=distinct, ocr=ocr)[0]

    def query_batch(
        self, images: Sequence[ImageSource], *, k: int | None = None, top: int | None = None, batch_size: int = 16,
        distinct: bool = True, ocr: bool | None = None,
    ) -> list[list[Match]]:
        """Results for several photos, run through the model in batches."""
        return [answer.matches for answer in self.answer(images, k=k, top=top, batch_size=batch_size,
                                                         distinct=distinct, ocr=ocr)]

    def answer(
        self, images: Sequence[ImageSource], *, k: int | None = None, top: int | None = None, batch_size: int = 16,
        distinct: bool = True, ocr: bool | None = None,
    ) -> list[Answer]:
        """Matches and the words read, per photo. ``ocr`` (default: on when the bundle reads labels) reads the
        text on each photo and fuses it with the visual ranking (runtime.search.fusion)."""
        started = time.perf_counter()
        codes = None
        if self.barcode_reader is None:
            descriptors, words = self.describe(images, batch_size=batch_size, ocr=ocr)
        else:  # each photo decoded once, for the barcode, the label and the model alike
            photos = decode_photos(images)
            codes = [self.barcode_reader.read(photo) for photo in photos]
            if self._ocr(ocr):
                descriptors, words = describe_and_read(self.embedder, self.reader, photos, batch_size)
            else:
                descriptors, words = self.embed(photos, batch_size=batch_size), None
        matches = self.search(descriptors, k=k, top=top, distinct=distinct, words=words, barcodes=codes)
        elapsed_ms = (time.perf_counter() - started) * 1000 / max(1, len(matches))
        return [Answer(m, w or [], self.found(m), elapsed_ms)
                for m, w in zip(matches, words or [None] * len(matches))]

    @property
    def threshold(self) -> float | None:
        """The first-match confidence under which a photo is answered "not found" (None: no confidence model)."""
        return self.bundle.confidence.threshold if self.bundle.confidence is not None else None

    def found(self, matches: list[Match]) -> bool:
        """Whether a photo with these matches shows a catalogue product (its first match's confidence reaches the
        threshold; without a confidence model, whether it has any match)."""
        if not matches:
            return False
        first = matches[0].confidence
        return first is None or self.bundle.confidence is None or self.bundle.confidence.found(first)

    def describe(self, images: Sequence[ImageSource], *, batch_size: int = 16, ocr: bool | None = None
                 ) -> tuple[np.ndarray, list[list[Word]] | None]:
        """Descriptors (N, D) of photos and, with ``ocr`` on, the words read on each (else None)."""
        if not self._ocr(ocr):
            return self.embed(images, batch_size=batch_size), None
        return describe_and_read(self.embedder, self.reader, decode_photos(images), batch_size)

    def read(self, image: ImageSource) -> list[Word]:
        """The words on one photo's product region (needs a bundle that reads labels)."""
        return self.describe([image], ocr=True)[1][0]

    def embed(self, images: Sequence[ImageSource], batch_size: int = 16) -> np.ndarray:
        """Descriptors (N, D) of query photos in the index's space (projected if the bundle has a projection; each
        photo's query views summed if it has them)."""
        return self.embedder.embed(images, batch_size=batch_size)

    def search(self, descriptors: np.ndarray, *, k: int | None = None, top: int | None = None,
               vote: int | None = None, distinct: bool = True, words: Sequence[Sequence[Word]] | None = None,
               text_weight: float | None = None, barcodes: Sequence[Sequence[str]] | None = None) -> list[list[Match]]:
        """Two-stage search (Algorithm 1) for precomputed descriptors; k = 0 is visual-only. ``vote`` (default:
        the bundle's) is the visual top-m whose product vote picks the first result (0 = off). ``distinct``: one
        result per product (its first image in the ranking), else the image-level ranking of the challenge.
        ``words`` (one list per descriptor) are fused in first with ``text_weight`` (default: the bundle's).
        ``barcodes`` (one list of GTINs per descriptor, as BarcodeReader.read gives them): the product with a read
        GTIN comes first, stage "barcode", confidence 1; a GTIN the catalogue lacks changes nothing."""
        k = self.bundle.k if k is None else k
        top = self.bundle.top if top is None else top
        vote = self.bundle.vote if vote is None else vote
        if k < 0 or top < 1 or vote < 0:
            raise ValueError(f"need k >= 0, top >= 1 and vote >= 0, got k={k}, top={top}, vote={vote}")
        evidence = None
        if words is not None and self.bundle.labels is not None:
            if len(words) != len(descriptors):
                raise ValueError(f"need one word list per descriptor, got {len(words)} for {len(descriptors)}")
            weight = self.bundle.label_weight if text_weight is None else text_weight
            evidence = [TextEvidence.from_words(self.bundle.labels, [(w.text, w.confidence) for w in row], weight)
                        for row in words]
        hits = two_stage_search(descriptors, self.bundle.index, self.bundle.text_map, k=k, top=top, vote=vote,
                                products=self.bundle.products if vote > 1 or distinct else None, distinct=distinct,
                                evidence=evidence)
        model = self.bundle.confidence
        if model is None:
            matches = [[self._match(hit, None) for hit in row] for row in hits]
        else:
            product_logits = model.product_logit(descriptors)
            matches = [[self._match(hit, c) for hit, c in zip(row, model.confidences([h.score for h in row], logit))]
                       for row, logit in zip(hits, product_logits)]
        if barcodes is None or self.gtins is None:
            return matches
        if len(barcodes) != len(descriptors):
            raise ValueError(f"need one GTIN list per descriptor, got {len(barcodes)} for {len(descriptors)}")
        return [self._barcode_first(row, self.gtins.row(codes), top, distinct) for row, codes in zip(matches, barcodes)]

    def _barcode_first(self, matches: list[Match], row: int | None, top: int, distinct: bool) -> list[Match]:
        """``matches`` with catalogue ``row`` (a barcode's product) first: the barcode names the product outright,
        so it outranks any similarity; the visual results follow, that product's other images left out."""
        if row is None:
            return matches
        item = self.bundle.catalog[row]
        first = Match(item.id, item.title, 1.0, "barcode", item.group, item.image, 1.0, item.fields)
        rest = [m for m in matches if (m.group != item.group if distinct else m.id != item.id)]
        return [first, *rest][:top]

    def _ocr(self, ocr: bool | None) -> bool:
        if ocr and not self.reads_labels:
            raise ShadematchError(f"{self.bundle.path}: OCR asked for, but the bundle has no label index "
                                  "(or the retriever was opened with ocr=False)")
        return self.reads_labels if ocr is None else bool(ocr)

    def _match(self, hit: Hit, confidence: float | None) -> Match:
        item = self.bundle.catalog[hit.row]
        return Match(item.id, item.title, hit.score, hit.stage, item.group, item.image,
                     None if confidence is None else float(confidence), item.fields)

    def close(self) -> None:
        """Release the backend (and the readers); idempotent."""
        self.embedder.close()
        self.backend.close()
        if self.reader is not None:
            self.reader.close()

    def __enter__(self) -> "Retriever":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _barcode_stage(bundle: Bundle) -> tuple[GtinLookup | None, BarcodeReader | None]:
    """The GTIN lookup and a reader when the catalogue has GTINs (a bundle without any reads no barcodes)."""
    gtins = GtinLookup.from_catalog(bundle.catalog)
    if gtins is None:
        return None, None
    try:
        reader = BarcodeReader()
    except ImportError:
        LOG.info("%s: the catalogue has %d GTINs, but zxing-cpp is not installed: barcodes are not read "
                 "(pip install zxing-cpp)", bundle.path, len(gtins))
        return None, None
    LOG.info("%s: barcodes read on every photo (%d GTINs in the catalogue)", bundle.path, len(gtins))
    return gtins, reader
