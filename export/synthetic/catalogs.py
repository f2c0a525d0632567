"""A seeded synthetic catalogue at scale: descriptors with product-family structure and grammar-made titles.

Real catalogues are not uniform noise: images of one product sit close together, products of one line
(brand + line: "Velora Rouge Satin") sit near each other, and lines of one brand share nothing visual but
share words. The generator follows that hierarchy so that both the HNSW graph and the text map meet
realistic neighbourhoods at 500K items without running the CNN 500K times:

- descriptor = normalise(family centre + spread_product * product offset + spread_image * image noise),
  family centres non-negative as pooled ReLU activations are;
  the offsets live in a low-rank subspace per family (CNN descriptors have a low intrinsic dimension),
  the image noise is isotropic;
- title = "<brand> <line name> <line word> <type> <shade> <finish> <size>", one title per product, shared by
  its images; brands and line names are made-up words (their own vocabulary, as real catalogues have), the
  other parts come from small shared vocabularies (types, finishes, shade names, sizes).
"""
from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

_SYLLABLES = ("ve", "lo", "ra", "lu", "mi", "ere", "sa", "no", "ka", "li", "ta", "mo", "ri", "an", "el", "za",
              "qui", "do", "ne", "fa", "bel", "or", "is", "ju", "pe", "ca")
_LINE_WORDS = ("Rouge", "Velvet", "Hydra", "Glow", "Matte", "Lacquer", "Silk", "Ultra", "Pure", "Color", "Stay",
               "Shine", "Bare", "Studio", "Lash", "Brow", "Glam", "Nude", "Power", "Soft", "Prime", "Cushion",
               "Lumi", "Satin", "Couture", "Ink", "Fix", "Skin", "Sheer", "Bold")
_TYPES = ("Lipstick", "Lip Gloss", "Foundation", "Concealer", "Mascara", "Eyeshadow", "Blush", "Nail Polish",
          "Eyeliner", "Powder", "Primer", "Lip Liner", "Bronzer", "Highlighter", "Setting Spray")
_SHADE_NAMES = ("Rosewood", "Coral", "Nude", "Berry", "Ruby", "Mocha", "Peach", "Ivory", "Sand", "Honey",
                "Plum", "Cherry", "Taupe", "Caramel", "Blush", "Scarlet", "Mauve", "Amber", "Cocoa", "Pearl")
_FINISHES = ("Matte", "Satin", "Gloss", "Shimmer", "Velvet", "Cream", "Metallic", "Sheer")
_SIZES = ("3.5 g", "1.6 g", "3 g", "4 g", "10 ml", "30 ml", "15 ml", "8 ml", "2.5 g", "12 ml")


@dataclass(frozen=True)
class SynthParams:
    """Shape of the synthetic catalogue (recorded next to it as synth.json)."""

    items: int
    dim: int = 1280
    seed: int = 0
    brands: int = 2000
    lines_per_brand: int = 6
    images_per_product: int = 2
    family_rank: int = 24
    spread_product: float = 0.6
    spread_image: float = 0.25

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Layout:
    """Which family and product each row belongs to (products and families numbered from 0), and each
    family's product type (lipstick, mascara, ...): families of one type look alike."""

    family: np.ndarray
    product: np.ndarray
    family_type: np.ndarray


def layout(params: SynthParams) -> Layout:
    """Rows -> products -> families; family sizes follow a Zipf-like law (a few big lines, many small)."""
    rng = np.random.default_rng(params.seed)
    families = params.brands * params.lines_per_brand
    weights = 1.0 / np.arange(1, families + 1) ** 0.7
    products = -(-params.items // params.images_per_product)
    product_family = rng.choice(families, size=products, p=weights / weights.sum())
    product = np.repeat(np.arange(products), params.images_per_product)[: params.items]
    return Layout(product_family[product], product, rng.integers(0, len(_TYPES), size=families))


def descriptors(params: SynthParams, lay: Layout, chunk: int = 50_000) -> Iterator[np.ndarray]:
    """Float32 L2-normalised descriptors in row order, ``chunk`` rows at a time (bounded memory)."""
    rng = np.random.default_rng(params.seed + 1)
    families = params.brands * params.lines_per_brand
    # SR-MAC descriptors pool ReLU activations, so they are non-negative: unrelated products still meet at a
    # cosine near 1/pi instead of 0, which is what lets a graph search walk from anywhere to anywhere.
    # Families of one product type share half their centre: the hierarchy type > line > product > image.
    types = rng.standard_normal((len(_TYPES), params.dim), dtype=np.float32)
    own = rng.standard_normal((families, params.dim), dtype=np.float32)
    centres = _unit(np.maximum(types[lay.family_type] + own, 0))
    del own
    # Each family varies along its own few directions: per-family basis, generated lazily from a seed.
    product_codes = rng.standard_normal((int(lay.product.max()) + 1, params.family_rank), dtype=np.float32)
    for start in range(0, len(lay.family), chunk):
        fam = lay.family[start : start + chunk]
        prod = lay.product[start : start + chunk]
        out = centres[fam].copy()
        for f in np.unique(fam):
            rows = np.flatnonzero(fam == f)
            basis = np.random.default_rng((params.seed, int(f))).standard_normal(
                (params.family_rank, params.dim), dtype=np.float32
            ) / np.float32(np.sqrt(params.family_rank * params.dim))  # offsets of norm ~1
            # einsum, not @: BLAS may block a product by its row count, so a row's value would depend on the chunking
            out[rows] += np.float32(params.spread_product) * np.einsum("rk,kd->rd", product_codes[prod[rows]], basis)
        noise = rng.standard_normal(out.shape, dtype=np.float32) / np.float32(np.sqrt(params.dim))
        out += np.float32(params.spread_image) * noise
        yield _unit(out)


def titles(params: SynthParams, lay: Layout) -> list[str]:
    """One title per row from the grammar; images of a product share it, products of a family share words."""
    rng = np.random.default_rng(params.seed + 2)
    brand_names = _brand_names(rng, params.brands)
    families = params.brands * params.lines_per_brand
    # A line is named by a word of its own ("Velora Kasimo Velvet") plus a word many lines share.
    line_names = _brand_names(rng, families + params.brands)[params.brands :]
    line_words = rng.integers(0, len(_LINE_WORDS), size=families)
    family_type = lay.family_type
    products = int(lay.product.max()) + 1
    product_family = np.zeros(products, dtype=np.int64)
    product_family[lay.product] = lay.family
    number = rng.integers(1, 999, size=products)
    named = rng.random(products) < 0.5
    shade_name = rng.integers(0, len(_SHADE_NAMES), size=products)
    finish = rng.integers(0, len(_FINISHES), size=products)
    size = rng.integers(0, len(_SIZES), size=products)
    product_titles = []
    for p in range(products):
        f = int(product_family[p])
        line = f"{line_names[f]} {_LINE_WORDS[line_words[f]]}"
        shade = f"{_SHADE_NAMES[shade_name[p]]} {number[p]}" if named[p] else f"No. {number[p]}"
        product_titles.append(
            f"{brand_names[f // params.lines_per_brand]} {line} {_TYPES[family_type[f]]} {shade} "
            f"{_FINISHES[finish[p]]} {_SIZES[size[p]]}"
        )
    return [product_titles[p] for p in lay.product]


def write_synthetic_catalog(out: Path, params: SynthParams) -> Path:
    """Write vectors.npy (float32, one row per item), titles.csv (id,title,group) and synth.json to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lay = layout(params)
    vectors = np.lib.format.open_memmap(out / "vectors.npy.tmp", mode="w+", dtype=np.float32,
                                        shape=(params.items, params.dim))
    start = 0
    for block in descriptors(params, lay):
        vectors[start : start + len(block)] = block
        start += len(block)
    vectors.flush()
    del vectors
    (out / "vectors.npy.tmp").replace(out / "vectors.npy")
    with open(out / "titles.csv.tmp", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "title", "group"])
        for row, (title, product) in enumerate(zip(titles(params, lay), lay.product)):
            writer.writerow([f"s{row:07d}", title, f"p{product:07d}"])
    (out / "titles.csv.tmp").replace(out / "titles.csv")
    (out / "synth.json").write_text(json.dumps(params.to_dict(), indent=2) + "\n", encoding="utf-8")
    return out


def _brand_names(rng: np.random.Generator, count: int) -> list[str]:
    """``count`` distinct made-up words of 2-4 syllables."""
    names: dict[str, None] = {}
    while len(names) < count:
        parts = rng.integers(0, len(_SYLLABLES), size=rng.integers(2, 5))
        names["".join(_SYLLABLES[i] for i in parts).capitalize()] = None
    return list(names)


def _unit(matrix: np.ndarray) -> np.ndarray:
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32, copy=False)
