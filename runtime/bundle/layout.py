"""The bundle's layout: format name and versions, the names of its files, the backends it may ask for."""
from __future__ import annotations

FORMAT_NAME = "shadematch-bundle"
#: The newest format this shadematch writes and reads. Version 2 adds a descriptor projection
#: (`projection.npz`); a bundle without one is still written as version 1, so older kiosks keep opening it,
#: while a version-1 reader refuses a projected bundle by its version instead of failing on dimensions.
#: Version 3 adds the label index and the text reading models (`labels`); bundles without them keep their version.
#: Version 4 adds query views (`descriptor.query_views`, runtime.describe.views): an older kiosk refuses such a
#: bundle by its version instead of answering from one view, whose descriptors the index was not built for.
FORMAT_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
MANIFEST = "manifest.json"
MODEL_FILE = "models/visual.onnx"
CARD_FILE = "models/visual.card.json"
VECTORS_FILE = "vectors.npy"
INDEX_FILE = "index.bin"
#: The catalogue row of each label of an updated HNSW graph (runtime.search.index); absent for a graph built at once.
INDEX_ROWS_FILE = "index_rows.npy"
TEXT_MAP_FILE = "text_map.npz"
CATALOG_FILE = "catalog.jsonl"
PROJECTION_FILE = "projection.npz"
#: An adapted projection's scatter and the catalogue rows before projection: read only by `shadematch tune`.
ADAPTATION_FILE = "adaptation.npz"
#: The label index (runtime.search.label_index) and the reading models of format 3.
LABELS_FILE = "labels.npz"
TEXT_DETECTOR_FILE = "models/text_detector.onnx"
TEXT_RECOGNISER_FILE = "models/text_recogniser.onnx"
ENGINES_DIR = "engines"
#: Catalogue pictures for the kiosk's cards, one JPEG per row (`picture_name`): a moved bundle keeps them.
PICTURES_DIR = "pictures"
#: Longest side of a carried picture, in pixels (a kiosk card shows ~400).
PICTURE_SIDE = 480
BACKENDS = ("auto", "tensorrt", "onnxruntime")


def picture_name(row: int) -> str:
    """File name of catalogue row ``row``'s picture inside ``PICTURES_DIR``."""
    return f"{row:06d}.jpg"
