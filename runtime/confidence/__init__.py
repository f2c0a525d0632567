"""Confidence of a match and "not found": the per-bundle model (model.py) and the generated non-product photos it is
fitted and measured with (nonproducts.py)."""
from .model import CONFIDENCE_FILE, ConfidenceModel
from .nonproducts import KINDS, non_product_photos

__all__ = ["CONFIDENCE_FILE", "ConfidenceModel", "KINDS", "non_product_photos"]
