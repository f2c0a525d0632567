"""Text on the photo (numpy + a backend). Reading the label: reader.py (PP-OCRv4 detection on the product region,
recognition of crops at the camera's resolution), photos.py (one decode and one visual pass, then read).
MANet's text branch: EAST decoding and polygon geometry (decode.py), the detector and its mask (detector.py)."""
from .decode import decode, polygon_area, polygon_iou, restore_quads

__all__ = ["decode", "polygon_area", "polygon_iou", "restore_quads"]
