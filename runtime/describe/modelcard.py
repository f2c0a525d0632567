"""Machine-readable model cards: the single source of a model's input size, normalisation and output names."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelCardError

RESIZE_POLICIES = ("shorter_side_center_crop", "longer_side_multiple_32", "height_keep_ratio")
#: Precisions a card may declare: float32 (a card without the field) or INT8 quantised for ONNX Runtime's CPU kernels.
FP32, INT8 = "fp32", "int8"
PRECISIONS = (FP32, INT8)


def card_path_for(model: Path) -> Path:
    """A model NAME.onnx has its card at NAME.card.json beside it."""
    return model.with_name(model.stem + ".card.json")


def quantized_path(model: Path) -> Path:
    """Where the INT8 model quantised from ``model`` lives: NAME_int8.onnx beside NAME.onnx (`shadematch quantize`)."""
    return model.with_name(model.stem + "_" + INT8 + model.suffix)


@dataclass(frozen=True)
class InputSpec:
    """How a photo becomes the model's input tensor."""

    name: str
    height: int
    width: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: str
    #: Channel order the model expects: "RGB", or "BGR" for models trained on OpenCV's order (PP-OCR).
    color: str = "RGB"


@dataclass(frozen=True)
class ModelCard:
    """The JSON card shipped next to every ONNX model (see DEVELOPERS.md)."""

    name: str
    task: str
    file: str
    sha256: str
    input: InputSpec
    outputs: dict[str, str]
    feature_dim: int
    raw: dict[str, Any]

    @property
    def precision(self) -> str:
        """FP32 or INT8 (quantised from the float32 model its card names under ``quantized_from``)."""
        return str(self.raw.get("precision", FP32))

    @classmethod
    def load(cls, path: str | Path) -> "ModelCard":
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelCardError(f"model card not found: {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelCardError(f"model card {path} is not valid JSON: {exc}") from None
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "model card") -> "ModelCard":
        try:
            spec = raw["input"]
            input_spec = InputSpec(
                name=str(spec["name"]),
                height=int(spec["height"]),
                width=int(spec["width"]),
                mean=_triple(spec["mean"], "mean"),
                std=_triple(spec["std"], "std"),
                resize=str(spec["resize"]),
                color=str(spec.get("color", "RGB")),
            )
            card = cls(
                name=str(raw["name"]),
                task=str(raw["task"]),
                file=str(raw["file"]),
                sha256=str(raw["sha256"]),
                input=input_spec,
                outputs={str(k): str(v) for k, v in dict(raw["outputs"]).items()},
                feature_dim=int(raw.get("feature_dim", 0)),
                raw=raw,
            )
        except KeyError as exc:
            raise ModelCardError(f"{source} lacks the field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ModelCardError(f"{source} has a malformed field: {exc}") from None
        if input_spec.resize not in RESIZE_POLICIES:
            raise ModelCardError(
                f"{source}: unknown resize policy {input_spec.resize!r} (known: {', '.join(RESIZE_POLICIES)})"
            )
        if str(raw.get("precision", FP32)) not in PRECISIONS:
            raise ModelCardError(f"{source}: unknown precision {raw['precision']!r} (known: {', '.join(PRECISIONS)})")
        if input_spec.color not in ("RGB", "BGR"):
            raise ModelCardError(f"{source}: unknown colour order {input_spec.color!r} (known: RGB, BGR)")
        if min(input_spec.std) <= 0 or input_spec.height <= 0 or input_spec.width <= 0:
            raise ModelCardError(f"{source}: input size and std must be positive")
        return card


def _triple(value: Any, field: str) -> tuple[float, float, float]:
    values = tuple(float(v) for v in value)
    if len(values) != 3:
        raise ValueError(f"{field} needs 3 values (RGB), got {len(values)}")
    return values  # type: ignore[return-value]
