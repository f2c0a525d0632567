"""A loopback HTTP server for feed tests: serves files with ETag and Last-Modified (and answers conditional GETs
with 304), plus the failures a real feed meets: a path that sleeps past the client's timeout, one that serves
HTML, a 404. It counts what it sent per path, so a test can tell a download from a revalidation."""
from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SLOW = "/slow.jpg"
NOT_IMAGE = "/page.jpg"
BROKEN = "/missing.jpg"
#: When every served file counts as last modified (one fixed date: the server's files do not change mid-test
#: unless a test changes them, which changes their ETag).
_MODIFIED = formatdate(1_700_000_000, usegmt=True)


class FeedServer:
    """``files``: URL path -> bytes (a test may change them between builds). ``sent``: full 200 answers per
    path; ``unchanged``: 304 answers per path."""

    def __init__(self, files: dict[str, bytes], slow_s: float = 3.0) -> None:
        self.files = dict(files)
        self.sent: Counter[str] = Counter()
        self.unchanged: Counter[str] = Counter()
        self.slow_s = slow_s
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server._answer(self)

            def log_message(self, *args) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def __enter__(self) -> "FeedServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?", 1)[0]
        if path == SLOW:
            time.sleep(self.slow_s)
        if path == NOT_IMAGE:
            self._send(handler, 200, b"<html><body>Sorry, this product page moved</body></html>", "text/html")
            return
        body = self.files.get(path)
        if body is None:
            self._send(handler, 404, b"not found", "text/plain")
            return
        etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
        if handler.headers.get("If-None-Match") == etag:
            self.unchanged[path] += 1
            handler.send_response(304)
            handler.send_header("ETag", etag)
            handler.end_headers()
            return
        self.sent[path] += 1
        kind = "text/tab-separated-values" if path.endswith(".tsv") else "image/jpeg"
        self._send(handler, 200, body, kind, {"ETag": etag, "Last-Modified": _MODIFIED})

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, kind: str,
              headers: dict[str, str] | None = None) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", kind)
            handler.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up on the slow path: what the test wants
