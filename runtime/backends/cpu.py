"""Whether this CPU multiplies INT8 without saturating: what decides if a build's default precision is INT8.

ONNX Runtime's INT8 kernels multiply uint8 activations by int8 weights. With a dot-product instruction (x86 VNNI
or AMX, ARM's SDOT/UDOT) the sums are exact and the model runs in about 0.6x the float32 time (MANet on 2 AVX-512
VNNI cores, benchmarks/int8/README.md). Without one (AVX2, AVX-512 without VNNI) the products are summed in
saturating int16 pairs, which 8-bit weights overflow: there the INT8 model is neither exact nor much faster, so
builds stay float32.
"""
from __future__ import annotations

import functools
import platform
import sys
from pathlib import Path

#: /proc/cpuinfo flags of an x86 dot-product instruction for uint8 x int8, and ARM's ("asimddp": SDOT/UDOT).
DOT_PRODUCT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp")


@functools.lru_cache(maxsize=1)
def int8_dot_product() -> str | None:
    """The name of this CPU's INT8 dot-product feature, or None where there is none (or it cannot be told)."""
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return "arm64 dotprod"  # every Apple silicon core has it
    return _from_cpuinfo(Path("/proc/cpuinfo"))


def _from_cpuinfo(path: Path) -> str | None:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    words: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            words.update(value.split())
    return next((flag for flag in DOT_PRODUCT_FLAGS if flag in words), None)
