"""runtime.backends.cpu: the INT8 dot-product feature read from /proc/cpuinfo (x86 flags, ARM features)."""
from __future__ import annotations

from pathlib import Path

import pytest

from runtime.backends.cpu import _from_cpuinfo


@pytest.mark.parametrize("text, expected", [
    ("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni avx512_bf16\n", "avx512_vnni"),
    ("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx_vnni\n", "avx_vnni"),
    ("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n", None),  # AVX2 alone sums INT8 in saturating int16
    ("processor\t: 0\nflags\t\t: avx2 avx512f avx512bw\n", None),  # AVX-512 without VNNI: the same
    ("processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics asimddp\n", "asimddp"),
    ("processor\t: 0\nFeatures\t: fp asimd evtstrm\n", None),
    ("", None),
])
def test_the_dot_product_flag_is_read_from_cpuinfo(tmp_path: Path, text: str, expected: str | None) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    assert _from_cpuinfo(path) == expected


def test_an_unreadable_cpuinfo_means_no_feature(tmp_path: Path) -> None:
    assert _from_cpuinfo(tmp_path / "missing") is None

