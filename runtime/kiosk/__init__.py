"""The in-store kiosk: a small web server and one offline page in front of a loaded bundle.

    shadematch kiosk --bundle B [--host 127.0.0.1] [--port 8080] [--workers N]

``api`` is the WSGI application (routes, upload checks, JSON errors), ``pool`` the bounded worker pool
that shares one Retriever, ``thumbnails`` the catalogue pictures the page shows, ``server`` runs it all
under Waitress. The page (``static/``) has no external assets, so it works with no internet.
"""
from .api import KioskApp, KioskLimits
from .pool import Busy, QueryPool, QueryTimeout
from .server import KioskServer

__all__ = ["KioskApp", "KioskLimits", "QueryPool", "Busy", "QueryTimeout", "KioskServer"]
