"""The one interface every inference backend implements (after Polygraphy's BaseRunner).

The public ``run`` checks names, dtypes and shapes once, here, so each backend only fills in ``_run_impl``
and a wrong feed fails with the same clear BackendError whichever engine is underneath.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from ..errors import BackendError


@dataclass(frozen=True)
class TensorSpec:
    """Name, dtype and shape of a model input; ``None`` marks a dynamic dimension."""

    name: str
    dtype: np.dtype
    shape: tuple[int | None, ...]


class Backend(ABC):
    """A loaded model that maps named numpy inputs to named numpy outputs.

    Thread safety: ``run`` may be called from several threads at once unless a backend says otherwise;
    ``close`` must not race with ``run``.
    """

    #: Registry name of the backend ("onnxruntime", "tensorrt").
    kind: str = ""

    def __init__(self, model_path: str | Path) -> None:
        self.model_path = Path(model_path)
        self._closed = False

    @property
    @abstractmethod
    def inputs(self) -> dict[str, TensorSpec]:
        """Input specs by name."""

    @property
    @abstractmethod
    def output_names(self) -> list[str]:
        """Output names in the model's order."""

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model on a batch; every input must be given with its declared dtype and shape."""
        if self._closed:
            raise BackendError(f"{self.kind} backend for {self.model_path.name} is closed")
        expected = self.inputs
        missing = sorted(set(expected) - set(feeds))
        unknown = sorted(set(feeds) - set(expected))
        if missing or unknown:
            raise BackendError(
                f"{self.model_path.name}: inputs do not match the model "
                f"(missing: {missing or 'none'}; unknown: {unknown or 'none'}; expected: {sorted(expected)})"
            )
        for name, spec in expected.items():
            array = feeds[name]
            if not isinstance(array, np.ndarray) or array.dtype != spec.dtype:
                got = getattr(array, "dtype", type(array).__name__)
                raise BackendError(f"{self.model_path.name}: input {name!r} must be {spec.dtype}, got {got}")
            if array.ndim != len(spec.shape) or any(
                want is not None and want != got for want, got in zip(spec.shape, array.shape)
            ):
                raise BackendError(
                    f"{self.model_path.name}: input {name!r} has shape {array.shape}, model expects "
                    f"{tuple('N' if d is None else d for d in spec.shape)}"
                )
        return self._run_impl(feeds)

    @abstractmethod
    def _run_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run checked feeds; return every output by name."""

    def close(self) -> None:
        """Release the model; calling it again does nothing."""
        if not self._closed:
            self._closed = True
            self._close_impl()

    def _close_impl(self) -> None:
        """Free backend resources (override where there are any beyond Python references)."""

    def __enter__(self) -> "Backend":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
