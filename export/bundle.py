"""Writing a bundle atomically: everything goes to a temporary sibling directory, which replaces the
target only once complete, so a failed or interrupted build never leaves a half-written bundle and never
loses the bundle that was there before."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from runtime import __version__
from runtime import bundle as layout
from runtime.catalog import CatalogItem, write_catalog
from runtime.errors import BundleError
from runtime.index import VisualIndex
from runtime.modelcard import ModelCard
from runtime.textmap import TextNeighbours

_LIBRARIES = ("numpy", "onnxruntime", "hnswlib", "Pillow", "scikit-learn", "onnx", "torch")


def library_versions() -> dict[str, str]:
    """Versions of the libraries that made the bundle (recorded, not enforced)."""
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@contextmanager
def atomic_directory(out: Path, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``out`` when the block succeeds."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise BundleError(f"{out} already exists (use --force to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        if out.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, backup / out.name)
            os.replace(tmp, out)
            shutil.rmtree(backup)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_bundle(
    out: Path,
    *,
    model_path: Path,
    card: ModelCard,
    items: list[CatalogItem],
    index: VisualIndex,
    text_map: TextNeighbours,
    text_params: dict[str, Any],
    levels: int,
    k: int,
    top: int,
    vote: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write a complete bundle to ``out`` (see DEVELOPERS.md for the layout)."""
    if len(items) != len(index) or len(items) != len(text_map):
        raise BundleError(f"bundle parts disagree: {len(items)} items, {len(index)} vectors, {len(text_map)} text rows")
    with atomic_directory(out, overwrite) as tmp:
        (tmp / "models").mkdir()
        shutil.copyfile(model_path, tmp / layout.MODEL_FILE)
        (tmp / layout.CARD_FILE).write_text(json.dumps(card.raw, indent=2) + "\n", encoding="utf-8")
        np.save(tmp / layout.VECTORS_FILE, np.ascontiguousarray(index.vectors, dtype=np.float32), allow_pickle=False)
        has_graph = index.save(tmp / layout.INDEX_FILE)
        text_map.save(tmp / layout.TEXT_MAP_FILE)
        write_catalog(items, tmp / layout.CATALOG_FILE)
        manifest = {
            "format": layout.FORMAT_NAME,
            "format_version": layout.FORMAT_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "shadematch_version": __version__,
            "libraries": library_versions(),
            "model": {"name": card.name, "onnx": layout.MODEL_FILE, "card": layout.CARD_FILE},
            "descriptor": {"dim": index.dim, "pooling": "srmac", "levels": levels},
            "index": {"kind": index.kind, "space": "ip", "file": layout.INDEX_FILE if has_graph else None,
                      **index.params.to_dict()},
            "text_map": {**text_params, "links": int(len(text_map.indices))},
            "search": {"k": k, "top": top, "vote": vote},
            "catalog": {"items": len(items), "groups": len({item.group for item in items})},
            "files": {
                str(path.relative_to(tmp)): {"bytes": path.stat().st_size, "sha256": layout.sha256_file(path)}
                for path in sorted(tmp.rglob("*")) if path.is_file()
            },
        }
        (tmp / layout.MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return Path(out)
