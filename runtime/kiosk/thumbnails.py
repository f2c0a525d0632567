"""Catalogue pictures for the result cards, looked up by catalogue id only.

The id is the only thing a client names: it is looked up among the bundle's catalogue rows, so no URL
can reach any other file (no path traversal by construction). The picture is re-encoded as a small JPEG
(a kiosk card needs ~400 px, catalogue originals can be many megapixels) and cached.

Where the picture is: a bundle records each item's image path as given to `shadematch build`. When the
bundle moves to a kiosk, copy the pictures into an ``images/`` folder inside the bundle directory: a
recorded path that does not exist is looked up there by its file name.
"""
from __future__ import annotations

import io
import threading
from collections import OrderedDict
from pathlib import Path

from ..catalog import CatalogItem
from ..image import load_image

#: Longest side of a served picture, in pixels.
THUMBNAIL_SIDE = 480
#: Folder inside a bundle directory where a moved bundle's catalogue pictures go.
IMAGES_DIR = "images"


class CatalogThumbnails:
    """JPEG thumbnails of a bundle's catalogue items, by id, with a small LRU cache."""

    def __init__(self, bundle_path: Path, items: list[CatalogItem], cache_size: int = 128) -> None:
        self.bundle_path = bundle_path
        self._items = {item.id: item for item in items}
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def __contains__(self, item_id: str) -> bool:
        return item_id in self._items

    def source(self, item_id: str) -> Path | None:
        """The picture file of a catalogue item, or None when the id is unknown or the file is gone."""
        item = self._items.get(item_id)
        if item is None:
            return None
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
