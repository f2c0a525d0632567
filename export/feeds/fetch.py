"""Catalogue images over HTTP(S), kept in a persistent on-disk cache keyed by URL and revalidated with the
server's ETag and Last-Modified, so a nightly rebuild from a feed downloads only the images that changed.

requests with urllib3's Retry does the retries (connection errors, read timeouts, 429 and 5xx, exponential
backoff, Retry-After honoured): a well-kept client rather than a hand-written retry loop. A fetch is refused,
naming why, when it is not an http(s) URL, the server does not answer 200 (or 304 to a revalidation), the
Content-Type is not an image, the body is over the size limit, or Pillow cannot decode it. When the server cannot
be reached at all but the cache holds the URL, the cached copy is used and counted as stale.

Cache layout (every file written to a temporary name and renamed, so an interrupted build leaves none half
written and several builds may share one cache): ``index/<sha256 of the URL>.json`` holds the URL, its
validators and the blob's name; ``blobs/<sha256 of the bytes>`` the image itself, so a URL whose image changed
gets a new path and an unchanged one keeps its path (what `update --feed` compares).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import requests
from PIL import Image, UnidentifiedImageError
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from runtime import __version__
from runtime.errors import CatalogError

from ..atomic import write_bytes_atomically
from .options import FetchOptions

_CHUNK = 1 << 16


@dataclass
class FetchReport:
    """Where each URL's image is on disk, why each failed one failed, and the counts a build prints."""

    paths: dict[str, Path] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    downloaded: int = 0
    unchanged: int = 0
    stale: int = 0

    def summary(self) -> str:
        stale = f", {self.stale} stale (server unreachable, cached copy used)" if self.stale else ""
        return (f"{len(self.paths) + len(self.failed)} image URL(s): {self.downloaded} downloaded, "
                f"{self.unchanged} unchanged (revalidated from the cache){stale}, {len(self.failed)} failed")


@dataclass(frozen=True)
class _Entry:
    url: str
    blob: Path
    etag: str | None
    last_modified: str | None


class ImageCache:
    """The on-disk image cache (see the module's docstring). Safe for several threads and processes: each file is
    complete before it appears under its name."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._index = self.root / "index"
        self._blobs = self.root / "blobs"

    def entry(self, url: str) -> _Entry | None:
        """The cached copy of ``url``, or None when there is none (or its blob has gone)."""
        try:
            record = json.loads((self._index / f"{_sha256(url.encode())}.json").read_text(encoding="utf-8"))
            blob = self._blobs / record["blob"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if record.get("url") != url or not blob.is_file():
            return None
        return _Entry(url, blob, record.get("etag"), record.get("last_modified"))

    def store(self, url: str, body: bytes, etag: str | None, last_modified: str | None) -> Path:
        """Keep ``body`` as the image of ``url``; returns its path."""
        blob = self._blobs / _sha256(body)
        if not blob.is_file():
            _write_atomically(blob, body)
        record = {"url": url, "blob": blob.name, "etag": etag, "last_modified": last_modified}
        _write_atomically(self._index / f"{_sha256(url.encode())}.json", json.dumps(record).encode())
        return blob


def fetch_images(urls: Iterable[str], cache: ImageCache, options: FetchOptions = FetchOptions(),
                 progress: bool = True) -> FetchReport:
    """Every URL's image through the cache, ``options.workers`` at a time, with a progress bar of the counts."""
    from tqdm import tqdm

    unique = list(dict.fromkeys(urls))
    report = FetchReport()
    sessions = threading.local()

    def session() -> requests.Session:
        if not hasattr(sessions, "value"):  # requests.Session is not documented thread-safe: one per thread
            sessions.value = _session(options)
        return sessions.value

    with ThreadPoolExecutor(max_workers=max(1, options.workers)) as pool, \
            tqdm(total=len(unique), desc="fetching images", unit="image", disable=not progress) as bar:
        futures = {pool.submit(_fetch, session, url, cache, options): url for url in unique}
        for future in as_completed(futures):
            url = futures[future]
            outcome, value = future.result()
            if outcome == "failed":
                report.failed[url] = value
            else:
                report.paths[url] = Path(value)
                setattr(report, outcome, getattr(report, outcome) + 1)
            bar.update()
            bar.set_postfix(downloaded=report.downloaded, unchanged=report.unchanged, failed=len(report.failed))
    return report


def fetch_feed(url: str, options: FetchOptions = FetchOptions()) -> bytes:
    """The feed at ``url`` (a shop's scheduled export), with the images' retries and timeout and a limit of
    options.max_feed_bytes; a CatalogError naming the URL when it cannot be had."""
    try:
        with _session(options).get(url, timeout=options.timeout_s, stream=True) as response:
            if response.status_code != 200:
                raise CatalogError(f"{url}: HTTP {response.status_code} {response.reason or ''}".rstrip())
            body = bytearray()
            for chunk in response.iter_content(_CHUNK):
                body += chunk
                if len(body) > options.max_feed_bytes:
                    raise CatalogError(f"{url}: over the {options.max_feed_bytes}-byte feed limit")
            return bytes(body)
    except requests.RequestException as exc:
        raise CatalogError(f"{url}: {_reason(exc, options)}") from None


def _session(options: FetchOptions) -> requests.Session:
    retry = Retry(total=options.retries, connect=options.retries, read=options.retries, status=options.retries,
                  backoff_factor=options.backoff_s, status_forcelist=(429, 500, 502, 503, 504),
                  allowed_methods=frozenset({"GET"}), raise_on_status=False, respect_retry_after_header=True)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=max(1, options.workers))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = f"shadematch/{__version__}"
    return session


def _fetch(session, url: str, cache: ImageCache, options: FetchOptions) -> tuple[str, str]:
    """("downloaded" | "unchanged" | "stale", the image's path) or ("failed", why)."""
    if not url.lower().startswith(("http://", "https://")):
        return "failed", "not an http(s) URL"
    entry = cache.entry(url)
    headers = {}
    if entry is not None and entry.etag:
        headers["If-None-Match"] = entry.etag
    if entry is not None and entry.last_modified:
        headers["If-Modified-Since"] = entry.last_modified
    try:
        with session().get(url, headers=headers, timeout=options.timeout_s, stream=True) as response:
            if response.status_code == 304 and entry is not None:
                return "unchanged", str(entry.blob)
            body, why = _image_body(response, options.max_bytes)
            if body is None:
                return "failed", why
            return "downloaded", str(cache.store(url, body, response.headers.get("ETag"),
                                                 response.headers.get("Last-Modified")))
    except requests.RequestException as exc:
        if entry is not None:
            return "stale", str(entry.blob)
        return "failed", _reason(exc, options)


def _image_body(response: requests.Response, max_bytes: int) -> tuple[bytes | None, str]:
    """The body when it is a decodable image within the limit, else (None, why not)."""
    if response.status_code != 200:
        return None, f"HTTP {response.status_code} {response.reason or ''}".rstrip()
    kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if not kind.startswith("image/"):
        return None, f"not an image (Content-Type {kind or 'missing'})"
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        return None, f"{int(declared)} bytes, over the {max_bytes}-byte limit"
    body = bytearray()
    for chunk in response.iter_content(_CHUNK):
        body += chunk
        if len(body) > max_bytes:
            return None, f"over the {max_bytes}-byte limit"
    try:
        with Image.open(io.BytesIO(body)) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return None, f"does not decode as an image ({exc})"
    return bytes(body), ""


def _reason(exc: requests.RequestException, options: FetchOptions) -> str:
    tries = options.retries + 1
    if isinstance(exc, (requests.Timeout, requests.exceptions.ConnectionError)) and "timed out" in str(exc).lower():
        return f"timed out ({options.timeout_s:g} s, {tries} tries)"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"cannot connect ({tries} tries)"
    return f"request failed ({type(exc).__name__})"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(path, data)
