"""PyTorch definitions of the visual models that `export.onnx.trunk` turns into shipped ONNX engines.

Written in plain PyTorch (no torchvision / timm) so the offline stage has one heavy dependency, and so the module
and parameter names can match each pretrained weight file exactly (strict state-dict loading catches drift).
"""
