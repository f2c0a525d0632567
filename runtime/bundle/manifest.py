"""A bundle's manifest as one validated type: every value the runtime reads is checked for type and range, and
every file it names is a plain relative path inside the bundle.

Why: the manifest was read as a plain dict, so `dim: "abc"`, a missing `k`, a `files` entry that is a string or
`search.top: 0` surfaced as Python tracebacks at open or as errors on every kiosk query, and a `files` entry such
as `../../etc/hostname` was hashed outside the bundle. `Manifest.parse` turns each of those into a BundleError
naming the field, before anything else of the bundle is read.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from ..describe.views import QueryViews
from ..errors import BundleError
from ..search.index import IndexParams

_SHA256 = re.compile(r"[0-9a-f]{64}")
#: Upper bounds that no real bundle reaches but that keep a hostile manifest from asking for absurd work.
_LIMITS = {"dim": 65_536, "levels": 16, "k": 1_000, "top": 1_000, "vote": 10_000, "M": 1_024,
           "ef_construction": 1_000_000, "ef": 1_000_000, "exact_below": 1 << 40, "seed": 1 << 62,
           "items": 1 << 40, "bytes": 1 << 50}


@dataclass(frozen=True)
class FileEntry:
    bytes: int
    sha256: str


@dataclass(frozen=True)
class LabelsSection:
    """Where the label index and the reading models are, and how much the words read count (runtime.search.fusion)."""

    file: str
    detector: str
    recogniser: str
    weight: float


@dataclass(frozen=True)
class Manifest:
    """The checked manifest; ``raw`` is the JSON object as read (what `info --json` prints)."""

    raw: dict[str, Any]
    version: int
    files: dict[str, FileEntry]
    dim: int
    levels: int
    index: IndexParams
    index_file: str | None
    #: The labels' rows of an updated graph (`index_rows.npy`), or None.
    index_rows: str | None
    k: int
    top: int
    vote: int
    items: int
    #: The label index and text reading models (format 3), or None: the bundle answers from the image alone.
    labels: "LabelsSection | None" = None
    #: How a query photo is described (runtime.describe.views), or None: from the card's crop alone (older bundles).
    query_views: QueryViews | None = None
    #: sha256 of manifest.json as read: the bundle's identity (it covers every file's checksum), as an update's
    #: lineage and the kiosk's health report name it.
    sha256: str = ""

    @classmethod
    def parse(cls, raw: Any, where: str, readable_versions: tuple[int, ...], format_name: str) -> "Manifest":
        """Check ``raw`` (the parsed JSON) and return the typed manifest; BundleError naming ``where`` and the field."""
        if not isinstance(raw, dict) or raw.get("format") != format_name:
            raise BundleError(f"{where}: not a shadematch bundle manifest")
        version = raw.get("format_version")
        if version not in readable_versions or isinstance(version, bool):
            raise BundleError(
                f"{where}: bundle format version {version}, but this shadematch reads versions "
                f"{', '.join(map(str, readable_versions))}; rebuild the bundle with `shadematch build`"
            )
        check = _Checker(where)
        for section in ("files", "descriptor", "index", "search", "catalog"):
            check.section(raw, section)
        files = {check.path(name, "files"): check.file_entry(name, entry) for name, entry in raw["files"].items()}
        descriptor, index, search = raw["descriptor"], raw["index"], raw["search"]
        projection = descriptor.get("projection")
        if projection is not None:
            check.section(descriptor, "projection", "descriptor.")
            check.listed(projection.get("file"), files, "descriptor.projection.file")
        index_file = index.get("file")
        if index_file is not None:
            check.listed(index_file, files, "index.file")
        index_rows = index.get("rows")
        if index_rows is not None:
            if index_file is None:
                raise BundleError(f"{where}: index.rows names the rows of a graph, but index.file names none")
            check.listed(index_rows, files, "index.rows")
        if index.get("kind", "exact" if index_file is None else "hnsw") not in ("exact", "hnsw"):
            raise BundleError(f"{where}: index.kind must be 'exact' or 'hnsw', got {index.get('kind')!r}")
        params = IndexParams(**{key: check.integer(index, key, "index.", minimum=1 if key in ("M", "ef") else 0)
                                for key in IndexParams().to_dict()})
        # backend and engines are checked where they are used (runtime.bundle._check_engines)
        labels = None
        if raw.get("labels") is not None:
            check.section(raw, "labels")
            section = raw["labels"]
            for key in ("file", "detector", "recogniser"):
                check.listed(section.get(key), files, f"labels.{key}")
            labels = LabelsSection(section["file"], section["detector"], section["recogniser"],
                                   check.number(section, "weight", "labels.", 0.0, 100.0))
        query_views = None
        if descriptor.get("query_views") is not None:
            check.section(descriptor, "query_views", "descriptor.")
            views = descriptor["query_views"]
            if views.get("kind") != "zoom":
                raise BundleError(f"{where}: descriptor.query_views.kind must be 'zoom', got {views.get('kind')!r}")
            zooms = views.get("zooms")
            if not isinstance(zooms, list) or not 1 <= len(zooms) <= 4:
                raise BundleError(f"{where}: descriptor.query_views.zooms must be a list of 1 to 4 numbers, got {zooms!r}")
            query_views = QueryViews(tuple(check.number({"zoom": z}, "zoom", "descriptor.query_views.", 0.3, 0.99)
                                           for z in zooms),
                                     check.number(views, "weight", "descriptor.query_views.", 0.01, 4.0))
        if raw.get("pictures") is not None and not isinstance(raw.get("pictures"), dict):
            raise BundleError(f"{where}: pictures must be an object or null")
        return cls(
            raw=raw, version=int(version), files=files,
            dim=check.integer(descriptor, "dim", "descriptor.", minimum=1),
            levels=check.integer(descriptor, "levels", "descriptor.", minimum=1),
            index=params, index_file=index_file, index_rows=index_rows,
            k=check.integer(search, "k", "search."), top=check.integer(search, "top", "search.", minimum=1),
            vote=check.integer(search, "vote", "search.", default=0),
            items=check.integer(raw["catalog"], "items", "catalog."), labels=labels, query_views=query_views,
        )


class _Checker:
    """Field checks with messages that name the manifest and the field."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, message: str) -> BundleError:
        return BundleError(f"{self.where}: {message}")

    def section(self, parent: dict, name: str, prefix: str = "") -> None:
        if not isinstance(parent.get(name), dict):
            raise self.fail(f"section {prefix}{name!r} is missing or malformed")

    def integer(self, section: dict, key: str, prefix: str, minimum: int = 0, default: int | None = None) -> int:
        value = section.get(key, default)
        if value is None:
            raise self.fail(f"{prefix}{key} is missing")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"{prefix}{key} must be an integer, got {value!r}")
        if not minimum <= value <= _LIMITS.get(key, 1 << 62):
            raise self.fail(f"{prefix}{key} = {value} is out of range ({minimum}..{_LIMITS.get(key, 1 << 62)})")
        return value

    def number(self, section: dict, key: str, prefix: str, minimum: float, maximum: float) -> float:
        value = section.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not minimum <= value <= maximum:
            raise self.fail(f"{prefix}{key} must be a number in {minimum}..{maximum}, got {value!r}")
        return float(value)

    def path(self, name: Any, field: str) -> str:
        """A file name of the bundle: relative, POSIX, no '..', no empty or '.' parts: it stays inside the bundle."""
        parts = PurePosixPath(name).parts if isinstance(name, str) else ()
        if (not isinstance(name, str) or not name or "\\" in name or "\0" in name or name.startswith("/")
                or any(part in ("", ".", "..") for part in name.split("/")) or not parts):
            raise self.fail(f"{field} names {name!r}, which is not a file inside the bundle")
        return name

    def file_entry(self, name: str, entry: Any) -> FileEntry:
        if not isinstance(entry, dict):
            raise self.fail(f"files[{name!r}] must be an object with bytes and sha256, got {entry!r}")
        size = self.integer(entry, "bytes", f"files[{name!r}].")
        digest = entry.get("sha256")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise self.fail(f"files[{name!r}].sha256 must be 64 lowercase hex digits")
        return FileEntry(size, digest)

    def listed(self, name: Any, files: dict[str, FileEntry], field: str) -> None:
        if not isinstance(name, str) or name not in files:
            raise self.fail(f"{field} names {name!r}, which the manifest's files do not list")
