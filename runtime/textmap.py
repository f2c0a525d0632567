"""The textual index of seed 000: catalogue item -> catalogue items with similar titles.

Stored as CSR arrays (indptr, indices, similarity) in an .npz loaded with allow_pickle=False: compact at
500K items, memory-mappable in spirit, and safe to open from an untrusted bundle.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .errors import BundleError


class TextNeighbours:
    """Neighbour lists per catalogue row, most similar first. Read-only, so safe across threads."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, similarity: np.ndarray) -> None:
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.indices = np.asarray(indices, dtype=np.int32)
        self.similarity = np.asarray(similarity, dtype=np.float32)
        self._validate()

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def neighbours(self, row: int) -> np.ndarray:
        """Rows whose titles are similar to ``row``'s, most similar first."""
        return self.indices[self.indptr[row] : self.indptr[row + 1]]

    def similarities(self, row: int) -> np.ndarray:
        return self.similarity[self.indptr[row] : self.indptr[row + 1]]

    def save(self, path: Path) -> None:
        # np.savez appends ".npz" to names without it; write through a file object to keep the name as given.
        with open(path, "wb") as handle:
            np.savez(handle, indptr=self.indptr, indices=self.indices, similarity=self.similarity)

    @classmethod
    def load(cls, path: Path) -> "TextNeighbours":
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = sorted({"indptr", "indices", "similarity"} - set(data.files))
                if missing:
                    raise BundleError(f"{path.name}: lacks the array(s) {', '.join(missing)}")
                return cls(data["indptr"], data["indices"], data["similarity"])
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # empty file / damaged zip too
            raise BundleError(f"{path.name}: not a valid text map ({exc})") from None

    def _validate(self) -> None:
        n = len(self.indptr) - 1  # not len(self): __len__ cannot return -1, so an empty indptr would raise ValueError
        if n < 0 or self.indptr[0] != 0 or self.indptr[-1] != len(self.indices) or np.any(np.diff(self.indptr) < 0):
            raise BundleError("text map: indptr is not a valid CSR row pointer")
        if len(self.similarity) != len(self.indices):
            raise BundleError("text map: indices and similarity differ in length")
        if len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= n):
            raise BundleError("text map: a neighbour id lies outside the catalogue")
