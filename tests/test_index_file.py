"""A damaged index or vector file is a BundleError, never a crash (issue 13, fault 1): hnswlib trusts its file and
died of SIGSEGV on a corrupted neighbour id or header offset when a bundle was opened without the sha256 pass."""
from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from runtime.errors import BundleError
from runtime.search.hnsw_file import _HEADER, IndexFileError, check_hnsw_file
from runtime.search.index import IndexParams, VisualIndex, first_bad_row

ROWS, DIM = 1500, 16


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, bytes]:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((ROWS, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    path = tmp_path_factory.mktemp("index") / "index.bin"
    VisualIndex.build(vectors, IndexParams(M=8, ef_construction=40, exact_below=100)).save(path)
    return vectors, path.read_bytes()


def _header(data: bytes) -> dict[str, int]:
    names = ("offset_level0", "max_elements", "count", "record", "label_offset", "offset_data", "max_level", "entry",
             "max_m", "max_m0", "m", "mult", "ef_construction")
    return dict(zip(names, _HEADER.unpack(data[: _HEADER.size])))


def _put(data: bytearray, offset: int, fmt: str, value) -> None:
    struct.pack_into(fmt, data, offset, value)


def _upper_start(data: bytes) -> int:
    h = _header(data)
    return _HEADER.size + h["count"] * h["record"]


def _first_upper_list(data: bytes) -> int:
    """Byte offset of the first element's level-1 link list (its count field)."""
    position = _upper_start(data)
    while True:
        (length,) = struct.unpack_from("<I", data, position)
        if length:
            return position + 4
        position += 4


CORRUPTIONS = {
    "a level-0 neighbour id": (lambda d, h: _put(d, _HEADER.size + h["record"] * 7 + 4, "<I", 10**6), "beyond the 1500 rows"),
    "a level-0 link count": (lambda d, h: _put(d, _HEADER.size + h["record"] * 3, "<I", 900), "links, at most 16 fit"),
    "the data offset": (lambda d, h: _put(d, 40, "<Q", 999), "header data offset is 999"),
    "the element count": (lambda d, h: _put(d, 16, "<Q", ROWS + 5), "header element count"),
    "the entry point": (lambda d, h: _put(d, 52, "<I", ROWS + 10), "out of range"),
    "the maximum level": (lambda d, h: _put(d, 48, "<i", 0), "entry point's level"),
    "an upper-level neighbour id": (lambda d, h: _put(d, _first_upper_list(d) + 4, "<I", 77_777), "level 1 link points to item 77777"),
    "an upper-level length": (lambda d, h: _put(d, _first_upper_list(d) - 4, "<I", 13), "not a whole number"),
    "a label": (lambda d, h: _put(d, _HEADER.size + h["label_offset"], "<Q", 2**40), "a label is"),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_a_corrupted_index_is_a_bundle_error(name: str, saved, tmp_path: Path) -> None:
    vectors, original = saved
    damage, message = CORRUPTIONS[name]
    data = bytearray(original)
    damage(data, _header(original))
    path = tmp_path / "index.bin"
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=message):
        VisualIndex.load(vectors, path, IndexParams(M=8))


def test_truncated_or_padded_files_are_refused(saved, tmp_path: Path) -> None:
    vectors, original = saved
    for data, message in ((original[:50], "shorter than an hnswlib header"), (original[:-3], "truncated"),
                          (original + b"\0" * 8, "bytes after the last link list"),
                          (original[: _HEADER.size + 100], "truncated inside the level-0 records")):
        path = tmp_path / "index.bin"
        path.write_bytes(data)
        with pytest.raises(IndexFileError, match=message):
            check_hnsw_file(path, ROWS, DIM)


def test_a_sound_index_passes_and_answers(saved, tmp_path: Path) -> None:
    vectors, original = saved
    path = tmp_path / "index.bin"
    path.write_bytes(original)
    index = VisualIndex.load(vectors, path, IndexParams(M=8))
    ids, _ = index.search(vectors[:5], 3)
    assert ids[:, 0].tolist() == [0, 1, 2, 3, 4]


def test_the_checked_open_survives_where_hnswlib_alone_would_crash(saved, tmp_path: Path) -> None:
    """In a child process, so that a crash would fail this test instead of ending the test run."""
    vectors, original = saved
    data = bytearray(original)
    CORRUPTIONS["a level-0 neighbour id"][0](data, _header(original))
    (tmp_path / "index.bin").write_bytes(bytes(data))
    np.save(tmp_path / "vectors.npy", vectors)
    code = (
        "import numpy as np; from pathlib import Path; from runtime.search.index import VisualIndex, IndexParams\n"
        "from runtime.errors import BundleError\n"
        f"v = np.load({str(tmp_path / 'vectors.npy')!r})\n"
        "try:\n"
        f"    VisualIndex.load(v, Path({str(tmp_path / 'index.bin')!r}), IndexParams(M=8)).search(v[:50], 7)\n"
        "except BundleError as exc:\n"
        "    print('refused:', exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "refused: index.bin" in done.stdout, done


def test_nan_or_unnormalised_rows_are_refused_at_build_and_at_open(saved, tmp_path: Path) -> None:
    vectors, _ = saved
    broken = vectors.copy()
    broken[42] = np.nan
    assert first_bad_row(broken) == 42 and first_bad_row(vectors) is None
    with pytest.raises(ValueError, match="row 42 is not a finite unit vector"):
        VisualIndex.build(broken, IndexParams(exact_below=10_000))
    with pytest.raises(BundleError, match="row 42 is not a finite unit vector"):
        VisualIndex.load(broken, None, IndexParams())
    long = vectors.copy()
    long[7] *= 3
    with pytest.raises(BundleError, match="row 7"):
        VisualIndex.load(long, None, IndexParams())
