"""The bundle format in one room: its layout (layout.py), the validated manifest (manifest.py), the catalogue rows
(catalog.py), the adapted projection's fit data (adaptation.py), opening and checking (read.py) and atomic writing
(write.py). `build`, `tune`, `info`, `bench`, the kiosk and the Python API all go through here.
"""
from __future__ import annotations

from ..checksums import sha256_file, sha256_files
from .layout import (ADAPTATION_FILE, BACKENDS, CARD_FILE, CATALOG_FILE, ENGINES_DIR, FORMAT_NAME, FORMAT_VERSION,
                     INDEX_FILE, INDEX_ROWS_FILE, MANIFEST, MODEL_FILE, PICTURE_SIDE, PICTURES_DIR, PROJECTION_FILE, READABLE_VERSIONS,
                     TEXT_MAP_FILE, VECTORS_FILE, picture_name)
from .manifest import Manifest
from .read import Bundle, ProductsByRow, open_bundle, read_manifest, verify_files

__all__ = [
    "ADAPTATION_FILE", "BACKENDS", "CARD_FILE", "CATALOG_FILE", "ENGINES_DIR", "FORMAT_NAME", "FORMAT_VERSION",
    "INDEX_FILE", "INDEX_ROWS_FILE", "MANIFEST", "MODEL_FILE", "PICTURE_SIDE", "PICTURES_DIR", "PROJECTION_FILE", "READABLE_VERSIONS",
    "TEXT_MAP_FILE", "VECTORS_FILE", "Bundle", "Manifest", "ProductsByRow", "open_bundle", "picture_name",
    "read_manifest", "sha256_file", "sha256_files", "verify_files",
]
