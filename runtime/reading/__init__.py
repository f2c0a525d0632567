"""Query-time text detection (numpy + a backend): EAST decoding, polygon geometry, the detector and its mask."""
from .decode import decode, polygon_area, polygon_iou, restore_quads

__all__ = ["decode", "polygon_area", "polygon_iou", "restore_quads"]
