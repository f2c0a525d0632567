"""The label index: catalogue products scored against the words read from a shopper's photo.

Words are compared by character 3-grams (each word padded with a space on either side, as scikit-learn's
``char_wb`` analyser does), so an OCR slip ("APELSIH" for "APELSIN", "grapetruit") still shares most of its
grams with the catalogue's word; measured against a per-word edit distance on Grocery val, see
benchmarks/grocery/README.md. Each gram is weighted by its inverse document frequency over the catalogue's
*products*: a brand's name, printed on all of its products, counts little against the line and shade that tell
them apart. A product's text is everything read on its catalogue images plus its title.

Stored as an .npz without object arrays (loaded with allow_pickle=False): the gram vocabulary, its idf, the
postings gram -> (product, weight) in CSR form, the product of each catalogue row, and the words read on each
catalogue row (for `shadematch tune` and catalogue updates). Read-only after loading, so safe across threads.
"""
from __future__ import annotations

import re
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import BundleError

GRAM = 3
_TOKEN = re.compile(r"[^\W_]+")


def normalise(text: str) -> str:
    """Lower case, accents folded ("MJÖLK" and an OCR's "MJOLK" become one word)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def tokens(text: str) -> list[str]:
    """The words of a text, normalised; single characters are dropped (OCR specks, stray letters)."""
    return [token for token in _TOKEN.findall(normalise(text)) if len(token) >= 2]


def grams(text: str) -> list[str]:
    """Character 3-grams of every word of ``text``, each word padded with spaces (its start and end count)."""
    out = []
    for token in tokens(text):
        padded = f" {token} "
        out.extend(padded[i : i + GRAM] for i in range(len(padded) - GRAM + 1))
    return out


#: Share of a title word's 3-grams that a word read must have for the title word to count as read.
TITLE_MATCH = 0.5


def title_matches(title: str, read: Sequence[str]) -> list[tuple[int, int]]:
    """Character spans (start, end) of ``title``'s words that the words ``read`` on a photo match (most of their
    3-grams shared, so OCR slips still match): what the kiosk highlights in a matched title."""
    read_grams = [set(grams(text)) for text in read]
    read_grams = [g for g in read_grams if g]
    spans = []
    for match in _TOKEN.finditer(title):
        own = set(grams(match.group()))
        if own and any(len(own & other) >= TITLE_MATCH * len(own) for other in read_grams):
            spans.append((match.start(), match.end()))
    return spans


@dataclass(frozen=True)
class RowReads:
    """The words read on each catalogue row as flat arrays (text, confidence, the row each belongs to): no object
    arrays, so an .npz holds them without pickle. The one form of stored reads: the label index's and the build's
    feature shards'."""

    text: np.ndarray
    confidence: np.ndarray
    row: np.ndarray

    @classmethod
    def from_lists(cls, reads: Sequence[Sequence[tuple[str, float]]]) -> "RowReads":
        flat = [(text, confidence, row) for row, words in enumerate(reads) for text, confidence in words]
        return cls(np.array([t for t, _, _ in flat], dtype=np.str_).reshape(-1),
                   np.array([c for _, c, _ in flat], dtype=np.float32).reshape(-1),
                   np.array([r for _, _, r in flat], dtype=np.int32).reshape(-1))

    def by_row(self, rows: int) -> list[list[tuple[str, float]]]:
        """The words of each of ``rows`` rows, as (text, confidence) pairs in their stored order."""
        words: list[list[tuple[str, float]]] = [[] for _ in range(rows)]
        for text, confidence, row in zip(self.text.tolist(), self.confidence.tolist(), self.row.tolist()):
            words[row].append((text, confidence))
        return words


class LabelIndex:
    """Products (columns) scored by the cosine between TF-IDF gram vectors of their text and of the words read."""

    def __init__(self, vocabulary: np.ndarray, idf: np.ndarray, indptr: np.ndarray, products: np.ndarray,
                 weights: np.ndarray, row_product: np.ndarray, reads: RowReads) -> None:
        self.vocabulary = np.asarray(vocabulary, dtype=np.str_)
        self.idf = np.asarray(idf, dtype=np.float32)
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.products = np.asarray(products, dtype=np.int32)
        self.weights = np.asarray(weights, dtype=np.float32)
        self.row_product = np.asarray(row_product, dtype=np.int32)
        self.reads = reads
        self._validate()
        self._column = {gram: i for i, gram in enumerate(self.vocabulary.tolist())}
        self.product_count = int(self.row_product.max()) + 1 if len(self.row_product) else 0
        order = np.argsort(self.row_product, kind="stable")
        self._rows_by_product = np.split(order, np.searchsorted(self.row_product[order], np.arange(1, self.product_count)))

    @classmethod
    def build(cls, row_product: Sequence[int], product_texts: Sequence[Iterable[tuple[str, float]]],
              reads: RowReads) -> "LabelIndex":
        """Index products 0..P-1 from their texts, (text, weight) pairs: words read (weight: the confidence) and
        the title (weight 1); ``row_product`` gives each catalogue row's product."""
        counts: list[dict[str, float]] = []
        for texts in product_texts:
            tally: dict[str, float] = {}
            for text, weight in texts:
                for gram in grams(text):
                    tally[gram] = tally.get(gram, 0.0) + float(weight)
            counts.append(tally)
        vocabulary = np.array(sorted({gram for tally in counts for gram in tally}), dtype=np.str_).reshape(-1)
        column = {gram: i for i, gram in enumerate(vocabulary.tolist())}
        frequency = np.zeros(len(vocabulary), dtype=np.float64)
        for tally in counts:
            frequency[[column[g] for g in tally]] += 1
        idf = (np.log((1 + len(counts)) / (1 + frequency)) + 1).astype(np.float32)  # smoothed, as scikit-learn's
        postings: list[list[tuple[int, float]]] = [[] for _ in vocabulary]
        for product, tally in enumerate(counts):
            if not tally:
                continue
            cols = np.array([column[g] for g in tally])
            vector = np.log1p(np.array(list(tally.values()))) * idf[cols]  # sublinear tf: 30 reads of one word != 30x
            vector /= np.linalg.norm(vector)
            for col, weight in zip(cols, vector):
                postings[col].append((product, float(weight)))
        indptr = np.zeros(len(vocabulary) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(p) for p in postings])
        flat = [pair for p in postings for pair in p]
        return cls(vocabulary, idf, indptr, np.array([p for p, _ in flat], dtype=np.int32),
                   np.array([w for _, w in flat], dtype=np.float32), np.asarray(row_product, dtype=np.int32), reads)

    def __len__(self) -> int:
        return self.product_count

    def query_vector(self, words: Sequence[tuple[str, float]]) -> dict[int, float]:
        """The photo's TF-IDF gram vector (gram column -> weight, unit length): grams of catalogue words only."""
        tally: dict[int, float] = {}
        for text, confidence in words:
            for gram in grams(text):
                col = self._column.get(gram)
                if col is not None:
                    tally[col] = tally.get(col, 0.0) + float(confidence)
        if not tally:
            return {}
        cols = np.fromiter(tally, dtype=np.int64)
        vector = np.log1p(np.fromiter(tally.values(), dtype=np.float64)) * self.idf[cols]
        vector /= np.linalg.norm(vector)
        return dict(zip(cols.tolist(), vector.tolist()))

    def score(self, words: Sequence[tuple[str, float]]) -> np.ndarray:
        """Cosine similarity in [0, 1] of every product's text to the words read, (P,); zeros when nothing matches."""
        scores = np.zeros(self.product_count, dtype=np.float32)
        for col, weight in self.query_vector(words).items():
            start, stop = self.indptr[col], self.indptr[col + 1]
            scores[self.products[start:stop]] += weight * self.weights[start:stop]
        return scores

    def rows_of(self, product: int) -> np.ndarray:
        """Catalogue rows of a product."""
        return self._rows_by_product[product]

    def save(self, path: Path) -> None:
        with open(path, "wb") as handle:  # np.savez would append ".npz" to a name without it
            np.savez(handle, vocabulary=self.vocabulary, idf=self.idf, indptr=self.indptr, products=self.products,
                     weights=self.weights, row_product=self.row_product, read_text=self.reads.text,
                     read_confidence=self.reads.confidence, read_row=self.reads.row)

    @classmethod
    def load(cls, path: Path) -> "LabelIndex":
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise BundleError(f"{path.name}: not a valid label index ({exc})") from None
        names = ("vocabulary", "idf", "indptr", "products", "weights", "row_product", "read_text",
                 "read_confidence", "read_row")
        missing = [name for name in names if name not in arrays]
        if missing:
            raise BundleError(f"{path.name}: lacks the array(s) {', '.join(missing)}")
        reads = RowReads(arrays["read_text"], arrays["read_confidence"], arrays["read_row"])
        return cls(arrays["vocabulary"], arrays["idf"], arrays["indptr"], arrays["products"], arrays["weights"],
                   arrays["row_product"], reads)

    def _validate(self) -> None:
        n = len(self.vocabulary)
        if self.vocabulary.dtype.kind != "U" or len(self.idf) != n or len(self.indptr) != n + 1:
            raise BundleError("label index: vocabulary, idf and indptr do not match")
        if self.indptr[0] != 0 or self.indptr[-1] != len(self.products) or np.any(np.diff(self.indptr) < 0):
            raise BundleError("label index: indptr is not a valid CSR row pointer")
        if len(self.weights) != len(self.products) or not np.all(np.isfinite(self.weights)):
            raise BundleError("label index: postings weights are missing or not finite")
        if len(self.row_product) and self.row_product.min() < 0:
            raise BundleError("label index: a catalogue row has a negative product number")
        products = int(self.row_product.max()) + 1 if len(self.row_product) else 0
        if len(self.products) and (self.products.min() < 0 or self.products.max() >= products):
            raise BundleError("label index: a posting names a product outside the catalogue")
        reads = self.reads
        if not (len(reads.text) == len(reads.confidence) == len(reads.row)) or reads.text.dtype.kind not in "U":
            raise BundleError("label index: the catalogue reads' arrays do not match")
        if len(reads.row) and (reads.row.min() < 0 or reads.row.max() >= len(self.row_product)):
            raise BundleError("label index: a catalogue read names a row outside the catalogue")
