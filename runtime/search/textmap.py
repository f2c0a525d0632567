"""The textual index of Hou, Ji and Wang (ACM Multimedia 2020): catalogue item -> catalogue items with similar titles.

Stored as CSR arrays (indptr, indices, similarity) in an .npz loaded with allow_pickle=False: compact at
500K items, memory-mappable in spirit, and safe to open from an untrusted bundle.
"""
from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np

from ..errors import BundleError


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
        """Memory-maps the arrays when the .npz stores them uncompressed (as ``save`` does): at 500K items
        that saves copying ~200 MB at start-up; anything else is read with np.load."""
        try:
            arrays = _mapped_npz(path)
            if arrays is None:
                with np.load(path, allow_pickle=False) as data:
                    arrays = {name: data[name] for name in data.files}
            missing = sorted({"indptr", "indices", "similarity"} - set(arrays))
            if missing:
                raise BundleError(f"{path.name}: lacks the array(s) {', '.join(missing)}")
            return cls(arrays["indptr"], arrays["indices"], arrays["similarity"])
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


_NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _mapped_npz(path: Path) -> dict[str, np.ndarray] | None:
    """Read-only memory maps of an .npz's members, or None when a member is compressed or not a plain
    .npy (then the caller falls back to np.load, which also refuses object arrays)."""
    arrays = {}
    with zipfile.ZipFile(path) as archive, open(path, "rb") as handle:
        for info in archive.infolist():
            if info.compress_type != zipfile.ZIP_STORED or not info.filename.endswith(".npy"):
                return None
            handle.seek(info.header_offset)
            local = handle.read(30)  # local file header: name and extra lengths at bytes 26..30
            if len(local) != 30 or local[:4] != b"PK\x03\x04":
                return None
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            handle.seek(info.header_offset + 30 + name_len + extra_len)
            version = np.lib.format.read_magic(handle)
            read_header = _NPY_HEADER_READERS.get(version)
            if read_header is None:
                return None
            shape, fortran, dtype = read_header(handle)
            if dtype.hasobject or fortran:
                return None
            arrays[info.filename[:-4]] = np.memmap(path, dtype=dtype, mode="r", offset=handle.tell(), shape=shape)
    return arrays
