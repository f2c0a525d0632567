"""shadematch runtime: the light query-time package (numpy, ONNX Runtime, hnswlib, Pillow).

    from runtime import Retriever
    with Retriever.open("bundle") as retriever:
        for match in retriever.query("photo.jpg"):
            print(match.title, match.score, match.stage)
"""
from .errors import (
    BackendError, BundleError, CatalogError, EngineError, ImageError, ImageTooLargeError, ModelCardError,
    ShadematchError, UnsupportedImageError,
)

__version__ = "0.1.0"
#: Which distribution this `runtime` package belongs to: `import shadematch` checks it (see shadematch/__init__.py).
__distribution__ = "shadematch"


def __getattr__(name: str):
    # Retriever pulls in ONNX Runtime; import it on first use so `shadematch --help` stays instant.
    if name in ("Retriever", "Match", "Answer"):
        from . import retriever

        return getattr(retriever, name)
    raise AttributeError(name)


__all__ = [
    "Retriever", "Match", "Answer", "ShadematchError", "ImageError", "ImageTooLargeError", "UnsupportedImageError",
    "BundleError", "BackendError", "CatalogError", "EngineError", "ModelCardError", "__version__",
]
