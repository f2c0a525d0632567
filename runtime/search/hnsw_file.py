"""Structural checks of an hnswlib index file before hnswlib reads it.

Why: hnswlib trusts its file. A corrupted neighbour id, link count, level or header offset makes it read and write
outside its buffers, and the process dies of SIGSEGV at load or at the first query: a kiosk opening its bundle
with ``verify=False`` (no sha256 pass) would crash instead of reporting a bad file. These checks cover every value
hnswlib later uses as an index or a size, so a file that passes cannot send it outside its memory: the header
against the bundle's row count and dimension, every level-0 and upper-level link list (count within its
maximum, neighbour ids within the rows, neighbours of a level-l list present at level l), the entry point and
its level, every label, and the file's exact length. Vectorised with numpy over a memory map: the level-0 block
is read once, strided.

The layout (hnswlib 0.8, ``HierarchicalNSW::saveIndex``): a 96-byte header of size_t / int / uint32 / double
fields, then ``count`` level-0 records of ``size_data_per_element`` bytes (uint32 link count whose low 16 bits
hnswlib reads, ``maxM0`` uint32 neighbour ids, ``dim`` float32 values, a size_t label), then per element a uint32
byte length of its upper-level link lists followed by those lists (uint32 count + ``maxM`` ids each).
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

_HEADER = struct.Struct("<QQQQQQiIQQQdQ")
#: hnswlib reads a link list's count as an unsigned short.
_COUNT_MASK = 0xFFFF
_MAX_LEVEL = 64


class IndexFileError(ValueError):
    """The file is not an hnswlib index of this bundle's rows, or is damaged."""


def check_hnsw_file(path: Path, rows: int, dim: int) -> None:
    """IndexFileError naming the first fault unless ``path`` is a sound hnswlib ("ip"/"l2", float32) index of
    ``rows`` items of ``dim`` dimensions."""
    size = path.stat().st_size
    if size < _HEADER.size:
        raise IndexFileError(f"{path.name}: {size} bytes, shorter than an hnswlib header")
    data = np.memmap(path, dtype=np.uint8, mode="r")
    (offset_level0, max_elements, count, record, label_offset, offset_data, max_level, entry,
     max_m, max_m0, m, _mult, _ef_construction) = _HEADER.unpack(bytes(data[: _HEADER.size]))
    links0 = 4 + 4 * max_m0
    expected = {"element count": (count, rows), "level-0 offset": (offset_level0, 0), "data offset": (offset_data, links0),
                "label offset": (label_offset, links0 + 4 * dim), "record size": (record, links0 + 4 * dim + 8)}
    for name, (found, wanted) in expected.items():
        if found != wanted:
            raise IndexFileError(f"{path.name}: header {name} is {found}, expected {wanted} for {rows} rows of {dim} dims")
    if not (count <= max_elements and 1 <= m <= max_m <= 10_000 and max_m0 <= 20_000 and 0 <= max_level < _MAX_LEVEL
            and (rows == 0 or entry < rows)):
        raise IndexFileError(f"{path.name}: header values out of range (M={m}, maxM={max_m}, maxM0={max_m0}, "
                             f"max level {max_level}, entry point {entry}, capacity {max_elements})")
    level0_end = _HEADER.size + count * record
    if size < level0_end:
        raise IndexFileError(f"{path.name}: truncated inside the level-0 records")
    records = data[_HEADER.size:level0_end].reshape(count, record)
    _check_lists(path, records[:, :links0], max_m0, rows, "level 0")
    labels = records[:, label_offset:label_offset + 8].copy().view("<u8").ravel()
    if labels.size and int(labels.max()) >= rows:
        raise IndexFileError(f"{path.name}: a label is {int(labels.max())}, beyond the {rows} rows")
    levels = _check_upper_levels(path, data, level0_end, size, count, max_m, rows)
    if rows and levels[entry] != max_level:
        raise IndexFileError(f"{path.name}: the entry point's level is {levels[entry]}, the header says {max_level}")
    if rows and levels.max() > max_level:
        raise IndexFileError(f"{path.name}: an element has level {levels.max()} above the maximum {max_level}")


def _check_lists(path: Path, lists: np.ndarray, capacity: int, rows: int, where: str) -> np.ndarray:
    """Each row of ``lists`` (uint8 bytes) is a uint32 count then ``capacity`` uint32 ids; returns the ids in use
    as a masked (n, capacity) int64 array with -1 in the unused slots."""
    words = np.ascontiguousarray(lists).view("<u4").reshape(len(lists), capacity + 1)
    counts = words[:, 0] & _COUNT_MASK
    if counts.size and int(counts.max()) > capacity:
        raise IndexFileError(f"{path.name}: a {where} link list holds {int(counts.max())} links, at most {capacity} fit")
    used = np.arange(capacity)[None, :] < counts[:, None]
    ids = np.where(used, words[:, 1:].astype(np.int64), -1)
    if ids.size and int(ids.max()) >= rows:
        raise IndexFileError(f"{path.name}: a {where} link points to item {int(ids.max())}, beyond the {rows} rows")
    return ids


def _check_upper_levels(path: Path, data: np.memmap, start: int, size: int, count: int, max_m: int,
                        rows: int) -> np.ndarray:
    """Walk the per-element upper-level blocks; returns each element's level (0 when it has none)."""
    block = 4 + 4 * max_m
    levels = np.zeros(count, dtype=np.int64)
    spans: list[tuple[int, int, int]] = []  # (element, byte offset of its lists, levels)
    position = start
    length_field = struct.Struct("<I")  # read one by one: each length moves the next (most are 0)
    for element in range(count):
        if position + 4 > size:
            raise IndexFileError(f"{path.name}: truncated in the upper-level link lists")
        (length,) = length_field.unpack_from(data, position)
        position += 4
        if length:
            if length % block or length // block >= _MAX_LEVEL:
                raise IndexFileError(f"{path.name}: item {element}'s upper link lists are {length} bytes, not a "
                                     f"whole number of {block}-byte levels")
            levels[element] = length // block
            spans.append((element, position, length // block))
            position += length
    if position != size:
        raise IndexFileError(f"{path.name}: {size - position} bytes after the last link list")
    for level in range(1, int(levels.max(initial=0)) + 1):
        at_level = [(element, offset + (level - 1) * block) for element, offset, height in spans if height >= level]
        lists = np.stack([data[offset:offset + block] for _, offset in at_level])
        ids = _check_lists(path, lists, max_m, rows, f"level {level}")
        neighbours = ids[ids >= 0]
        if neighbours.size and int(levels[neighbours].min()) < level:
            raise IndexFileError(f"{path.name}: a level-{level} link points to an item without that level")
    return levels
