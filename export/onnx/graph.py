"""An ONNX graph indexed for rewriting: who produces and who reads each tensor, and the constant values, rebuilt
after every rewrite. Shared by the exact graph rewrites of export/onnx (fold, conv_transpose,
integer_hard_sigmoid)."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import onnx
from onnx import numpy_helper


class GraphIndex:
    """An ONNX graph with its producers, consumers and constant values, rebuilt after every rewrite."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.graph = model.graph
        self.initializers = {t.name: t for t in self.graph.initializer}
        self.refresh()

    def refresh(self) -> None:
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        self.constants: dict[str, np.ndarray] = {}
        for node in self.graph.node:
            for name in node.input:
                self.consumers[name].append(node)
            for name in node.output:
                self.producer[name] = node
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)

    def value(self, name: str) -> np.ndarray | None:
        if name in self.constants:
            return self.constants[name]
        if name in self.initializers:
            return numpy_helper.to_array(self.initializers[name])
        return None

    def scalar(self, name: str) -> float | None:
        value = self.value(name)
        return float(value.ravel()[0]) if value is not None and value.size == 1 else None

    def only_consumer(self, name: str, *op_types: str) -> onnx.NodeProto | None:
        """The one node that reads tensor ``name``, if it is one of ``op_types`` (any type when none is given)."""
        consumers = self.consumers.get(name, [])
        if len(consumers) == 1 and (not op_types or consumers[0].op_type in op_types):
            return consumers[0]
        return None

    def is_output(self, name: str) -> bool:
        return any(output.name == name for output in self.graph.output)

    def add_initializer(self, name: str, array: np.ndarray) -> None:
        self.graph.initializer.append(numpy_helper.from_array(array, name))
        self.initializers[name] = self.graph.initializer[-1]

    def set_weights(self, conv: onnx.NodeProto, weight: np.ndarray, bias: np.ndarray, tag: str) -> None:
        """Give ``conv`` new weight and bias initializers (named after its output, so shared weights stay)."""
        names = (f"{conv.output[0]}_{tag}_w", f"{conv.output[0]}_{tag}_b")
        for name, array in zip(names, (weight, bias)):
            self.add_initializer(name, array.astype(np.float32))
        conv.input[1] = names[0]
        if len(conv.input) > 2:
            conv.input[2] = names[1]
        else:
            conv.input.append(names[1])

    def bypass(self, removed: list[onnx.NodeProto], old: str, new: str) -> None:
        """Remove ``removed`` and let every reader of tensor ``old`` read ``new``."""
        if self.is_output(old):
            raise ValueError(f"cannot fold away the graph output {old}")
        for node in removed:
            self.graph.node.remove(node)
        for node in self.graph.node:
            for index, name in enumerate(node.input):
                if name == old:
                    node.input[index] = new
        self.refresh()

    def weights_of(self, conv: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray]:
        weight = self.value(conv.input[1])
        bias = self.value(conv.input[2]) if len(conv.input) > 2 else np.zeros(weight.shape[0], np.float32)
        return weight, bias

    def other_input(self, node: onnx.NodeProto, name: str) -> str:
        return next(i for i in node.input if i != name)
