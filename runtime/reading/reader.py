"""Read the label: photo (at the camera's resolution) -> words with their confidence and box.

Detection (DB, PP-OCRv4) runs on the product region that MANet's saliency map points at, scaled so its longer
side is the detector card's size; each text line is then cropped from the photo itself, not from the detector's
input, so small print keeps every pixel the camera gave it. The lines read are capped (the largest first:
brand and product name before the small print), which bounds the cost of a photo full of tiny text.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..backends import Backend, open_backend
from ..describe.image import prepare
from ..describe.modelcard import InputSpec, ModelCard, card_path_for
from ..describe.pooling import saliency_region
from ..errors import ModelCardError
from .recognise import Recogniser, card_output
from .regions import text_regions

ENGINES = Path(__file__).resolve().parents[2] / "engines"
#: The shipped PP-OCRv4 detector and recogniser (Apache-2.0, from rapidocr-onnxruntime).
DEFAULT_DETECTOR = ENGINES / "ppocr_det_v4.onnx"
DEFAULT_RECOGNISER = ENGINES / "ppocr_rec_v4.onnx"
#: Lines recognised per photo at most, the largest first. On Grocery val, 6, 8 and 16 lines per query photo gave the
#: same fused accuracy; recognition is most of reading's time, so queries read 6.
MAX_LINES = 6
#: Lines read per catalogue image: offline, so every line that may name the product.
CATALOGUE_LINES = 16
#: Reads below this confidence are dropped (RapidOCR's default text_score).
MIN_CONFIDENCE = 0.5
#: Lines lower than this many photo pixels are not read: no recogniser reads a 5-pixel line.
MIN_LINE_HEIGHT = 6


@dataclass(frozen=True)
class Word:
    """One line of text read from a photo: what it says, how sure the recogniser is, and where (x0, y0, x1, y1)."""

    text: str
    confidence: float
    box: tuple[float, float, float, float]

    def to_dict(self) -> dict:
        return {"text": self.text, "confidence": round(self.confidence, 4), "box": [round(v, 1) for v in self.box]}


#: Share of the salient box's size added on each side: the saliency map (at 1/32 of the model's input) hugs the
#: pack's most distinctive part and can cut off a label line at its edge.
REGION_MARGIN = 0.25


def product_box(saliency: np.ndarray, size: tuple[int, int], spec: InputSpec, margin: float = REGION_MARGIN
                ) -> tuple[int, int, int, int]:
    """The photo's product region (x0, y0, x1, y1): the bounding box of the salient cells of one saliency map
    (h, w) (eq. 1's rule: at or above the mean), mapped from the visual model's centre crop back to the photo of
    ``size`` (width, height), grown by ``margin`` of its size on each side."""
    if spec.resize != "shorter_side_center_crop":
        return 0, 0, size[0], size[1]
    salient = saliency_region(saliency[None, None])[0, 0]
    ys, xs = np.nonzero(salient)
    h, w = salient.shape
    crop = min(size)  # the centre crop's side, in photo pixels (a square input)
    left, top = (size[0] - crop) / 2, (size[1] - crop) / 2
    x0, x1 = left + xs.min() / w * crop, left + (xs.max() + 1) / w * crop
    y0, y1 = top + ys.min() / h * crop, top + (ys.max() + 1) / h * crop
    grow_x, grow_y = (x1 - x0) * margin, (y1 - y0) * margin
    return (max(0, int(x0 - grow_x)), max(0, int(y0 - grow_y)),
            min(size[0], int(np.ceil(x1 + grow_x))), min(size[1], int(np.ceil(y1 + grow_y))))


class LabelReader:
    """A DB detector and a CTC recogniser. Thread-safe (ONNX Runtime sessions are; the rest is per call)."""

    def __init__(self, detector: ModelCard, detector_backend: Backend, recogniser: Recogniser,
                 max_lines: int = MAX_LINES) -> None:
        self.output = card_output(detector, detector_backend, "text_detection", "probability", "text detector")
        self.detector = detector
        self.detector_backend = detector_backend
        self.recogniser = recogniser
        self.max_lines = max_lines
        self.decode_options = dict(detector.raw.get("decode") or {})

    @classmethod
    def open(cls, detector: str | Path = DEFAULT_DETECTOR, recogniser: str | Path = DEFAULT_RECOGNISER,
             threads: int | None = None, max_lines: int = MAX_LINES) -> "LabelReader":
        """Load both ONNX models with their cards (NAME.card.json beside NAME.onnx) on ONNX Runtime."""
        for model in (Path(detector), Path(recogniser)):
            if not model.is_file():
                raise ModelCardError(f"text reading model not found: {model}")
        # No threads left spinning after a run: the reader's sessions take turns with the visual model's on the
        # same cores.
        rec_card = ModelCard.load(card_path_for(Path(recogniser)))
        recogniser_ = Recogniser(open_backend(recogniser, "onnxruntime", threads=threads, spin=False), rec_card)
        return cls(ModelCard.load(card_path_for(Path(detector))),
                   open_backend(detector, "onnxruntime", threads=threads, spin=False), recogniser_, max_lines=max_lines)

    def lines(self, image: Image.Image, region: tuple[int, int, int, int] | None = None) -> list[tuple[tuple[float, ...], float]]:
        """Text line boxes in photo pixels with their detection score, largest first, at most ``max_lines``."""
        x0, y0, x1, y1 = region or (0, 0, image.width, image.height)
        if x1 - x0 < 8 or y1 - y0 < 8:
            return []
        prepared = prepare(image, self.detector.input, box=(x0, y0, x1, y1))
        probability = self.detector_backend.run({self.detector.input.name: prepared[None]})[self.output][0, 0]
        boxes, scores = text_regions(probability, **self.decode_options)
        sx, sy = (x1 - x0) / probability.shape[1], (y1 - y0) / probability.shape[0]
        lines = []
        for (bx0, by0, bx1, by1), score in zip(boxes, scores):
            box = (x0 + bx0 * sx, y0 + by0 * sy, x0 + bx1 * sx, y0 + by1 * sy)
            if box[3] - box[1] >= MIN_LINE_HEIGHT and box[2] - box[0] >= MIN_LINE_HEIGHT:
                lines.append((box, float(score)))
        lines.sort(key=lambda line: -(line[0][2] - line[0][0]) * (line[0][3] - line[0][1]))
        return lines[: self.max_lines]

    def read(self, image: Image.Image, region: tuple[int, int, int, int] | None = None) -> list[Word]:
        """The words on a photo (RGB, full resolution), read inside ``region`` (x0, y0, x1, y1) when given."""
        return self.recognise(image, self.lines(image, region))

    def recognise(self, image: Image.Image, lines: list[tuple[tuple[float, ...], float]]) -> list[Word]:
        """The words of the given lines (from `lines`), each cropped from the photo itself."""
        if not lines:
            return []
        crops = [image.crop(tuple(int(round(v)) for v in box)) for box, _ in lines]
        words = []
        for (box, _), (text, confidence) in zip(lines, self.recogniser.read(crops)):
            text = text.strip()
            if text and confidence >= MIN_CONFIDENCE:
                words.append(Word(text, confidence, tuple(round(float(v), 1) for v in box)))
        return words

    def close(self) -> None:
        self.detector_backend.close()
        self.recogniser.backend.close()

    def __enter__(self) -> "LabelReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
