"""The bundle a kiosk serves, swappable while it serves: a catalogue update lands without a restart.

`reload` opens and verifies the new bundle beside the one serving (a bundle that fails to open is logged and the
old one keeps serving), then switches in one assignment under a lock. Every query holds the version it started on
(`use`), so queries in flight finish on the old bundle; the old one is released when its last query is done.
"""
from __future__ import annotations

import functools
import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

from ..errors import ShadematchError
from ..memory import trim
from ..retriever import Retriever
from .thumbnails import CatalogThumbnails

log = logging.getLogger("shadematch.kiosk")


@dataclass
class Served:
    """One bundle version as the kiosk serves it: the retriever, its catalogue pictures, queries using it."""

    retriever: Retriever
    thumbnails: CatalogThumbnails = field(init=False)
    users: int = 0
    retired: bool = False

    def __post_init__(self) -> None:
        bundle = self.retriever.bundle
        self.thumbnails = CatalogThumbnails(bundle.path, bundle.catalog, carried=bundle.picture)

    @functools.cached_property
    def groups(self) -> dict[str, str]:
        """Catalogue id -> product group, made when feedback first names a product."""
        return {item.id: item.group for item in self.retriever.bundle.catalog}

    def describe(self) -> dict:
        """What `/api/health` says of the bundle: which one it is (its manifest's sha256), its size, and what a
        query reads beside the picture (the label's words; barcodes, when the catalogue has GTINs)."""
        bundle = self.retriever.bundle
        lineage = bundle.manifest.get("lineage") or {}
        return {"name": bundle.path.name, "id": bundle.meta.sha256[:16], "format_version": bundle.meta.version,
                "items": len(bundle.catalog), "created": bundle.manifest.get("created"),
                "updates_since_build": lineage.get("updates_since_build", 0), "reads_labels": self.retriever.reads_labels,
                "reads_barcodes": self.retriever.barcode_reader is not None,
                "gtins": len(self.retriever.gtins) if self.retriever.gtins is not None else 0,
                "not_found_threshold": self.retriever.threshold}


class LiveBundle:
    """The serving bundle version and the ones still finishing queries. Thread-safe."""

    def __init__(self, retriever: Retriever, reopen: Callable[[], Retriever] | None = None) -> None:
        self._current = Served(retriever)
        self._reopen = reopen
        self._lock = threading.Lock()
        self._reloading = threading.Lock()
        self.reloads = 0

    @property
    def current(self) -> Served:
        return self._current

    @contextmanager
    def use(self) -> Iterator[Served]:
        """The serving version, held until the block ends (a swap meanwhile does not release it)."""
        with self._lock:
            served = self._current
            served.users += 1
        try:
            yield served
        finally:
            with self._lock:
                served.users -= 1
                release = served.retired and served.users == 0
            if release:
                _release(served)

    def reload(self) -> bool:
        """Open the bundle again (the path may now lead elsewhere) and serve it; False, logged, when it cannot be
        opened: the old version keeps serving. One reload at a time."""
        if self._reopen is None:
            log.error("reload asked for, but this kiosk was not given how to reopen its bundle")
            return False
        with self._reloading:
            try:
                retriever = self._reopen()
            except (ShadematchError, OSError) as exc:
                log.error("reload failed, still serving %s: %s", self._current.retriever.bundle.path, exc)
                return False
            self.swap(retriever)
            self.reloads += 1
            log.info("now serving %s (%s)", retriever.bundle.path, self._current.describe())
            return True

    def swap(self, retriever: Retriever) -> None:
        """Serve ``retriever`` from now on; the old version is released once its queries are done."""
        served = Served(retriever)
        with self._lock:
            old, self._current = self._current, served
            old.retired = True
            release = old.users == 0
        if release:
            _release(old)

    def close(self) -> None:
        """Release the serving version (call when no query runs any more)."""
        with self._lock:
            served = self._current
            served.retired = True
        served.retriever.close()


def _release(served: Served) -> None:
    """Close a retired version's models and hand the freed memory back (runtime.memory): without it every reload
    left the old version's size behind in RSS."""
    served.retriever.close()
    trim()
