"""EAN/UPC barcodes on a shopper's photo, read with zxing-cpp (a well-kept C++ reader with Python wheels, ~2 MB).

Every query of a bundle whose catalogue has GTINs runs the reader, so it is set for speed on a photo with no
barcode (the common case): one pass over the photo at its decoded resolution, rows only (``try_rotate`` off: a
barcode tilted by up to ~20 degrees still reads, one turned sideways does not and falls back to the visual
search), no downscaled pyramid and no inverted pass; a barcode it sees is read twice more before it counts
(BarcodeReader._confirmed). What it costs is a stage of `shadematch bench`.
Thread-safe: each call works on its own buffers.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from .gtin import gtin_problem, normal_gtin


#: The samplings of a seen barcode's neighbourhood that must read the same number (BarcodeReader._confirmed).
CONFIRM_SCALES = (0.7, 1.4)


class BarcodeReader:
    """Reads EAN-13, EAN-8 and UPC-A codes; ``read`` gives their GTINs (14-digit spelling, check digit right)."""

    def __init__(self) -> None:
        import zxingcpp  # a base dependency; imported here so a bundle without GTINs never loads it

        self._zxing = zxingcpp
        self._formats = (zxingcpp.BarcodeFormat.EAN13, zxingcpp.BarcodeFormat.EAN8, zxingcpp.BarcodeFormat.UPCA)

    def read(self, photo: Image.Image) -> list[str]:
        """The GTINs of the barcodes on ``photo`` (an upright RGB or greyscale image), in reading order."""
        grey = photo if photo.mode == "L" else photo.convert("L")
        found = self._zxing.read_barcodes(np.asarray(grey), formats=self._formats, try_rotate=False,
                                          try_downscale=False, try_invert=False)
        gtins: list[str] = []
        for code in found:
            gtins += [normal_gtin(text) for text in self._confirmed(grey, code.position)]
        return list(dict.fromkeys(gtins))

    def _confirmed(self, grey: Image.Image, position) -> list[str]:
        """The codes read, with the reader's full search, in the barcode's neighbourhood at both CONFIRM_SCALES.

        A barcode is the answer outright (confidence 1), so one reading is not trusted: on a slanted, soft photo
        the quick pass can decode a wrong number whose check digit happens to hold (seen on the generated photos:
        4006381333900 read as 0086318333900), and a wrong GTIN of the catalogue would be a wrong product shown as
        certain. Two more readings at other samplings must agree; this runs only when a barcode was seen."""
        points = (position.top_left, position.top_right, position.bottom_right, position.bottom_left)
        xs, ys = [p.x for p in points], [p.y for p in points]
        width = max(xs) - min(xs)
        box = (max(0, min(xs) - width // 3), max(0, min(ys) - width // 2),
               min(grey.width, max(xs) + width // 3), min(grey.height, max(ys) + width // 2))
        crop = grey.crop(box)
        readings = []
        for scale in CONFIRM_SCALES:
            size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
            codes = self._zxing.read_barcodes(np.asarray(crop.resize(size, Image.Resampling.BILINEAR)),
                                              formats=self._formats)
            readings.append({code.text for code in codes if gtin_problem(code.text) is None})
        return sorted(set.intersection(*readings))
