"""How a feed's images are fetched: the defaults `build --feed` shows in its help, kept free of the HTTP client so
the command line is parsed without importing it."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: The cache a feed build uses unless told otherwise: $XDG_CACHE_HOME/shadematch/images.
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "shadematch" / "images"


@dataclass(frozen=True)
class FetchOptions:
    #: Downloads in flight at once (a bound, so a 100K-image feed neither floods the server nor the machine).
    workers: int = 8
    #: Seconds to connect, and seconds of silence while reading, before a try counts as failed.
    timeout_s: float = 20.0
    #: Further tries after a failed one (connection error, read timeout, 429, 5xx).
    retries: int = 3
    #: Backoff factor: the pauses between tries grow as backoff_s * 2**(try - 1).
    backoff_s: float = 0.5
    #: The largest image accepted, in bytes.
    max_bytes: int = 20 * 2**20
    #: The largest feed accepted when it is fetched from a URL, in bytes.
    max_feed_bytes: int = 2 * 2**30
