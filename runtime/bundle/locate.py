"""Where the bundle is when `--bundle` is not given: beside the standalone executable.

A store's IT copies one executable folder and one bundle; the rule below lets them start it with no
arguments to remember. It applies only to the frozen (PyInstaller) executable: from a Python install the
bundle is always named on the command line, so a stray folder in the working directory is never picked up.
"""
from __future__ import annotations

import sys
from pathlib import Path

from . import MANIFEST
from ..errors import BundleError

#: The folder name looked for first, beside the executable.
BUNDLE_DIR_NAME = "bundle"


def is_frozen() -> bool:
    """True inside the PyInstaller executable."""
    return bool(getattr(sys, "frozen", False))


def bundle_beside(folder: Path) -> Path:
    """``folder/bundle`` if it is there, else the one sub-folder holding a manifest.json; else BundleError."""
    named = folder / BUNDLE_DIR_NAME
    if named.is_dir():
        return named
    candidates = sorted(child for child in folder.iterdir() if (child / MANIFEST).is_file())
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        names = ", ".join(child.name for child in candidates)
        raise BundleError(f"several bundles beside the executable ({names}): choose one with --bundle")
    raise BundleError(f"no --bundle given and no {BUNDLE_DIR_NAME}/ folder (or bundle directory) in {folder}")


def resolve_bundle(given: Path | None) -> Path:
    """The bundle to open: the one given, or (executable only) the one beside the executable."""
    if given is not None:
        return given
    if not is_frozen():
        raise BundleError("--bundle is required (a bundle beside the executable is looked for only in the standalone build)")
    return bundle_beside(Path(sys.executable).resolve().parent)
