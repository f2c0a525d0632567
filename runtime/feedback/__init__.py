"""Shoppers' feedback on kiosk answers: ``store`` keeps it (SQLite, photos downscaled, retention and size limits),
``command`` is `shadematch feedback`; the kiosk (runtime.kiosk.api) writes it, `update --feedback` learns from it."""
