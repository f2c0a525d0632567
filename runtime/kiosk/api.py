"""The kiosk's HTTP API and page as one WSGI application (Werkzeug routing, requests and multipart parsing).

    GET  /                          the page (static/index.html); /static/<name> its CSS and JS
    GET  /api/health                {"status": "ok", ...}: the bundle is loaded and the server answers
    POST /api/query                 multipart/form-data, photo in the field "image" -> one result (runtime.results: found,
                                    confidence, matches with rank, confidence, stage, product, image_url; words; elapsed_ms;
                                    query_id)
    POST /api/feedback              JSON {"query_id": ..., "product_id": ... or null}: the shopper's choice for an answer
                                    (a product id from its list, or null for "not here"), stored with the photo when the
                                    kiosk keeps feedback (runtime.feedback.store) -> 201
    GET  /api/catalog/<id>/image    a catalogue item's picture (JPEG thumbnail), by catalogue id only (may hold "/")
    GET  /metrics                   Prometheus text format (runtime.kiosk.metrics)

Every error is JSON ``{"error": {"status", "code", "message"}}`` with a message a person can act on; bad
input is a 4xx, a full queue 503 (with Retry-After), a slow answer 504.
"""
from __future__ import annotations

import io
import json
import logging
import mimetypes
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import quote

from PIL import Image
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .. import __version__
from ..errors import ImageError
from ..describe.image import DEFAULT_MAX_PIXELS, load_image
from ..reading.photos import READ_SIDE
from ..results import Answer, Match, image_error_code, result_dict
from ..feedback.store import JPEG_QUALITY, Feedback, FeedbackError
from ..reading.reader import product_box
from .pool import Busy, QueryPool, QueryTimeout
from .live import LiveBundle
from .metrics import KioskMetrics
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


#: A feedback request's body at most: two ids.
MAX_FEEDBACK_BYTES = 4096
#: Which status a feedback that cannot be stored gets, by its code (runtime.feedback.store.FeedbackError).
_FEEDBACK_ERROR_STATUS = {"unknown_query": 404, "repeated": 409, "full": 507}

#: Which 4xx an unusable photo gets, by its error code (runtime.results.image_error_code).
_IMAGE_ERROR_STATUS = {"image_too_large": 413, "unsupported_image": 415, "unreadable_image": 422}


class _KioskRequest(Request):
    # Werkzeug refuses larger bodies with 413 before parsing; the multipart parts themselves are bounded too.
    max_form_parts = 16
    max_form_memory_size = 64 * 1024


class KioskApp:
    """WSGI application over the live bundle (one shared Retriever, swappable: runtime.kiosk.live) and a bounded
    QueryPool."""

    def __init__(self, live: LiveBundle, pool: QueryPool, limits: KioskLimits = KioskLimits(),
                 feedback: Feedback | None = None) -> None:
        self.live = live
        self.pool = pool
        self.limits = limits
        self.feedback = feedback
        self.metrics = KioskMetrics(live, pool)
        self._static = {path.name: path.read_bytes() for path in STATIC_DIR.iterdir() if path.is_file()}
        self._routes = Map([
            Rule("/", endpoint="page", methods=["GET"]),
            Rule("/static/<name>", endpoint="static", methods=["GET"]),
            Rule("/api/health", endpoint="health", methods=["GET"]),
            Rule("/api/query", endpoint="query", methods=["POST"]),
            Rule("/api/feedback", endpoint="feedback", methods=["POST"]),
            # path: a catalogue id may hold "/" (its %2F arrives decoded)
            Rule("/api/catalog/<path:item_id>/image", endpoint="catalog_image", methods=["GET"]),
            Rule("/metrics", endpoint="metrics", methods=["GET"]),
        ], merge_slashes=False)  # "//" in a path is an id's, not a redirect
        self._handlers: dict[str, Callable[..., Response]] = {
            "page": self.page, "static": self.static, "health": self.health,
            "query": self.query, "feedback": self.record_feedback, "catalog_image": self.catalog_image,
            "metrics": self.serve_metrics,
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
            "feedback": self.feedback is not None,
        })

    def serve_metrics(self, request: Request) -> Response:
        body, content_type = self.metrics.render()
        response = Response(body, content_type=content_type)
        response.headers["Cache-Control"] = "no-store"
        return response

    def query(self, request: Request) -> Response:
        started = time.perf_counter()
        try:
            result = self._query(request, started)
        except Exception:  # every error answer (4xx, 503, 504, 500) counts as one
            self.metrics.queries.labels("error").inc()
            raise
        finally:
            self.metrics.seconds.labels("total").observe(time.perf_counter() - started)
        self.metrics.queries.labels("found" if result["found"] else "not_found").inc()
        return _json(200, result)

    def _query(self, request: Request, started: float) -> dict[str, Any]:
        name, data = self._read_upload(request)
        query_id = uuid.uuid4().hex
        try:
            answer = self.pool.run(lambda: self._answer(name, data, query_id), timeout=self.limits.timeout_s)
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
        result["query_id"] = query_id
        return result

    def record_feedback(self, request: Request) -> Response:
        try:
            response = self._record_feedback(request)
        except ApiError as exc:
            self.metrics.feedback.labels(exc.code).inc()
            raise
        self.metrics.feedback.labels("stored").inc()
        return response

    def _record_feedback(self, request: Request) -> Response:
        if self.feedback is None:
            raise ApiError(404, "feedback_off", "this kiosk keeps no feedback (start it with --feedback-db PATH)")
        body = self._read_json(request)
        query_id, product_id = body.get("query_id"), body.get("product_id", ...)
        if not isinstance(query_id, str) or not query_id:
            raise ApiError(400, "bad_query_id", "the body needs \"query_id\": the query_id of the answer, a string")
        if product_id is ... or not (product_id is None or isinstance(product_id, str)):
            raise ApiError(400, "bad_product_id", "the body needs \"product_id\": a catalogue id from the answer, "
                                                  "or null for \"not here\"")
        group = None
        if product_id is not None:
            with self.live.use() as served:
                group = served.groups.get(product_id)
            if group is None:
                raise ApiError(422, "unknown_product", "no catalogue item with this product_id on this kiosk")
        try:
            # The product crop is one model run, here on the HTTP thread rather than the query pool: feedback needs
            # an answer still waiting (each went through the pool), so it never outnumbers the queries, and a
            # shopper's tap must not be refused 503 behind other shoppers' photos.
            self.feedback.record(query_id, product_id, group, self._product_crop)
        except FeedbackError as exc:
            if exc.code == "full":
                log.warning("feedback not stored: %s", exc)
            raise ApiError(_FEEDBACK_ERROR_STATUS[exc.code], exc.code, str(exc)) from None
        return _json(201, {"stored": True, "query_id": query_id, "product_id": product_id})

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

    def _read_json(self, request: Request) -> dict[str, Any]:
        """A small JSON object body, or an ApiError saying what is wrong with it."""
        if request.content_length is None or request.content_length > MAX_FEEDBACK_BYTES:
            raise ApiError(413 if request.content_length else 411, "bad_length",
                           f"send the JSON body with a Content-Length of at most {MAX_FEEDBACK_BYTES} bytes")
        if request.mimetype != "application/json":
            raise ApiError(415, "not_json", f"expected application/json (got {request.mimetype or 'no content type'})")
        try:
            body = json.loads(request.get_data(cache=False).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "malformed_json", "the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "malformed_json", "the body must be a JSON object")
        return body

    def _product_crop(self, photo: bytes) -> bytes | None:
        """The product region of a kept photo (JPEG), where the saliency map of the serving model marks one."""
        image = Image.open(io.BytesIO(photo)).convert("RGB")
        with self.live.use() as served:
            embedder = served.retriever.embedder
            outputs = embedder.run_model(embedder.preprocess(image)[None])
            saliency = outputs[embedder.card.outputs["saliency"]][0, 0]
            box = product_box(saliency, image.size, embedder.card.input)
        if box == (0, 0, image.width, image.height):
            return None
        out = io.BytesIO()
        image.crop(box).save(out, format="JPEG", quality=JPEG_QUALITY)
        return out.getvalue()

    def _answer(self, name: str, data: bytes, query_id: str) -> Answer:
        # Decoding runs on a worker too: it is CPU work that the pool must bound like the model.
        stream = io.BytesIO(data)
        stream.name = name  # load_image names the photo in its messages
        with self.live.use() as served:  # the bundle version it starts on answers it, even if a reload comes
            retriever = served.retriever
            card = retriever.bundle.card.input
            # small print (a label, a barcode) needs pixels
            side = READ_SIDE if retriever.reads_labels or retriever.barcode_reader else max(card.height, card.width)
            decoding = time.perf_counter()
            image = load_image(stream, min_size=side, max_pixels=self.limits.max_pixels)
            answering = time.perf_counter()
            self.metrics.seconds.labels("decode").observe(answering - decoding)
            answer = retriever.answer([image])[0]
            self.metrics.seconds.labels("answer").observe(time.perf_counter() - answering)
            if self.feedback is not None:
                best = answer.matches[0] if answer.matches else None
                self.feedback.remember(query_id, retriever.bundle.meta.sha256, image, best.id if best else None,
                                       float(best.score) if best else None,
                                       None if best is None or best.confidence is None else float(best.confidence))
            return answer

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
