"""Photos -> descriptors and the words on their labels, in one decode and one pass of the visual model.

Shared by query time (Retriever) and catalogue indexing (export: worker processes and Ray), so the words of a
shopper's photo and of the catalogue are read the same way: decoded at up to the camera's resolution, read
inside the product region that the saliency map of the very same model pass points at.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

from ..describe.embedder import Embedder
from ..describe.image import DEFAULT_MAX_PIXELS, ImageSource, load_image, reduced
from ..errors import ImageError, at_position
from .reader import LabelReader, Word, product_box

#: JPEGs are decoded with their shorter side at least this long (DCT scaling skips the rest): a 12 MP phone photo
#: keeps ~1600 px, more than small print needs, at a quarter of the decoding.
READ_SIDE = 1600


def decode_photos(sources: Sequence[ImageSource], max_pixels: int = DEFAULT_MAX_PIXELS) -> list[Image.Image]:
    """Upright RGB photos at reading resolution; an unusable one raises ImageError naming its position."""
    photos = []
    for position, source in enumerate(sources):
        try:
            photos.append(load_image(source, min_size=READ_SIDE, max_pixels=max_pixels))
        except ImageError as exc:
            raise at_position(exc, position, len(sources)) from None
    return photos


def describe_and_read(embedder: Embedder, reader: LabelReader, photos: Sequence[Image.Image], batch_size: int = 16
                      ) -> tuple[np.ndarray, list[list[Word]]]:
    """Descriptors (N, D) of decoded photos (upright RGB, as `decode_photos` gives them) and the words read on
    each one's product region, which the saliency map S of the same model pass points at."""
    chunks, words = [], []
    step = embedder.photos_per_run(batch_size)
    for start in range(0, len(photos), step):
        chunk = photos[start : start + step]
        side = embedder.decode_side
        outputs = embedder.run_model(np.concatenate([embedder.inputs(reduced(photo, side)) for photo in chunk]))
        chunks.append(embedder.pool(outputs))
        saliency = outputs[embedder.card.outputs["saliency"]][:: embedder.views_per_photo, 0]  # each photo's own crop
        words += [reader.read(photo, product_box(smap, photo.size, embedder.card.input))
                  for photo, smap in zip(chunk, saliency)]
    if not chunks:
        return np.zeros((0, embedder.dim), dtype=np.float32), []
    return np.concatenate(chunks), words
