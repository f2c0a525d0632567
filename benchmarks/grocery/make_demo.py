"""Build the small demo catalogue shipped in export/demo/ from the Grocery Store dataset.

Twelve look-alike products of the Packages group (same brand, cartons that differ mainly in colour and
printed text). For each: its iconic image and its first train photo (sorted by file name) go into
``catalog.csv``, and its first val photo into ``queries.csv``. Images get their EXIF orientation applied,
are shrunk so the longer side is at most 384 px (never enlarged) and saved as JPEG quality 85.
The dataset's MIT licence is copied beside them with a header naming the files it covers.

The tests and ``shadematch demo`` use only these shipped files; this script is needed only to rebuild them.

Usage: python benchmarks/grocery/make_demo.py [--root DATASET_DIR] [--out export/demo]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prepare import (  # noqa: E402
    CATALOG_HEADER,
    DEFAULT_ROOT,
    QUERIES_HEADER,
    REPO,
    GroceryClass,
    Photo,
    class_title,
    file_mode,
    iconic_id,
    load_classes,
    photo_id,
    read_split,
    write_csv_atomic,
)

# Look-alike groups; every product has photos in both train and val (Tropicana, the Alpro soy milks and
# Arla-Natural-Yoghurt have none in val, so they cannot be demo queries).
PRODUCTS: tuple[str, ...] = (
    "Arla-Standard-Milk",
    "Arla-Medium-Fat-Milk",
    "Arla-Ecological-Medium-Fat-Milk",
    "Alpro-Blueberry-Soyghurt",
    "Alpro-Vanilla-Soyghurt",
    "God-Morgon-Orange-Juice",
    "God-Morgon-Orange-Red-Grapefruit-Juice",
    "God-Morgon-Red-Grapefruit-Juice",
    "Oatly-Natural-Oatghurt",
    "Oatly-Oat-Milk",
    "Yoggi-Strawberry-Yoghurt",
    "Yoggi-Vanilla-Yoghurt",
)

MAX_SIDE = 384
JPEG_QUALITY = 85
SOURCE = ("Klasson, Zhang, Kjellström, \"A Hierarchical Grocery Store Image Dataset with Visual\n"
          "and Semantic Labels\", WACV 2019; https://github.com/marcusklasson/GroceryStoreDataset\n"
          "at commit fc80ba90f803d79d0383df52c5a4ac5de99ff6fc")


def slug(name: str) -> str:
    """File-name stem of a product, e.g. ``arla-standard-milk``."""
    return name.lower()


def save_image(src: Path, dst: Path, max_side: int = MAX_SIDE, quality: int = JPEG_QUALITY) -> None:
    """Apply EXIF orientation, shrink to ``max_side`` (LANCZOS, never enlarge), save as JPEG atomically."""
    with Image.open(src) as im:
        img = ImageOps.exif_transpose(im).convert("RGB")
    w, h = img.size
    scale = max_side / max(w, h)
    if scale < 1.0:
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    try:
        img.save(tmp, format="JPEG", quality=quality, optimize=True)
        os.chmod(tmp, file_mode())
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write a UTF-8 text file through a temp file and os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def first_photo(photos: Sequence[Photo], cls: GroceryClass, split: str) -> Photo:
    """The first photo of ``cls`` in file-name order."""
    mine = sorted((p for p in photos if p.cls.class_id == cls.class_id), key=lambda p: p.path.name)
    if not mine:
        raise ValueError(f"{cls.name} has no {split} photo")
    return mine[0]


def license_text(dataset_license: str, n_images: int) -> str:
    """The dataset's MIT licence, verbatim, under a header saying what it covers."""
    header = (
        "Files covered: the images in images/ beside this file ({n} JPEGs: *_iconic.jpg, *_train.jpg,\n"
        "*_query.jpg) and the product descriptions used in the titles of catalog.csv.\n"
        "They are taken from the Grocery Store Dataset (iconic images, train and val photos, English\n"
        "descriptions), re-encoded as JPEG by benchmarks/grocery/make_demo.py.\n"
        "Source: {src}.\n"
        "The dataset's licence follows verbatim.\n"
        "\n"
        "----------------------------------------------------------------------------\n"
        "\n"
    ).format(n=n_images, src=SOURCE)
    return header + dataset_license


def make_demo(root: Path, out: Path, license_path: Path) -> dict[str, int]:
    """Write images/, catalog.csv, queries.csv and LICENSE-grocery-store.txt into ``out``."""
    root = root.resolve()
    by_id = load_classes(root)
    classes = {c.name: c for c in by_id.values()}
    train = read_split(root, "train", by_id)
    val = read_split(root, "val", by_id)
    dataset_license = license_path.read_text(encoding="utf-8")

    images = out / "images"
    catalog: list[tuple[str, str, str, str]] = []
    queries: list[tuple[str, str, str]] = []
    written: set[str] = set()
    for name in PRODUCTS:
        cls = classes.get(name)
        if cls is None:
            raise ValueError(f"unknown product {name}")
        if cls.top_group != "Packages":
            raise ValueError(f"{name} is not in the Packages group")
        title = class_title(cls)
        tr = first_photo(train, cls, "train")
        va = first_photo(val, cls, "val")
        for kind, src in (("iconic", cls.iconic), ("train", tr.path), ("query", va.path)):
            fname = f"{slug(name)}_{kind}.jpg"
            save_image(src, images / fname)
            written.add(fname)
        catalog.append((iconic_id(cls), f"images/{slug(name)}_iconic.jpg", title, name))
        catalog.append((photo_id("train", tr.path), f"images/{slug(name)}_train.jpg", title, name))
        queries.append((f"images/{slug(name)}_query.jpg", name, cls.top_group))

    for stale in images.glob("*.jpg"):  # images of products no longer in PRODUCTS
        if stale.name not in written:
            stale.unlink()

    counts = {
        "catalog.csv": write_csv_atomic(out / "catalog.csv", CATALOG_HEADER, catalog),
        "queries.csv": write_csv_atomic(out / "queries.csv", QUERIES_HEADER, queries),
        "images": len(written),
    }
    write_text_atomic(out / "LICENSE-grocery-store.txt", license_text(dataset_license, len(written)))
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT,
                        help=f"the dataset/ folder of the Grocery Store dataset (default: {DEFAULT_ROOT})")
    parser.add_argument("--out", type=Path, default=REPO / "export" / "demo",
                        help="folder to write the demo into (default: export/demo)")
    parser.add_argument("--license", type=Path, default=None,
                        help="the dataset's LICENSE file (default: ROOT/../LICENSE)")
    args = parser.parse_args(argv)
    license_path = args.license or args.root / ".." / "LICENSE"
    try:
        counts = make_demo(args.root, args.out, license_path)
    except (OSError, ValueError) as exc:
        print(f"make_demo: error: {exc}", file=sys.stderr)
        return 2
    for name, n in counts.items():
        print(f"{args.out / name}: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
