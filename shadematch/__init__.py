"""shadematch: find the catalogue product in a shopper's photo. This package is the public Python API.

    import shadematch

    with shadematch.Retriever.open("bundle") as retriever:
        for match in retriever.query("photo.jpg"):
            print(match.title, match.score, match.fields)

Names: ``shadematch`` is the one public import name. The distribution also installs the packages ``runtime`` (the
query-time implementation) and ``export`` (the offline stage); they keep the names of the design card, but they
are implementation packages: integrators import ``shadematch`` only, and their modules may move between
releases. Their generic names may clash with another distribution's top-level ``runtime`` or ``export``; a
clash cannot be undone at import time, so it is made loud instead of silent: importing ``shadematch`` checks that
``runtime`` is shadematch's own (its ``__distribution__``) and otherwise fails with an ImportError naming the
impostor's file, rather than answering with another project's code.

Importing ``shadematch`` is cheap: ``Retriever``, ``Match`` and ``Answer`` (which load ONNX Runtime) are imported
on first use; the error classes and ``__version__`` come with it.
"""
from __future__ import annotations

import runtime as _runtime

if getattr(_runtime, "__distribution__", None) != "shadematch":
    raise ImportError(
        f"shadematch: the package 'runtime' found at {getattr(_runtime, '__file__', None) or 'an unknown place'} is "
        "not shadematch's own: another installed package named 'runtime' shadows it; uninstall it or use a separate "
        "virtual environment"
    )

from runtime import (  # noqa: E402  (after the check: an impostor would not have these names)
    BackendError, BundleError, CatalogError, EngineError, ImageError, ImageTooLargeError, ModelCardError,
    ShadematchError, UnsupportedImageError, __version__,
)

_LAZY = ("Retriever", "Match", "Answer")


def __getattr__(name: str):
    # the retriever pulls in ONNX Runtime: imported on first use (runtime/__init__.py does the same)
    if name in _LAZY:
        return getattr(_runtime, name)
    raise AttributeError(f"module 'shadematch' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Retriever", "Match", "Answer", "ShadematchError", "ImageError", "ImageTooLargeError", "UnsupportedImageError",
    "BundleError", "BackendError", "CatalogError", "EngineError", "ModelCardError", "__version__",
]
