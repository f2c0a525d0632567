"""Text detection at query time: photo -> EAST maps -> quads in the photo's pixels, and the text mask T_m
resampled to the visual model's feature grid (eq. 2 of MANet, Wang et al., Sci China Inf Sci 2020, takes it from there)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..backends import Backend, open_backend
from ..errors import BackendError, ModelCardError
from ..describe.image import DEFAULT_MAX_PIXELS, ImageSource, load_image, prepare
from ..describe.modelcard import ModelCard, card_path_for
from .decode import decode

#: Where a development checkout keeps the shipped text model (engines/ beside runtime/).
DEFAULT_TEXT_MODEL = Path(__file__).resolve().parents[2] / "engines" / "east_lite0.onnx"


@dataclass(frozen=True)
class TextBox:
    """One detected text instance: quad clockwise from its top-left, in the photo's pixels."""

    quad: np.ndarray
    score: float

    def to_dict(self) -> dict:
        return {"quad": [[round(float(x), 1), round(float(y), 1)] for x, y in self.quad], "score": round(self.score, 4)}


class TextDetector:
    """EAST behind any backend. Thread-safe if the backend is (ONNX Runtime is)."""

    def __init__(self, backend: Backend, card: ModelCard, score_threshold: float = 0.8, nms_threshold: float = 0.2) -> None:
        if card.task != "text":
            raise ModelCardError(f"{card.name} is a {card.task} model, not a text detector")
        for role in ("score", "geometry"):
            if card.outputs.get(role) not in backend.output_names:
                raise BackendError(f"model card names {role} output {card.outputs.get(role)!r}, the model has {backend.output_names}")
        self.backend = backend
        self.card = card
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold

    @classmethod
    def open(cls, model: str | Path = DEFAULT_TEXT_MODEL, backend: str = "auto", threads: int | None = None, **options) -> "TextDetector":
        """Load an EAST ONNX model with its card (NAME.card.json beside NAME.onnx)."""
        model = Path(model)
        if not model.is_file():
            raise ModelCardError(f"text model not found: {model}")
        card = ModelCard.load(card_path_for(model))
        return cls(open_backend(model, backend, threads=threads), card, **options)

    def maps(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Score (N, 1, H/4, W/4) and geometry (N, 5, H/4, W/4) of a prepared batch."""
        outputs = self.backend.run({self.card.input.name: batch})
        return outputs[self.card.outputs["score"]], outputs[self.card.outputs["geometry"]]

    def detect(self, source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> list[TextBox]:
        """Text boxes of one photo, in its (upright) pixels."""
        image = load_image(source, max_pixels=max_pixels)
        prepared = prepare(image, self.card.input)
        score, geometry = self.maps(prepared[None])
        quads, scores = decode(score[0, 0], geometry[0], self.score_threshold, self.nms_threshold)
        # The model saw the photo stretched to prepared's size: scale x and y back separately.
        scale = np.array([image.width / prepared.shape[2], image.height / prepared.shape[1]], dtype=np.float32)
        return [TextBox(quad * scale, float(s)) for quad, s in zip(quads, scores)]

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> "TextDetector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def text_mask(score: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """The text mask T_m of eq. 2: EAST's score map (N, 1, H, W) averaged onto the (h, w) feature grid.

    Each grid cell takes the mean score of the map cells it covers (adaptive average pooling, the same bin
    edges as torch's), so a cell half-covered by text gets half the evidence.
    """
    if score.ndim != 4 or score.shape[1] != 1:
        raise ValueError(f"need a score map (N, 1, H, W), got {score.shape}")
    h, w = grid
    H, W = score.shape[2:]
    # Summed-area table: every bin's sum in O(1).
    table = np.pad(score.astype(np.float64).cumsum(2).cumsum(3), ((0, 0), (0, 0), (1, 0), (1, 0)))
    y0 = (np.arange(h) * H) // h
    y1 = -((-(np.arange(h) + 1) * H) // h)
    x0 = (np.arange(w) * W) // w
    x1 = -((-(np.arange(w) + 1) * W) // w)
    sums = (table[:, :, y1][:, :, :, x1] - table[:, :, y0][:, :, :, x1]
            - table[:, :, y1][:, :, :, x0] + table[:, :, y0][:, :, :, x0])
    areas = (y1 - y0)[:, None] * (x1 - x0)[None, :]
    return (sums / areas).astype(np.float32)
