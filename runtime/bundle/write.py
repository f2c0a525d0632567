"""Writing a bundle atomically: everything goes to a temporary sibling directory, which replaces the
target only once complete, so a failed or interrupted build never leaves a half-written bundle and never
loses the bundle that was there before. Used by `build`, `build-vectors` and `tune` (derive_bundle)."""
from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .. import __version__
from ..checksums import sha256_file, sha256_files
from ..confidence.model import CONFIDENCE_FILE, ConfidenceModel
from ..engines.plans import PlanManifest, sidecar_for
from ..errors import BackendError, BundleError
from ..describe.image import load_image
from ..search.index import VisualIndex
from ..describe.modelcard import ModelCard, card_path_for
from ..describe.projection import Projection
from ..describe.views import QueryViews
from ..search.label_index import LabelIndex
from ..search.textmap import TextNeighbours
from ..versions import installed_versions
from . import layout
from .adaptation import Scatter, save_adaptation
from .catalog import CatalogItem, write_catalog
from .manifest import Manifest

_LIBRARIES = ("numpy", "onnxruntime", "hnswlib", "Pillow", "scikit-learn", "onnx", "torch")


def library_versions() -> dict[str, str]:
    """Versions of the libraries that made the bundle (recorded, not enforced)."""
    return installed_versions(_LIBRARIES)


def check_target(out: Path, overwrite: bool) -> Path:
    """``out`` made absolute, once it is a place a bundle may be written: new, or (with ``overwrite``) a bundle.

    Why so strict: replacing means deleting, and ``--force`` on a mistyped ``--out`` must never delete a folder of
    someone's files; nor may a bundle replace the working directory (``--out .``) or a folder that holds it."""
    target = Path(out).resolve()
    here = Path.cwd().resolve()
    if target == here or target in here.parents:
        raise BundleError(f"{out} is the current directory or holds it: write the bundle to another folder")
    if target.exists() or target.is_symlink():
        if not overwrite:
            raise BundleError(f"{out} already exists (use --force to replace it)")
        if not _is_bundle(target):
            raise BundleError(f"{out} exists and is not a shadematch bundle: refusing to replace it (choose another --out)")
    return target


def _is_bundle(path: Path) -> bool:
    """A directory whose manifest names the bundle format (its files need not be intact: a broken bundle may be rebuilt)."""
    try:
        manifest = json.loads((path / layout.MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return path.is_dir() and not path.is_symlink() and isinstance(manifest, dict) and manifest.get("format") == layout.FORMAT_NAME


#: Temporary siblings of a bundle being written carry their writer: .NAME.tmp-HOST-PID-RANDOM (.old- for the one
#: being replaced), so a later write can tell the leftovers of a killed build from the work of a running one.
_WORK_KINDS = ("tmp", "old")


def _work_prefix(out: Path, kind: str) -> str:
    return f".{out.name}.{kind}-{socket.gethostname()}-{os.getpid()}-"


def remove_stale_work(out: Path) -> list[Path]:
    """Delete the temporary siblings of ``out`` whose writer on this host is no longer running (a build killed in its
    write phase); those of live processes and of other hosts are left alone. Returns what was removed."""
    removed = []
    host = socket.gethostname()
    for kind in _WORK_KINDS:
        for path in out.parent.glob(f".{glob.escape(out.name)}.{kind}-*"):
            writer = path.name[len(f".{out.name}.{kind}-"):].rpartition("-")[0]  # HOST-PID (mkdtemp's suffix has no "-")
            writer_host, _, pid = writer.rpartition("-")
            if writer_host != host or not pid.isdigit() or _alive(int(pid)) or not path.is_dir() or path.is_symlink():
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


@contextmanager
def atomic_directory(out: Path, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``out`` when the block succeeds (see `check_target`); leftovers of
    earlier writes that were killed are removed first."""
    out = check_target(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_work(out)
    tmp = Path(tempfile.mkdtemp(prefix=_work_prefix(out, "tmp"), dir=out.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        if out.exists():
            backup = Path(tempfile.mkdtemp(prefix=_work_prefix(out, "old"), dir=out.parent))
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
    plans: Sequence[Path] = (),
    backend: str = "auto",
    pictures: bool = False,
    overwrite: bool = False,
    projection: tuple[Projection, dict[str, Any]] | None = None,
    adaptation: tuple[Scatter, np.ndarray] | None = None,
    labels: LabelsToWrite | None = None,
    carried_pictures: Sequence[Path | None] | None = None,
    lineage: dict[str, Any] | None = None,
    confidence: tuple[ConfidenceModel, dict[str, Any]] | None = None,
    query_views: QueryViews | None = None,
) -> Path:
    """Write a complete bundle to ``out`` (see DEVELOPERS.md for the layout); ``plans`` are TensorRT plans
    of the visual model (with their sidecars), ``backend`` the backend the bundle asks for by default;
    ``pictures`` carries a small JPEG of every catalogue image, so the kiosk shows them wherever the bundle goes;
    ``projection`` (with what to record about it) maps the model's descriptors into the index's space;
    ``adaptation`` (an adapted projection's scatter and the rows before projection) lets `tune` re-fit it;
    ``labels`` (the label index, the reading models and the fusion weight) lets queries read the photo's text;
    ``carried_pictures`` (an update) copies rows' pictures from the parent bundle; ``lineage`` (an update) records
    the parent bundle and what changed; ``confidence`` (an update that keeps the descriptor space) carries the match
    confidence model with its manifest section; ``query_views``: how a query photo is described
    (runtime.describe.views; None: from the card's crop alone)."""
    if len(items) != len(index) or len(items) != len(text_map):
        raise BundleError(f"bundle parts disagree: {len(items)} items, {len(index)} vectors, {len(text_map)} text rows")
    if projection is not None and (projection[0].in_dim, projection[0].out_dim) != (card.feature_dim, index.dim):
        raise BundleError(f"the projection maps {projection[0].in_dim} -> {projection[0].out_dim} dims; the model gives "
                          f"{card.feature_dim} and the index holds {index.dim}")
    engines = [_checked_plan(Path(plan), card) for plan in plans]
    names = [manifest.plan for _, manifest in engines]
    if len(set(names)) != len(names):
        raise BundleError(f"two plans share a file name: {', '.join(sorted(names))}")
    with atomic_directory(out, overwrite) as tmp:
        (tmp / "models").mkdir()
        shutil.copyfile(model_path, tmp / layout.MODEL_FILE)
        if engines:
            (tmp / layout.ENGINES_DIR).mkdir()
        for plan, manifest in engines:
            shutil.copyfile(plan, tmp / layout.ENGINES_DIR / plan.name)
            shutil.copyfile(sidecar_for(plan), tmp / layout.ENGINES_DIR / sidecar_for(plan).name)
        (tmp / layout.CARD_FILE).write_text(json.dumps(card.raw, indent=2) + "\n", encoding="utf-8")
        np.save(tmp / layout.VECTORS_FILE, np.ascontiguousarray(index.vectors, dtype=np.float32), allow_pickle=False)
        has_graph = index.save(tmp / layout.INDEX_FILE, tmp / layout.INDEX_ROWS_FILE)
        text_map.save(tmp / layout.TEXT_MAP_FILE)
        if projection is not None:
            projection[0].save(tmp / layout.PROJECTION_FILE)
        if adaptation is not None:
            save_adaptation(tmp / layout.ADAPTATION_FILE, *adaptation)
        if labels is not None:
            labels.write(tmp)
        write_catalog(items, tmp / layout.CATALOG_FILE)
        if confidence is not None:
            confidence[0].save(tmp / CONFIDENCE_FILE)
        if pictures:
            write_pictures(items, tmp / layout.PICTURES_DIR, carried_pictures)
        manifest = {
            "format": layout.FORMAT_NAME,
            # the lowest version that holds what this bundle carries (see runtime.bundle.FORMAT_VERSION)
            "format_version": (4 if query_views is not None else 3 if labels is not None
                               else 2 if projection is not None else 1),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "shadematch_version": __version__,
            "libraries": library_versions(),
            "model": {"name": card.name, "onnx": layout.MODEL_FILE, "card": layout.CARD_FILE},
            "descriptor": {"dim": index.dim, "pooling": "srmac", "levels": levels,
                           **({"projection": {"file": layout.PROJECTION_FILE, **projection[1],
                                              **({"refit": layout.ADAPTATION_FILE} if adaptation else {})}}
                              if projection else {}),
                           **({"query_views": query_views.to_dict()} if query_views is not None else {})},
            "index": {"kind": index.kind, "space": "ip", "file": layout.INDEX_FILE if has_graph else None,
                      **({"rows": layout.INDEX_ROWS_FILE, "deleted": index.deleted} if index.label_rows is not None else {}),
                      **index.params.to_dict()},
            "text_map": {**text_params, "links": int(len(text_map.indices))},
            "search": {"k": k, "top": top, "vote": vote},
            **({"labels": labels.section()} if labels is not None else {}),
            "backend": backend,
            "engines": [
                {"plan": f"{layout.ENGINES_DIR}/{m.plan}", "manifest": f"{layout.ENGINES_DIR}/{m.plan}.json",
                 "flavor": m.flavor, "library_version": m.library_version,
                 "compute_capabilities": list(m.compute_capabilities), "precision": m.precision}
                for _, m in engines
            ],
            "catalog": {"items": len(items), "groups": len({item.group for item in items})},
            "pictures": {"dir": layout.PICTURES_DIR, "side": layout.PICTURE_SIDE} if pictures else None,
            **({"lineage": lineage} if lineage else {}),
            **({"confidence": confidence[1]} if confidence else {}),
            "files": _file_entries(tmp),
        }
        _write_manifest(tmp, manifest)
    return Path(out)


@dataclass(frozen=True)
class LabelsToWrite:
    """What a bundle that reads labels carries: the label index, the detector and recogniser (ONNX with their
    cards, copied in so the bundle stays self-contained) and the weight of a fully trusted text match."""

    index: LabelIndex
    detector: Path
    recogniser: Path
    weight: float

    def write(self, folder: Path) -> None:
        self.index.save(folder / layout.LABELS_FILE)
        for source, target in ((self.detector, layout.TEXT_DETECTOR_FILE), (self.recogniser, layout.TEXT_RECOGNISER_FILE)):
            shutil.copyfile(source, folder / target)
            shutil.copyfile(card_path_for(source), card_path_for(folder / target))

    def section(self) -> dict[str, Any]:
        return {"file": layout.LABELS_FILE, "detector": layout.TEXT_DETECTOR_FILE,
                "recogniser": layout.TEXT_RECOGNISER_FILE, "weight": self.weight, "products": len(self.index),
                "grams": int(len(self.index.vocabulary)), "words_read": int(len(self.index.reads.text))}


def derive_bundle(source: Path, out: Path, writers: dict[str, Callable[[Path], None]],
                  change: Callable[[dict[str, Any]], None], overwrite: bool = False) -> Path:
    """A new bundle at ``out`` made from the bundle at ``source``: every file copied, the files named in ``writers``
    written anew (each writer gets the path to write), the manifest changed by ``change`` and its checksums
    recomputed. Atomic like every bundle write; ``source`` is never modified (``out`` may be ``source`` itself
    only with ``overwrite``: the new bundle then replaces it in one rename).

    Why it is cheap: a 500K bundle is ~5 GB, and `build` (its confidence model) and `tune` change a few small
    files. When the result replaces ``source``, its files are hard links to the old ones (whose directory is
    removed), not copies; every file no writer touches keeps the sha256 the source's manifest records, so a file
    already damaged stays detectable instead of being hashed into the new manifest as it is."""
    source = Path(source)
    manifest = json.loads((source / layout.MANIFEST).read_text(encoding="utf-8"))
    recorded = {name: entry for name, entry in manifest.get("files", {}).items() if name not in writers}
    in_place = Path(out).resolve() == source.resolve()
    with atomic_directory(out, overwrite) as tmp:
        shutil.copytree(source, tmp, dirs_exist_ok=True, copy_function=_link_or_copy if in_place else shutil.copy2)
        for name, write in writers.items():
            (tmp / name).unlink(missing_ok=True)  # a link: writing through it would change the source's file
            write(tmp / name)
        change(manifest)
        manifest["files"] = _file_entries(tmp, recorded)
        (tmp / layout.MANIFEST).unlink()  # a link too: the source's manifest must stay as it is until the rename
        _write_manifest(tmp, manifest)
    return Path(out)


def _link_or_copy(source: str, target: str) -> None:
    """A hard link where the file system allows one, else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """manifest.json, checked by the very Manifest type that opening uses, so a writer cannot produce a bundle
    its own reader refuses (the check raises before the bundle is renamed into place)."""
    Manifest.parse(manifest, f"{folder.name}/{layout.MANIFEST}", layout.READABLE_VERSIONS, layout.FORMAT_NAME)
    (folder / layout.MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _file_entries(folder: Path, recorded: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The manifest's `files`: size and sha256 of every file under ``folder`` but the manifest (hashed side by side).
    ``recorded``: entries known already (a derived bundle's unchanged files), kept when the size still agrees."""
    recorded = recorded or {}
    paths = sorted(path for path in folder.rglob("*") if path.is_file() and path != folder / layout.MANIFEST)
    names = [str(path.relative_to(folder)) for path in paths]
    known = {name: recorded[name] for name, path in zip(names, paths)
             if isinstance(recorded.get(name), dict) and recorded[name].get("bytes") == path.stat().st_size}
    fresh = [(name, path) for name, path in zip(names, paths) if name not in known]
    hashed = dict(zip((name for name, _ in fresh), sha256_files([path for _, path in fresh])))
    return {name: known[name] if name in known else {"bytes": path.stat().st_size, "sha256": hashed[name]}
            for name, path in zip(names, paths)}


def _checked_plan(plan: Path, card: ModelCard) -> tuple[Path, PlanManifest]:
    """A plan with its sidecar, checked to be intact and built from the bundle's visual model."""
    if not plan.is_file():
        raise BundleError(f"engine plan not found: {plan}")
    try:
        manifest = PlanManifest.load(sidecar_for(plan))
    except BackendError as exc:
        raise BundleError(str(exc)) from None
    if manifest.plan != plan.name:
        raise BundleError(f"{sidecar_for(plan).name} describes {manifest.plan}, not {plan.name}")
    if sha256_file(plan) != manifest.plan_sha256:
        raise BundleError(f"{plan}: checksum does not match its manifest; the plan was modified or corrupted")
    if manifest.onnx_sha256 != card.sha256:
        raise BundleError(
            f"{plan.name} was built from another model ({manifest.model_name}, ONNX sha256 {manifest.onnx_sha256[:12]}…), "
            f"not the bundle's {card.name}; build it with `shadematch engine build --onnx` on that model"
        )
    return plan, manifest


def write_pictures(items: Sequence[CatalogItem], folder: Path, carried: Sequence[Path | None] | None = None) -> None:
    """A JPEG of at most PICTURE_SIDE pixels per catalogue row (`runtime.bundle.picture_name`); the images were
    decoded once already by the feature extraction, so a bad one cannot get this far. ``carried[row]``, when not
    None, is that row's picture in an earlier bundle, copied as it is (an update: its image may be gone)."""
    folder.mkdir()
    for row, item in enumerate(items):
        if carried is not None and carried[row] is not None:
            shutil.copyfile(carried[row], folder / layout.picture_name(row))
            continue
        image = load_image(item.image, min_size=layout.PICTURE_SIDE)
        image.thumbnail((layout.PICTURE_SIDE, layout.PICTURE_SIDE))
        image.save(folder / layout.picture_name(row), "JPEG", quality=85)
