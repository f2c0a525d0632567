"""Models -> shipped ONNX files, the end of the offline stage's first job: the ImageNet trunk (`trunk`) and a
trained MANet (`manet`) exported with a parity check against PyTorch and a model card (the contract the runtime
reads, `runtime.describe.modelcard`); `quantize` makes the INT8 copy for the CPU. TensorRT plans of these files
are `export.engine`'s; EAST's export is `export.text.export`, beside its training.
"""
