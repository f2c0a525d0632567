"""A small HTTP client of the kiosk API, for the tests, the load test and health checks from scripts.

Standard library http.client, one connection per request (as a kiosk page's fetches are), and Werkzeug's
multipart encoder so the body is built by the same project that parses it on the server.
"""
from __future__ import annotations

import http.client
import io
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from .api import IMAGE_FIELD


@dataclass
class Reply:
    """One HTTP answer."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


class KioskClient:
    """Talks to one kiosk server at ``url`` (e.g. http://127.0.0.1:8080)."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.timeout = timeout

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Reply:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Reply(response.status, response.read(), {k.lower(): v for k, v in response.getheaders()})
        finally:
            connection.close()

    def health(self) -> Reply:
        return self.request("GET", "/api/health")

    def query(self, data: bytes, *, filename: str = "photo.jpg", field_name: str = IMAGE_FIELD,
              content_type: str = "image/jpeg") -> Reply:
        """POST a photo as multipart/form-data in ``field_name``."""
        upload = FileStorage(io.BytesIO(data), filename=filename, content_type=content_type)
        boundary, body = encode_multipart({field_name: upload})
        return self.request("POST", "/api/query", body,
                            {"Content-Type": f"multipart/form-data; boundary={boundary}"})

    def feedback(self, query_id: Any, product_id: Any) -> Reply:
        """POST a shopper's choice for an answer (``product_id`` None: "not here")."""
        body = json.dumps({"query_id": query_id, "product_id": product_id}).encode("utf-8")
        return self.request("POST", "/api/feedback", body, {"Content-Type": "application/json"})
