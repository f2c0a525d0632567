"""Catalogue pictures for the result cards, looked up by catalogue id only.

The id is the only thing a client names: it is looked up among the bundle's catalogue rows, so no URL
can reach any other file (no path traversal by construction). The picture is re-encoded as a small JPEG
(a kiosk card needs ~400 px, catalogue originals can be many megapixels) and cached.

Where the picture is: a bundle built by `shadematch build` carries a small JPEG per catalogue row
(`runtime.bundle.PICTURES_DIR`), used first. Bundles built without them (`--no-pictures`, or before they
existed) fall back to each item's image path as given to `shadematch build`, and then to an ``images/``
folder inside the bundle directory, looked up by file name (copy the pictures there when such a bundle moves).
"""
from __future__ import annotations

import io
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Sequence

from ..bundle.catalog import CatalogItem
from ..describe.image import load_image

#: Longest side of a served picture, in pixels.
THUMBNAIL_SIDE = 480
#: Folder inside a bundle directory where a moved bundle's catalogue pictures go.
IMAGES_DIR = "images"


class CatalogThumbnails:
    """JPEG thumbnails of a bundle's catalogue items, by id, with a small LRU cache."""

    def __init__(self, bundle_path: Path, items: Sequence[CatalogItem], cache_size: int = 128,
                 carried: Callable[[int], Path | None] = lambda row: None) -> None:
        """``carried(row)`` gives the bundle's own picture of a row, if it has one (`runtime.bundle.Bundle.picture`)."""
        self.bundle_path = bundle_path
        self._items = {item.id: (row, item) for row, item in enumerate(items)}
        self._carried = carried
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def __contains__(self, item_id: str) -> bool:
        return item_id in self._items

    def source(self, item_id: str) -> Path | None:
        """The picture file of a catalogue item, or None when the id is unknown or the file is gone."""
        if item_id not in self._items:
            return None
        row, item = self._items[item_id]
        carried = self._carried(row)
        if carried is not None:
            return carried
        recorded = Path(item.image)
        if not recorded.is_absolute():
            recorded = self.bundle_path / recorded
        for candidate in (recorded, self.bundle_path / IMAGES_DIR / recorded.name):
            if candidate.is_file():
                return candidate
        return None

    def jpeg(self, item_id: str) -> bytes | None:
        """The thumbnail as JPEG bytes; None when there is no such item or picture (ImageError if unreadable)."""
        with self._lock:
            if item_id in self._cache:
                self._cache.move_to_end(item_id)
                return self._cache[item_id]
        path = self.source(item_id)
        if path is None:
            return None
        image = load_image(path, min_size=THUMBNAIL_SIDE)
        image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=85)
        data = buffer.getvalue()
        with self._lock:
            self._cache[item_id] = data
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return data


__all__ = ["CatalogThumbnails", "THUMBNAIL_SIDE", "IMAGES_DIR"]
