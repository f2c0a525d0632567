"""The kiosk's HTTP API and page as one WSGI application (Werkzeug routing, requests and multipart parsing).

    GET  /                          the page (static/index.html); /static/<name> its CSS and JS
    GET  /api/health                {"status": "ok", ...}: the bundle is loaded and the server answers
    POST /api/query                 multipart/form-data, photo in the field "image" -> one result (runtime.results: found,
                                    confidence, matches with rank, confidence, stage, product, image_url; words; elapsed_ms)
    GET  /api/catalog/<id>/image    a catalogue item's picture (JPEG thumbnail), by catalogue id only (may hold "/")

Every error is JSON ``{"error": {"status", "code", "message"}}`` with a message a person can act on; bad
input is a 4xx, a full queue 503 (with Retry-After), a slow answer 504.
"""
from __future__ import annotations

import io
import json
import logging
import mimetypes
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import quote

from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .. import __version__
from ..errors import ImageError
from ..describe.image import DEFAULT_MAX_PIXELS, load_image
from ..reading.photos import READ_SIDE
from ..results import Answer, Match, image_error_code, result_dict
from .pool import Busy, QueryPool, QueryTimeout
from .live import LiveBundle
from .upload import UploadError, UploadLimits, read_photo

log = logging.getLogger("shadematch.kiosk")

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: The multipart field that carries the photo.
IMAGE_FIELD = "image"


@dataclass(frozen=True)
class KioskLimits:
    """What one request may cost: upload bytes, decoded pixels, and seconds until 504."""

    max_upload_bytes: int = 15 * 1024 * 1024
    max_pixels: int = DEFAULT_MAX_PIXELS
    timeout_s: float = 15.0
    retry_after_s: int = 1


class ApiError(Exception):
    """An error answer: HTTP status, a stable machine code and a message for people."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


#: Which 4xx an unusable photo gets, by its error code (runtime.results.image_error_code).
_IMAGE_ERROR_STATUS = {"image_too_large": 413, "unsupported_image": 415, "unreadable_image": 422}


class _KioskRequest(Request):
    # Werkzeug refuses larger bodies with 413 before parsing; the multipart parts themselves are bounded too.
    max_form_parts = 16
    max_form_memory_size = 64 * 1024


class KioskApp:
    """WSGI application over the live bundle (one shared Retriever, swappable: runtime.kiosk.live) and a bounded
    QueryPool."""

    def __init__(self, live: LiveBundle, pool: QueryPool, limits: KioskLimits = KioskLimits()) -> None:
        self.live = live
        self.pool = pool
        self.limits = limits
        self._static = {path.name: path.read_bytes() for path in STATIC_DIR.iterdir() if path.is_file()}
        self._routes = Map([
            Rule("/", endpoint="page", methods=["GET"]),
            Rule("/static/<name>", endpoint="static", methods=["GET"]),
            Rule("/api/health", endpoint="health", methods=["GET"]),
            Rule("/api/query", endpoint="query", methods=["POST"]),
            # path: a catalogue id may hold "/" (its %2F arrives decoded)
            Rule("/api/catalog/<path:item_id>/image", endpoint="catalog_image", methods=["GET"]),
        ], merge_slashes=False)  # "//" in a path is an id's, not a redirect
        self._handlers: dict[str, Callable[..., Response]] = {
            "page": self.page, "static": self.static, "health": self.health,
            "query": self.query, "catalog_image": self.catalog_image,
        }

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        request = _KioskRequest(environ)
        request.max_content_length = self.limits.max_upload_bytes
        try:
            endpoint, values = self._routes.bind_to_environ(environ).match()
            response = self._handlers[endpoint](request, **values)
        except ApiError as exc:
            response = _error(exc.status, exc.code, exc.message, exc.headers)
        except RequestEntityTooLarge:
            response = self._upload_too_large()
        except HTTPException as exc:  # 404 unknown route, 405 wrong method
            response = _error(exc.code or 400, (exc.name or "error").lower().replace(" ", "_"), exc.description or "")
        except Exception:  # never a traceback to a shopper; the log has it
            log.exception("unexpected error on %s %s", request.method, request.path)
            response = _error(500, "internal_error", "something went wrong on the kiosk; please try again")
        return response(environ, start_response)

    # --- the page -------------------------------------------------------------------------------------
    def page(self, request: Request) -> Response:
        return self.static(request, "index.html")

    def static(self, request: Request, name: str) -> Response:
        body = self._static.get(name)
        if body is None:
            raise ApiError(404, "not_found", f"no such file: {name}")
        mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        response = Response(body, mimetype=mimetype)
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; object-src 'none'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    # --- the API --------------------------------------------------------------------------------------
    def health(self, request: Request) -> Response:
        return _json(200, {
            "status": "ok",
            "version": __version__,
            "bundle": self.live.current.describe(),
            "reloads": self.live.reloads,
            "workers": self.pool.workers,
            "capacity": self.pool.capacity,
            "in_flight": self.pool.in_flight,
        })

    def query(self, request: Request) -> Response:
        started = time.perf_counter()
        name, data = self._read_upload(request)
        try:
            answer = self.pool.run(lambda: self._answer(name, data), timeout=self.limits.timeout_s)
        except Busy:
            raise ApiError(503, "busy", "the kiosk is busy with other photos; please try again in a moment",
                           {"Retry-After": str(self.limits.retry_after_s)}) from None
        except QueryTimeout:
            raise ApiError(504, "timeout", f"no answer within {self.limits.timeout_s:g} s; please try again") from None
        except ImageError as exc:
            code = image_error_code(exc)
            raise ApiError(_IMAGE_ERROR_STATUS[code], code, f"this photo cannot be used: {exc}") from None
        result = result_dict(answer, name, image_url=_picture_url)
        result["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 1)  # the whole request, upload included
        return _json(200, result)

    def catalog_image(self, request: Request, item_id: str) -> Response:
        with self.live.use() as served:
            if item_id not in served.thumbnails:
                raise ApiError(404, "not_found", "no catalogue item with this id")
            try:
                data = served.thumbnails.jpeg(item_id)
            except ImageError:
                log.warning("catalogue picture of %s is unreadable", item_id)
                data = None
        if data is None:
            raise ApiError(404, "no_image", "this catalogue item has no picture on this kiosk")
        response = Response(data, mimetype="image/jpeg")
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response

    # --- helpers --------------------------------------------------------------------------------------
    def _read_upload(self, request: Request) -> tuple[str, bytes]:
        """The uploaded photo's file name (for messages) and bytes, or an ApiError saying what is wrong."""
        if not request.content_length and not request.headers.get("Transfer-Encoding"):
            raise ApiError(400, "empty_request",
                           f"the request is empty: send the photo as multipart/form-data in the field '{IMAGE_FIELD}'")
        if request.content_length and request.content_length > self.limits.max_upload_bytes:
            raise RequestEntityTooLarge()
        if request.mimetype != "multipart/form-data":
            raise ApiError(415, "not_multipart",
                           f"expected multipart/form-data with the photo in the field '{IMAGE_FIELD}' "
                           f"(got {request.mimetype or 'no content type'})")
        boundary = request.mimetype_params.get("boundary", "")
        if not boundary:
            raise ApiError(400, "malformed_multipart", "the multipart/form-data content type names no boundary")
        limits = UploadLimits(self.limits.max_upload_bytes, _KioskRequest.max_form_parts, _KioskRequest.max_form_memory_size)
        try:
            name, data = read_photo(request.stream, boundary.encode("latin-1", "replace"), IMAGE_FIELD, limits)
        except UploadError as exc:
            raise ApiError(exc.status, exc.code, exc.message) from None
        if not data:
            raise ApiError(400, "empty_image", "the uploaded photo is empty (0 bytes)")
        return name[:80], data

    def _answer(self, name: str, data: bytes) -> Answer:
        # Decoding runs on a worker too: it is CPU work that the pool must bound like the model.
        stream = io.BytesIO(data)
        stream.name = name  # load_image names the photo in its messages
        with self.live.use() as served:  # the bundle version it starts on answers it, even if a reload comes
            retriever = served.retriever
            card = retriever.bundle.card.input
            side = READ_SIDE if retriever.reads_labels else max(card.height, card.width)  # small print needs pixels
            image = load_image(stream, min_size=side, max_pixels=self.limits.max_pixels)
            return retriever.answer([image])[0]

    def _upload_too_large(self) -> Response:
        limit_mb = self.limits.max_upload_bytes / (1024 * 1024)
        return _error(413, "upload_too_large", f"the upload is larger than the {limit_mb:g} MB limit")


def _picture_url(match: Match) -> str:
    return f"/api/catalog/{quote(match.id, safe='')}/image"


def _json(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    response = Response(json.dumps(payload, ensure_ascii=False), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return _json(status, {"error": {"status": status, "code": code, "message": message}}, headers)


__all__ = ["KioskApp", "KioskLimits", "ApiError", "IMAGE_FIELD"]
