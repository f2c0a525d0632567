"""Optimisation profiles (min / opt / max input shapes) from a model card.

- visual (fixed H x W): batch 1..N at the card's size; opt batch 1, the kiosk's case (one photo a query).
- text (EAST, any H, W multiple of 32): the detector resizes the longer side to the card's size S and keeps
  the aspect, so an input lies between 32 x 32 and S x S; opt is S x S at batch 1.
"""
from __future__ import annotations

from dataclasses import dataclass

from runtime.describe.modelcard import ModelCard

#: the smallest side the stride-32 text detector can take (one output cell of the deepest stage)
MIN_TEXT_SIDE = 32


@dataclass(frozen=True)
class ShapeProfile:
    name: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def to_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


def profile_for(card: ModelCard, max_batch: int) -> ShapeProfile:
    """The profile of the card's single image input for batches 1..max_batch."""
    if max_batch < 1:
        raise ValueError(f"max batch must be at least 1, got {max_batch}")
    spec = card.input
    if spec.resize == "longer_side_multiple_32":
        side = max(spec.height, spec.width)
        return ShapeProfile(spec.name, (1, 3, MIN_TEXT_SIDE, MIN_TEXT_SIDE), (1, 3, side, side), (max_batch, 3, side, side))
    shape = (3, spec.height, spec.width)
    return ShapeProfile(spec.name, (1, *shape), (1, *shape), (max_batch, *shape))
