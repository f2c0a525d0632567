"""A product feed as a catalogue: one row per image of each product (image_link, then every additional_image_link),
its ``group`` the product's id, so several photos vote for one product; a row whose image cannot be had is a bad
row, as a CSV's missing image is."""
from __future__ import annotations

from pathlib import Path

from ..bundle.catalog import CatalogRow, LoadedCatalog, Problem
from .fetch import ImageCache, fetch_feed, fetch_images
from .options import FetchOptions
from .parse import parse_feed, read_feed


def row_id(product_id: str, image_number: int) -> str:
    """The catalogue id of a product's ``image_number``-th image (1: its image_link, kept as the bare id)."""
    return product_id if image_number == 1 else f"{product_id}#{image_number}"


def is_url(source: str | Path) -> bool:
    return str(source).lower().startswith(("http://", "https://"))


def load_feed(path: Path | str, cache_dir: Path, options: FetchOptions = FetchOptions(), progress: bool = True
              ) -> LoadedCatalog:
    """Read the feed at ``path`` (a file, or an http(s) URL it is fetched from) and fetch its images through the
    cache at ``cache_dir``."""
    products, problems = parse_feed(str(path), fetch_feed(str(path), options)) if is_url(path) else read_feed(Path(path))
    fetched = fetch_images((url for product in products for url in product.images), ImageCache(cache_dir),
                           options, progress)
    rows: list[CatalogRow] = []
    taken: set[str] = {product.id for product in products}
    for product in products:
        for number, url in enumerate(product.images, start=1):
            which = "image_link" if number == 1 else f"additional image {number - 1}"
            identity = row_id(product.id, number)
            if number > 1 and identity in taken:
                problems.append(Problem(product.number, f"{which} {url}: its row id {identity!r} is another "
                                                        "product's id", product.where))
                continue
            taken.add(identity)
            if url in fetched.failed:
                problems.append(Problem(product.number, f"{which} {url}: {fetched.failed[url]}", product.where))
                continue
            fields = {**product.attributes, "image_link": url}
            words = product.text()
            rows.append(CatalogRow(product.number, identity, fetched.paths[url], product.title, product.id, fields,
                                   words if words != product.title else "", product.where))
    problems.sort(key=lambda problem: problem.line)
    return LoadedCatalog(path, rows, problems, note=f"{path}: {fetched.summary()}")
