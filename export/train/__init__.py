"""MANet training pieces (Wang et al., Sci China Inf Sci 2020; offline stage): the saliency loss of eq. 1 (`losses`), pseudo-saliency masks
(`saliency`) and the augmentation that turns clean catalogue images into store-like photos (`augment`).

Needs the `export` extra (torch, opencv-python); the runtime never imports it.
"""
