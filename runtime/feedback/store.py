"""Shoppers' feedback on kiosk answers ("yes, this one", another one from the list, "not here"), kept for `update`.

Why SQLite in WAL mode (standard library): one file beside the bundle that the kiosk's threads write at once while
`shadematch feedback` and `update` read it, with no server to run. A photo is kept only when its shopper gives
feedback: until then the answered photo waits in memory (`PendingQueries`, bounded in count and age), downscaled
to what the model needs (PHOTO_SIDE on the longer side) and re-encoded from its pixels, so no EXIF (place, time,
device) survives; with it, the product region the visual model's saliency map marks, cut out once feedback comes
(one model run per feedback, none per query). Retention (days) and a size limit bound what a kiosk keeps.
"""
from __future__ import annotations

import io
import json
import sqlite3
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from PIL import Image

from ..errors import ShadematchError

#: Longer side of a kept photo: the visual model sees 320 px of it, the label reader's small print more.
PHOTO_SIDE = 640
JPEG_QUALITY = 90
#: Format of the database (PRAGMA user_version), bumped when a column changes meaning.
FORMAT_VERSION = 1
DEFAULT_RETENTION_DAYS = 30
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
#: Answers waiting for feedback, at most, and for how long (a shopper answers within seconds).
PENDING_CAPACITY = 512
PENDING_SECONDS = 15 * 60
DAY_S = 86_400.0
ALREADY = "this answer already has feedback"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    query_id    TEXT PRIMARY KEY,
    created     REAL NOT NULL,
    bundle      TEXT NOT NULL,
    product_id  TEXT,
    product_group TEXT,
    best_id     TEXT,
    best_score  REAL,
    best_confidence REAL,
    photo       BLOB NOT NULL,
    crop        BLOB
)
"""


class FeedbackError(ShadematchError):
    """Feedback that cannot be stored: ``code`` says why (the kiosk maps it to its HTTP status)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class PendingQuery:
    """An answered photo that may still get feedback: which bundle answered it and what it answered first."""

    query_id: str
    bundle: str
    photo: bytes
    best_id: str | None
    best_score: float | None
    best_confidence: float | None
    created: float


@dataclass(frozen=True)
class FeedbackRow:
    """One stored piece of feedback: ``product_id`` None means the shopper said "not here"."""

    query_id: str
    created: float
    bundle: str
    product_id: str | None
    product_group: str | None
    best_id: str | None
    best_score: float | None
    best_confidence: float | None
    photo: bytes
    #: the product region of the photo (JPEG), where the visual model's saliency map marks one, else None
    crop: bytes | None = None


def kept_photo(image: Image.Image) -> bytes:
    """The photo as kept: longer side at most PHOTO_SIDE, RGB JPEG encoded from the pixels (no EXIF or other
    metadata carries over)."""
    photo = image.convert("RGB")
    photo.thumbnail((PHOTO_SIDE, PHOTO_SIDE), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    photo.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


class PendingQueries:
    """Answered photos waiting for feedback, the oldest dropped past ``capacity`` or ``seconds``. Thread-safe."""

    def __init__(self, capacity: int = PENDING_CAPACITY, seconds: float = PENDING_SECONDS) -> None:
        self.capacity, self.seconds = capacity, seconds
        self._items: OrderedDict[str, PendingQuery] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, pending: PendingQuery) -> None:
        with self._lock:
            self._items[pending.query_id] = pending
            self._expire(time.time())

    def get(self, query_id: str) -> PendingQuery | None:
        """The answer waiting under ``query_id``, or None (unknown, or older than ``seconds``)."""
        now = time.time()
        with self._lock:
            self._expire(now)
            pending = self._items.get(query_id)
        return pending if pending is not None and now - pending.created <= self.seconds else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def _expire(self, now: float) -> None:
        while self._items:
            oldest = next(iter(self._items.values()))
            if len(self._items) <= self.capacity and now - oldest.created <= self.seconds:
                return
            self._items.popitem(last=False)


class FeedbackStore:
    """The feedback database at ``path``. Thread-safe: each call opens its own connection (WAL lets readers and
    one writer at a time work together; writers wait up to ``timeout_s`` for each other)."""

    def __init__(self, path: str | Path, *, retention_days: float = DEFAULT_RETENTION_DAYS,
                 max_bytes: int = DEFAULT_MAX_BYTES, timeout_s: float = 30.0, create: bool = True) -> None:
        self.path = Path(path)
        if retention_days <= 0:
            raise ShadematchError(f"feedback retention must be more than 0 days, got {retention_days:g}")
        if max_bytes <= 0:
            raise ShadematchError(f"feedback size limit must be more than 0 bytes, got {max_bytes}")
        self.retention_days, self.max_bytes, self.timeout_s = retention_days, max_bytes, timeout_s
        if not create and not self.path.is_file():
            raise ShadematchError(f"no feedback database at {self.path}")
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
            if tables and version != FORMAT_VERSION:
                raise ShadematchError(f"{self.path}: feedback database format {version}, this shadematch reads "
                                      f"{FORMAT_VERSION}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute(_SCHEMA)
            db.execute(f"PRAGMA user_version = {FORMAT_VERSION}")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection of its own (autocommit; transactions are explicit), closed after use."""
        try:
            db = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            raise ShadematchError(f"{self.path}: cannot open the feedback database ({exc})") from None
        try:
            db.execute("SELECT 1 FROM sqlite_master LIMIT 1")
        except sqlite3.DatabaseError as exc:
            db.close()
            raise ShadematchError(f"{self.path}: not a feedback database ({exc})") from None
        try:
            yield db
        finally:
            db.close()

    def add(self, pending: PendingQuery, product_id: str | None, product_group: str | None,
            crop: bytes | None = None) -> None:
        """Store the shopper's choice for ``pending``; FeedbackError "repeated" if it already has one, "full" at
        the size limit. Feedback past the retention is dropped first."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM feedback WHERE created < ?", (time.time() - self.retention_days * DAY_S,))
            used = db.execute("SELECT COALESCE(SUM(LENGTH(photo) + COALESCE(LENGTH(crop), 0)), 0) FROM feedback"
                              ).fetchone()[0]
            if used + len(pending.photo) + len(crop or b"") > self.max_bytes:
                db.execute("COMMIT")
                raise FeedbackError("full", f"the feedback store is full ({self.max_bytes / 2**20:g} MB); "
                                            "`shadematch feedback purge` frees it")
            try:
                db.execute("INSERT INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (pending.query_id, time.time(), pending.bundle, product_id, product_group,
                            pending.best_id, pending.best_score, pending.best_confidence, pending.photo, crop))
            except sqlite3.IntegrityError:
                db.execute("ROLLBACK")
                raise FeedbackError("repeated", ALREADY) from None
            db.execute("COMMIT")

    def has(self, query_id: str) -> bool:
        """Whether ``query_id`` already has feedback (a double tap), told before any work is spent on it."""
        with self._connect() as db:
            return db.execute("SELECT 1 FROM feedback WHERE query_id = ?", (query_id,)).fetchone() is not None

    def rows(self) -> Iterator[FeedbackRow]:
        """Every stored piece of feedback, oldest first."""
        with self._connect() as db:
            for row in db.execute("SELECT * FROM feedback ORDER BY created, query_id"):
                yield FeedbackRow(*row)

    def stats(self) -> dict:
        """Counts, products covered, the time span and the bytes of photos kept."""
        with self._connect() as db:
            total, confirmed, products, oldest, newest, used = db.execute(
                "SELECT COUNT(*), COUNT(product_id), COUNT(DISTINCT product_id), MIN(created), MAX(created), "
                "COALESCE(SUM(LENGTH(photo) + COALESCE(LENGTH(crop), 0)), 0) FROM feedback").fetchone()
        return {"database": str(self.path), "feedback": total, "confirmed": confirmed, "not_here": total - confirmed,
                "products": products, "oldest": _iso(oldest), "newest": _iso(newest), "photo_bytes": used,
                "retention_days": self.retention_days, "max_bytes": self.max_bytes}

    def purge(self, older_than_days: float | None = None) -> int:
        """Delete feedback older than ``older_than_days`` (None: all); the number of rows deleted."""
        cutoff = time.time() - older_than_days * DAY_S if older_than_days is not None else float("inf")
        with self._connect() as db:
            deleted = db.execute("DELETE FROM feedback WHERE created < ?", (cutoff,)).rowcount
            db.execute("VACUUM")
        return deleted


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def feedback_json(row: FeedbackRow, photo: str, crop: str | None) -> str:
    """One exported row as a JSON line (the photo and its product crop as paths beside it)."""
    return json.dumps({"query_id": row.query_id, "created": _iso(row.created), "bundle": row.bundle,
                       "product_id": row.product_id, "product_group": row.product_group, "best_id": row.best_id,
                       "best_score": row.best_score, "best_confidence": row.best_confidence, "photo": photo,
                       "crop": crop}, ensure_ascii=False)


class Feedback:
    """What a kiosk with feedback on holds: the answers waiting for it and the store. Thread-safe."""

    def __init__(self, store: FeedbackStore, pending: PendingQueries | None = None) -> None:
        self.store = store
        self.pending = pending or PendingQueries()

    def remember(self, query_id: str, bundle: str, image: Image.Image, best_id: str | None,
                 best_score: float | None, best_confidence: float | None) -> None:
        """Keep an answered photo (downscaled, no metadata) until feedback comes or it ages out; what it answered
        first lets `update` hold back a confirmation that contradicts a strong match of another product."""
        self.pending.add(PendingQuery(query_id, bundle, kept_photo(image), best_id, best_score, best_confidence,
                                      time.time()))

    def record(self, query_id: str, product_id: str | None, product_group: str | None,
               crop_of: Callable[[bytes], bytes | None] | None = None) -> None:
        """Store the shopper's choice, with ``crop_of(photo)`` (the product region) when given; FeedbackError
        "unknown_query" for an answer not (or no longer) waiting."""
        pending = self.pending.get(query_id)
        if pending is None:
            raise FeedbackError("unknown_query", "no answer with this query_id is waiting for feedback (unknown, "
                                                 f"or older than {self.pending.seconds / 60:g} minutes)")
        if self.store.has(query_id):  # before the crop's model run; add() still refuses a race of two taps
            raise FeedbackError("repeated", ALREADY)
        self.store.add(pending, product_id, product_group, crop_of(pending.photo) if crop_of else None)
