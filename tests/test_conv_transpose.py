"""export.onnx.conv_transpose: a DB-style head (two stride-2 ConvTransposes with their bias, BatchNormalization and
activations) becomes 1x1 Convs and one DepthToSpace with the same output; a ConvTranspose whose kernel overlaps
is left alone; the shipped INT8 detector has no ConvTranspose left."""
from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from export.onnx.conv_transpose import conv_transposes_as_depth_to_space
from runtime.describe.modelcard import card_path_for
from runtime.reading.reader import DEFAULT_DETECTOR


def _head(kernel: int = 2) -> onnx.ModelProto:
    """x (1, 6, 5, 7) -> ConvTranspose(6 -> 4) -> + b -> BatchNormalization -> Relu -> ConvTranspose(4 -> 1) -> + b
    -> Sigmoid, as PP-OCR's DB head upsamples its 1/4-resolution map back to the input's size."""
    rng = np.random.default_rng(0)
    arrays = {"w1": rng.normal(size=(6, 4, kernel, kernel)), "b1": rng.normal(size=(1, 4, 1, 1)),
              "gamma": rng.uniform(0.5, 2, 4), "beta": rng.normal(size=4), "mean": rng.normal(size=4),
              "var": rng.uniform(0.5, 2, 4), "w2": rng.normal(size=(4, 1, kernel, kernel)),
              "b2": rng.normal(size=(1, 1, 1, 1))}
    initializers = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in arrays.items()]
    nodes = [
        helper.make_node("ConvTranspose", ["x", "w1"], ["t1"], kernel_shape=[kernel, kernel], strides=[2, 2]),
        helper.make_node("Add", ["t1", "b1"], ["a1"]),
        helper.make_node("BatchNormalization", ["a1", "gamma", "beta", "mean", "var"], ["n1"], epsilon=1e-5),
        helper.make_node("Relu", ["n1"], ["r1"]),
        helper.make_node("ConvTranspose", ["r1", "w2"], ["t2"], kernel_shape=[kernel, kernel], strides=[2, 2]),
        helper.make_node("Add", ["t2", "b2"], ["a2"]),
        helper.make_node("Sigmoid", ["a2"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "head", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 5, 7])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 20, 28])], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_a_db_head_becomes_pointwise_convs_and_one_shuffle_with_the_same_output() -> None:
    model = _head()
    x = np.random.default_rng(1).normal(size=(1, 6, 5, 7)).astype(np.float32)
    expected = _run(model, x)
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(model)
    assert conv_transposes_as_depth_to_space(rewritten) == 2
    onnx.checker.check_model(rewritten)
    assert [n.op_type for n in rewritten.graph.node] == ["Conv", "Relu", "Conv", "Sigmoid", "DepthToSpace"]
    shuffle = rewritten.graph.node[-1]
    assert {a.name: (a.i or a.s) for a in shuffle.attribute} == {"blocksize": 4, "mode": b"CRD"}
    got = _run(rewritten, x)
    assert got.shape == expected.shape == (1, 1, 20, 28)
    assert np.abs(got - expected).max() < 1e-5


def test_an_overlapping_conv_transpose_is_left_alone() -> None:
    model = _head(kernel=3)  # 3 x 3 taps at stride 2: neighbouring blocks overlap, no 1x1 conv does that
    assert conv_transposes_as_depth_to_space(model) == 0
    assert [n.op_type for n in model.graph.node].count("ConvTranspose") == 2


def test_shipped_int8_detector_has_no_conv_transpose_left() -> None:
    model = DEFAULT_DETECTOR.with_name(f"{DEFAULT_DETECTOR.stem}_int8.onnx")
    card = json.loads(card_path_for(model).read_text(encoding="utf-8"))
    ops = [n.op_type for n in onnx.load(str(model)).graph.node]
    assert card["conv_transposes_as_depth_to_space"] == 2
    assert "ConvTranspose" not in ops and ops.count("DepthToSpace") == 1
