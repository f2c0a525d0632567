"""Text line crops -> strings with a confidence: a CTC recogniser (PP-OCRv4's) behind any backend."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

from ..backends import Backend
from ..describe.image import prepare
from ..describe.modelcard import ModelCard
from ..errors import BackendError, ModelCardError

#: Crops per model call at most. Crops are sorted by width and a batch closes when the next crop is WIDTH_SPREAD
#: times wider than its first: the recogniser's time grows with the padded width, so a short shade code is not
#: padded to the width of the brand line (4 lines of a lipstick photo: 26 ms in one batch, 19 in width groups).
BATCH = 8
WIDTH_SPREAD = 1.5


def card_output(card: ModelCard, backend: Backend, task: str, role: str, what: str) -> str:
    """The name of the output the card gives ``role``, checked: the card is for ``task`` (a ``what``) and the model
    has that output."""
    if card.task != task:
        raise ModelCardError(f"{card.name} is a {card.task} model, not a {what}")
    name = card.outputs.get(role, "")
    if name not in backend.output_names:
        raise BackendError(f"model card names output {name!r}, the model has {backend.output_names}")
    return name


class Recogniser:
    """Greedy CTC decoding of a recogniser whose card lists its characters. Thread-safe if the backend is."""

    def __init__(self, backend: Backend, card: ModelCard) -> None:
        self.output = card_output(card, backend, "text_recognition", "probabilities", "text recogniser")
        ctc = card.raw.get("ctc") or {}
        charset = ctc.get("charset")
        if not isinstance(charset, str) or not charset:
            raise ModelCardError(f"{card.name}: card lacks its CTC characters (ctc.charset, one string)")
        self.backend = backend
        self.card = card
        self.blank = int(ctc.get("blank", 0))
        # Class c of the model's output is charset[c - 1]; the blank (class 0) has no character.
        self.characters = np.array([""] + list(charset), dtype=object)

    def read(self, crops: Sequence[Image.Image]) -> list[tuple[str, float]]:
        """(text, confidence) per crop: the mean probability of the characters kept, 0 for an empty read."""
        results: list[tuple[str, float]] = [("", 0.0)] * len(crops)
        prepared = [prepare(crop, self.card.input) for crop in crops]
        order = sorted(range(len(crops)), key=lambda i: prepared[i].shape[2])
        for chunk in _width_groups(order, [prepared[i].shape[2] for i in order]):
            width = max(prepared[i].shape[2] for i in chunk)
            batch = np.zeros((len(chunk), 3, self.card.input.height, width), dtype=np.float32)
            for slot, i in enumerate(chunk):
                batch[slot, :, :, : prepared[i].shape[2]] = prepared[i]
            probabilities = self.backend.run({self.card.input.name: batch})[self.output]
            if probabilities.ndim != 3 or probabilities.shape[2] != len(self.characters):
                raise BackendError(f"{self.card.name}: output {probabilities.shape} does not match the card's "
                                   f"{len(self.characters)} classes (blank + characters)")
            for slot, i in enumerate(chunk):
                results[i] = self._decode(probabilities[slot])
        return results

    def _decode(self, probabilities: np.ndarray) -> tuple[str, float]:
        """Greedy CTC: best class per step, repeats merged, blanks dropped."""
        best = probabilities.argmax(axis=1)
        keep = best != self.blank
        keep[1:] &= best[1:] != best[:-1]
        if not keep.any():
            return "", 0.0
        text = "".join(self.characters[best[keep]])
        return text, float(probabilities[keep, best[keep]].mean())


def _width_groups(order: list[int], widths: list[int]) -> list[list[int]]:
    """``order`` (crops sorted by width) cut into batches of at most BATCH whose widths stay within WIDTH_SPREAD."""
    groups: list[list[int]] = []
    first = 0
    for index, width in zip(order, widths):
        if not groups or len(groups[-1]) == BATCH or width > WIDTH_SPREAD * first:
            groups.append([])
            first = width
        groups[-1].append(index)
    return groups
