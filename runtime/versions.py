"""Installed versions of named distributions: what bundles and benchmark reports record (never enforced)."""
from __future__ import annotations

from importlib import metadata
from typing import Iterable


def installed_versions(names: Iterable[str]) -> dict[str, str]:
    """name -> version of each distribution that is installed; absent ones are left out."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
