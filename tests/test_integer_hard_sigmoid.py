"""export.onnx.integer_hard_sigmoid: a statically quantised graph's hard sigmoids become Adds that ONNX Runtime runs
as QLinearAdd, giving the same uint8 codes; one it could not rewrite exactly stays; the shipped INT8 reader models
hold no float HardSigmoid any more."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

from export.onnx.integer_hard_sigmoid import hard_sigmoids_as_adds, rewrite_file
from runtime.describe.modelcard import card_path_for
from runtime.reading.reader import DEFAULT_DETECTOR, DEFAULT_RECOGNISER

SHAPE = (1, 3, 12, 12)


class _Batches(CalibrationDataReader):
    def __init__(self, count: int) -> None:
        rng = np.random.default_rng(0)
        self._feeds = iter([{"x": rng.normal(size=SHAPE).astype(np.float32) * 3} for _ in range(count)])

    def get_next(self):
        return next(self._feeds, None)


def _block(tmp_path: Path) -> Path:
    """conv -> hard-swish as x * HardSigmoid(x) (as ONNX Runtime inlines HardSwish) -> squeeze-excitation gate
    (pool -> conv -> HardSigmoid(0.2, 0.5) -> Mul), quantised as the reader's models are (static Q/DQ, uint8)."""
    rng = np.random.default_rng(1)
    # weights that put the gates' inputs across their ramps (about -4..4), so both clip ends and the slope count
    weights = [numpy_helper.from_array((rng.normal(size=s) * scale).astype(np.float32), n)
               for n, s, scale in (("w1", (8, 3, 3, 3), 0.2), ("w2", (8, 8, 1, 1), 1.0))]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("HardSigmoid", ["c"], ["gate"], alpha=1 / 6, beta=0.5),
        helper.make_node("Mul", ["c", "gate"], ["swish"]),
        helper.make_node("GlobalAveragePool", ["swish"], ["pooled"]),
        helper.make_node("Conv", ["pooled", "w2"], ["squeezed"]),
        helper.make_node("HardSigmoid", ["squeezed"], ["attention"]),
        helper.make_node("Mul", ["swish", "attention"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "block", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(SHAPE))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], weights)
    float_path, int8_path = tmp_path / "block.onnx", tmp_path / "block_int8.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(float_path))
    quantize_static(str(float_path), str(int8_path), _Batches(16), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
    return int8_path


def _session(path: Path, optimised: Path | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if optimised is not None:
        options.optimized_model_filepath = str(optimised)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def test_rewritten_hard_sigmoids_give_the_same_codes_on_integer_kernels(tmp_path: Path) -> None:
    quantised = _block(tmp_path)
    rewritten = tmp_path / "rewritten.onnx"
    assert rewrite_file(quantised, rewritten) == 2
    assert "HardSigmoid" not in {n.op_type for n in onnx.load(str(rewritten)).graph.node}
    # in range and far outside it (both clip ends of the gate)
    x = np.random.default_rng(2).normal(size=SHAPE).astype(np.float32) * 6
    expected = _session(quantised).run(None, {"x": x})[0]
    assert expected.std() > 0.1  # the block passes the photo's variation on
    optimised = tmp_path / "optimised.onnx"
    got = _session(rewritten, optimised).run(None, {"x": x})[0]
    # the output's quantisation step: a rounding tie may land one code apart, nothing more
    step = max(float(numpy_helper.to_array(t)) for t in onnx.load(str(quantised)).graph.initializer
               if t.name.startswith("y_scale"))
    assert np.abs(expected - got).max() <= step * 1.01
    assert (expected == got).mean() > 0.99
    ops = [n.op_type for n in onnx.load(str(optimised)).graph.node]
    assert "HardSigmoid" not in ops and ops.count("QLinearAdd") == 2


def test_a_hard_sigmoid_quantised_past_one_is_left_alone(tmp_path: Path) -> None:
    model = onnx.load(str(_block(tmp_path)))
    consumers = {i: n for n in model.graph.node for i in n.input}
    gate = next(n for n in model.graph.node if n.op_type == "HardSigmoid" and n.output[0] == "gate")
    scale_name = consumers[gate.output[0]].input[1]
    scale = next(t for t in model.graph.initializer if t.name == scale_name)
    scale.CopyFrom(numpy_helper.from_array(np.array(2 / 255, np.float32), scale_name))  # a range of [0, 2]
    assert hard_sigmoids_as_adds(model) == 1
    assert [n.output[0] for n in model.graph.node if n.op_type == "HardSigmoid"] == ["gate"]


@pytest.mark.parametrize("parent", [DEFAULT_DETECTOR, DEFAULT_RECOGNISER], ids=["detector", "recogniser"])
def test_shipped_int8_reader_models_run_their_hard_sigmoids_on_uint8(parent: Path) -> None:
    model = parent.with_name(f"{parent.stem}_int8.onnx")
    card = json.loads(card_path_for(model).read_text(encoding="utf-8"))
    ops = [n.op_type for n in onnx.load(str(model)).graph.node]
    assert "HardSigmoid" not in ops
    assert card["integer_hard_sigmoids"] >= 30 and ops.count("Add") >= card["integer_hard_sigmoids"]
