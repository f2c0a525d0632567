"""TensorRT engine building (`shadematch engine build`): ONNX -> plan + sidecar manifest, with either
TensorRT flavour (runtime.engines.library), fp32 / fp16 / INT8 (explicit Q/DQ) precision (`build`)."""
