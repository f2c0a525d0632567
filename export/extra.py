"""The one-line error of an offline command whose libraries are not installed."""
from __future__ import annotations

from runtime.errors import ShadematchError


def needs_export_extra(exc: ImportError) -> ShadematchError:
    """Why: `pip install shadematch` is the light runtime; torch, onnx and scikit-learn come with the `export` extra."""
    return ShadematchError(f"needs the offline stage: pip install 'shadematch[export]' ({exc.name or exc} is missing)")
