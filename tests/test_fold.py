"""export.onnx.fold: the shipped PP-OCR files are exactly what folding rapidocr's files gives, they answer as the
originals do, and a rewrite that would not be exact (an affine block before a padded conv) is not made."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from export.onnx.fold import fold
from runtime.describe.image import load_image, prepare
from runtime.describe.modelcard import ModelCard, card_path_for
from runtime.reading.reader import DEFAULT_DETECTOR, DEFAULT_RECOGNISER

DEMO_PHOTO = Path(__file__).resolve().parents[1] / "export" / "demo" / "images" / "oatly-oat-milk_query.jpg"


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


@pytest.mark.parametrize("shipped", [DEFAULT_DETECTOR, DEFAULT_RECOGNISER], ids=["detector", "recogniser"])
def test_shipped_reader_models_are_rapidocrs_files_folded(shipped: Path) -> None:
    card = ModelCard.load(card_path_for(shipped))
    source = card.raw["folded_from"]
    rapidocr = pytest.importorskip("rapidocr_onnxruntime")
    original_path = Path(rapidocr.__file__).parent / "models" / Path(source["file"]).name
    assert hashlib.sha256(original_path.read_bytes()).hexdigest() == source["sha256"]
    original = onnx.load(str(original_path))
    folded, report = fold(original)
    assert hashlib.sha256(folded.SerializeToString()).hexdigest() == card.sha256 == \
        hashlib.sha256(shipped.read_bytes()).hexdigest()
    assert report.hard_swish >= 20 and report.nodes_after < 0.7 * report.nodes_before
    photo = load_image(DEMO_PHOTO)
    if card.task == "text_recognition":  # a line-shaped strip of the photo, as the reader feeds it
        photo = photo.crop((0, photo.height // 3, photo.width, photo.height // 3 + 40))
    x = prepare(photo, card.input)[None]
    name = card.input.name
    expected, got = _run(original, {name: x}), _run(folded, {name: x})
    assert np.abs(expected - got).max() < 1e-4


def _affine_swish_graph(pads: list[int]) -> onnx.ModelProto:
    """conv -> hard-swish (four ops) -> * 0.5 + 0.25 -> conv with ``pads``, as Paddle exports a PP-LCNet block."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(size=(5, 4, 3, 3)).astype(np.float32), "w2")
    scalars = [helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(v, np.float32), name))
               for name, v in (("three", 3.0), ("zero", 0.0), ("six", 6.0), ("scale", [0.5]), ("shift", [0.25]))]
    nodes = scalars + [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c1", "three"], ["a"]),
        helper.make_node("Clip", ["a", "zero", "six"], ["clipped"]),
        helper.make_node("Mul", ["c1", "clipped"], ["m"]),
        helper.make_node("Div", ["m", "six"], ["swish"]),
        helper.make_node("Mul", ["swish", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "shift"], ["shifted"]),
        helper.make_node("Conv", ["shifted", "w2"], ["y"], pads=pads),
    ]
    graph = helper.make_graph(nodes, "block", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w1, w2])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])


@pytest.mark.parametrize("pads, folds_into_next", [([0, 0, 0, 0], 1), ([1, 1, 1, 1], 0)], ids=["unpadded", "padded"])
def test_fold_is_exact_and_leaves_an_affine_before_a_padded_conv(pads: list[int], folds_into_next: int) -> None:
    model = _affine_swish_graph(pads)
    folded, report = fold(model)
    assert (report.hard_swish, report.affine_into_next_conv) == (1, folds_into_next)
    ops = [n.op_type for n in folded.graph.node if n.op_type != "Constant"]
    assert ops == (["Conv", "HardSwish", "Conv"] if folds_into_next else ["Conv", "HardSwish", "Mul", "Add", "Conv"])
    x = np.random.default_rng(1).normal(size=(1, 3, 8, 8)).astype(np.float32) * 4
    assert np.abs(_run(model, {"x": x}) - _run(folded, {"x": x})).max() < 1e-4
