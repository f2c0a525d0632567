"""Serving the kiosk: one Retriever, one bounded QueryPool, the WSGI app, under Waitress.

Why Waitress: a pure-Python production WSGI server with no dependencies of its own and a fixed thread
count; it reads a whole request (bounded by ``max_request_body_size``) before a thread sees it, drops
idle or stalled connections after ``channel_timeout`` and caps open connections, so a slow or malicious
client cannot tie up the workers. The standard library's ThreadingHTTPServer has none of these.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Callable

from waitress import create_server
from waitress.channel import HTTPChannel
from waitress.wasyncore import close_all

from ..retriever import Retriever
from ..feedback.store import Feedback
from .api import KioskApp, KioskLimits
from .live import LiveBundle
from .pool import QueryPool

log = logging.getLogger("shadematch.kiosk")

#: Seconds an idle or stalled connection is kept.
CHANNEL_TIMEOUT_S = 30
#: Seconds a request may take to arrive in full, however steadily its bytes trickle in.
REQUEST_DEADLINE_S = 60
#: Open connections at most; more wait in the listen backlog.
CONNECTION_LIMIT = 64
#: Room for the multipart envelope around a photo of max_upload_bytes.
_MULTIPART_SLACK = 64 * 1024


def deadline_channel(deadline_s: float) -> type[HTTPChannel]:
    """Waitress's channel with a bound on the total time a request takes to arrive.

    Why: Waitress closes a connection after ``channel_timeout`` seconds *without* a byte, so a client that
    drips one byte every few seconds kept its connection forever, and about 60 of them filled the connection
    limit and locked every shopper out. Here the clock starts with a request's first byte; a byte arriving
    after the deadline closes the connection (a client that stops sending altogether meets the inactivity
    timeout as before)."""

    class DeadlineChannel(HTTPChannel):
        request_started: float | None = None

        def received(self, data: bytes) -> bool:
            now = time.monotonic()
            if self.request is None or self.request_started is None:
                self.request_started = now
            elif now - self.request_started > deadline_s:
                log.warning("closing %s: its request took longer than %g s to arrive", self.addr, deadline_s)
                self.will_close = True
                return False
            result = super().received(data)
            if self.request is None:  # complete: the next request's clock starts with its own first byte
                self.request_started = None
            return result

    return DeadlineChannel


class KioskServer:
    """A running kiosk: ``serve_forever()`` in the foreground, or ``start()``/``close()`` around it."""

    def __init__(
        self,
        retriever: Retriever,
        *,
        reopen: Callable[[], Retriever] | None = None,
        host: str = "127.0.0.1",
        port: int = 8080,
        workers: int = 2,
        queue: int | None = None,
        limits: KioskLimits = KioskLimits(),
        request_deadline_s: float = REQUEST_DEADLINE_S,
        feedback: Feedback | None = None,
    ) -> None:
        self.live = LiveBundle(retriever, reopen)
        self.pool = QueryPool(workers, 2 * workers if queue is None else queue)
        self.app = KioskApp(self.live, self.pool, limits, feedback)
        # HTTP threads: one per admitted query plus a few so health, pages and pictures answer while
        # every query slot is taken (and so a full pool is answered 503 at once, not queued unseen).
        self._server = create_server(
            self.app, host=host, port=port, threads=self.pool.capacity + 4,
            channel_timeout=CHANNEL_TIMEOUT_S, connection_limit=CONNECTION_LIMIT,
            max_request_body_size=limits.max_upload_bytes + _MULTIPART_SLACK,
            ident="shadematch", expose_tracebacks=False,
        )
        self._server.channel_class = deadline_channel(request_deadline_s)
        self._thread: threading.Thread | None = None
        self._closed = False
        self._closing = threading.Lock()
        self._stopping = False

    @property
    def url(self) -> str:
        host = self._server.effective_host
        return f"http://{f'[{host}]' if ':' in str(host) else host}:{self._server.effective_port}"

    def serve_forever(self) -> None:
        """Serve until interrupted (Ctrl-C) or closed."""
        try:
            self._server.run()
        except (OSError, ValueError):
            # close() from another thread (SIGTERM) shuts the sockets under Waitress's select: that is the end
            # of serving, not an error; anything else is
            if not self._stopping:
                raise
        finally:
            self.close()

    def start(self) -> "KioskServer":
        """Serve on a background thread (tests, embedding)."""
        self._thread = threading.Thread(target=self._server.run, name="kiosk-http", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop listening, finish running queries, release the model; idempotent, and safe from any thread: a
        second caller (serve_forever's own clean-up after a SIGTERM) waits until the first has finished."""
        self._stopping = True
        with self._closing:
            if self._closed:
                return
            # Stop the HTTP threads, then close the listening socket and any open connection, which ends
            # Waitress's loop (its own close() leaves keep-alive connections running it).
            self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
            close_all(self._server._map, ignore_all=True)
            if self._thread is not None and self._thread is not threading.current_thread():
                self._thread.join(timeout=5)
            self.pool.close()
            self.live.close()
            self._closed = True

    @property
    def retriever(self) -> Retriever:
        """The retriever of the bundle being served now."""
        return self.live.current.retriever

    def reload(self) -> bool:
        """Serve the bundle at the kiosk's path again, re-opened (see runtime.kiosk.live.LiveBundle.reload)."""
        return self.live.reload()

    def reload_on(self, signum: int) -> None:
        """Reload on ``signum`` (SIGHUP: the bundle path, typically a symbolic link, was flipped to an updated
        bundle). The work runs on a helper thread, never inside the signal handler."""

        def handle(_signum: int, _frame: object) -> None:
            threading.Thread(target=self.reload, name="kiosk-reload", daemon=True).start()

        signal.signal(signum, handle)

    def stop_on(self, signum: int) -> threading.Event:
        """Close the server from a helper thread when ``signum`` arrives (SIGTERM from a service manager), as
        Ctrl-C does: serving ends, queries in flight finish, the model is released. The returned event says
        whether the signal came. A handler that raised instead would land inside Waitress's loop at any point."""
        arrived = threading.Event()

        def handle(_signum: int, _frame: object) -> None:
            if not arrived.is_set():
                arrived.set()
                threading.Thread(target=self.close, name="kiosk-stop", daemon=True).start()

        signal.signal(signum, handle)
        return arrived

    def __enter__(self) -> "KioskServer":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_kiosk(bundle: Path, *, backend: str = "auto", threads: int | None = None, ocr: bool | None = None,
               **options) -> KioskServer:
    """Open and verify the bundle, load its model (and label reader, unless ``ocr`` is False) once, and bind the
    server (not yet serving). `KioskServer.reload` opens ``bundle`` again: where it is a symbolic link, the
    bundle it leads to then (each version is opened by its resolved path, so a flip never mixes two versions)."""

    def reopen() -> Retriever:
        return Retriever.open(Path(bundle).resolve(), backend=backend, threads=threads, ocr=ocr)

    retriever = reopen()
    try:
        return KioskServer(retriever, reopen=reopen, **options)
    except BaseException:
        retriever.close()
        raise
