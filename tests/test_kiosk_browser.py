"""The kiosk page as a shopper uses it, in real headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright): upload a photo -> 7 result cards with the right product first; an unreadable photo -> a
clear message; the camera path (Chromium's fake camera) -> 7 cards. A screenshot of the results page is
kept at tests/artifacts/kiosk-results.png, and an 800-pixel-wide copy at docs/kiosk.jpg (the README's picture)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from PIL import Image

from runtime import Retriever
from runtime.kiosk import KioskServer

from .conftest import DEMO, ROOT

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = ROOT / "tests" / "artifacts" / "kiosk-results.png"
README_PICTURE = ROOT / "docs" / "kiosk.jpg"
QUERY = DEMO / "images" / "yoggi-vanilla-yoghurt_query.jpg"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# A synthetic camera (moving test pattern) and an auto-accepted permission prompt.
FAKE_CAMERA_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install -e '.[dev]')")


@pytest.fixture(scope="module")
def kiosk_url(demo_bundle: Path) -> Iterator[str]:
    with KioskServer(Retriever.open(demo_bundle), port=0, workers=2) as server:
        yield server.start().url


@pytest.fixture(scope="module")
def browser() -> Iterator["sync_api.Browser"]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS + FAKE_CAMERA_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: "sync_api.Browser", kiosk_url: str) -> Iterator["sync_api.Page"]:
    context = browser.new_context(viewport={"width": 1280, "height": 1024})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(kiosk_url)
    yield page
    context.close()


def test_upload_shows_seven_cards_with_the_product_first(page: "sync_api.Page", demo_bundle: Path) -> None:
    with Retriever.open(demo_bundle) as retriever:
        expected = retriever.query(QUERY)
    page.set_input_files("#file-input", str(QUERY))
    cards = page.locator(".match-card")
    cards.nth(6).wait_for()
    assert cards.count() == 7
    first = cards.first
    assert first.get_attribute("data-group") == "Yoggi-Vanilla-Yoghurt"  # the label of this photo in queries.csv
    assert first.get_attribute("data-id") == expected[0].id
    assert first.locator(".match-title").inner_text() == expected[0].title
    assert first.locator(".match-rank").inner_text() == "Best match"
    stages = [cards.nth(i).locator(".stage").inner_text() for i in range(7)]
    assert set(stages) <= {"visual", "text-refined"} and stages[0] == expected[0].stage.replace("text", "text-refined")
    # Every card's catalogue picture arrived and decoded.
    page.wait_for_function("[...document.querySelectorAll('.match-card img')].every(i => i.complete && i.naturalWidth > 0)")
    assert page.locator("#error").is_hidden() and page.locator("#not-found").is_hidden()
    assert "% sure" in first.locator(".match-score").inner_text()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    print(f"kiosk results screenshot: {SCREENSHOT}")
    with Image.open(SCREENSHOT) as shot:
        small = shot.convert("RGB").resize((800, round(shot.height * 800 / shot.width)), Image.LANCZOS)
    README_PICTURE.parent.mkdir(exist_ok=True)
    small.save(README_PICTURE, quality=55, optimize=True)  # about 90 KB


def test_a_photo_of_no_product_gets_the_not_found_panel_and_the_nearest_items(page: "sync_api.Page", demo_bundle: Path,
                                                                            tmp_path: Path) -> None:
    from runtime.confidence import non_product_photos

    with Retriever.open(demo_bundle) as retriever:
        wall = next(image for _, image in non_product_photos(16, seed=31) if not retriever.answer([image])[0].found)
    wall.save(tmp_path / "wall.png")
    page.set_input_files("#file-input", str(tmp_path / "wall.png"))
    panel = page.locator("#not-found")
    panel.wait_for(state="visible")
    assert "could not find this product" in panel.inner_text()
    cards = page.locator(".match-card")
    cards.nth(6).wait_for()
    assert cards.count() == 7 and page.locator(".match-card.best").count() == 0
    assert "nearest" in page.locator("#status").inner_text()


def test_cards_show_the_catalogue_s_own_columns(browser: "sync_api.Browser", tmp_path: Path) -> None:
    import csv

    from export.bundle.build import BuildOptions, build_bundle

    with open(DEMO / "catalog.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    catalogue = tmp_path / "catalog.csv"
    with open(catalogue, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "image", "title", "group", "price", "shade"])
        writer.writeheader()
        writer.writerows({**row, "image": str(DEMO / row["image"]), "price": f"{len(row['id'])},95 kr",
                          "shade": "<b>No. 169</b>"} for row in rows)
    build_bundle(catalogue, tmp_path / "bundle", BuildOptions(progress=False, calibration=None, pictures=False))
    with KioskServer(Retriever.open(tmp_path / "bundle"), port=0, workers=1) as server:
        page = browser.new_page()
        page.goto(server.start().url)
        page.set_input_files("#file-input", str(QUERY))
        first = page.locator(".match-card").first
        first.wait_for()
        fields = first.locator(".match-fields")
        price = next(f"{len(row['id'])},95 kr" for row in rows if row["id"] == first.get_attribute("data-id"))
        assert fields.locator("dt").all_inner_texts() == ["price", "shade"]
        # shown as text, never as markup
        assert fields.locator("dd").all_inner_texts() == [price, "<b>No. 169</b>"] and fields.locator("b").count() == 0
        page.close()


def test_unreadable_photo_shows_a_clear_message(page: "sync_api.Page") -> None:
    broken = QUERY.read_bytes()[:2000]
    page.set_input_files("#file-input", files=[{"name": "broken.jpg", "mimeType": "image/jpeg", "buffer": broken}])
    message = page.locator(".error-message")
    message.wait_for(state="visible")
    assert "could not read this photo" in message.inner_text() and "truncated" in message.inner_text()
    assert page.locator(".match-card").count() == 0 and page.locator("#not-found").is_hidden()


def test_camera_capture_shows_seven_cards(page: "sync_api.Page") -> None:
    page.click("#start-camera")
    page.locator("#take-photo").wait_for(state="visible")
    page.wait_for_function("document.getElementById('camera').videoWidth > 0")
    page.click("#take-photo")
    page.locator(".match-card").nth(6).wait_for()
    assert page.locator(".match-card").count() == 7


def test_is_this_it_stores_yes_pick_another_and_not_here(browser: "sync_api.Browser", demo_bundle: Path,
                                                         tmp_path: Path) -> None:
    import sqlite3

    from runtime.feedback.store import Feedback, FeedbackStore

    db = tmp_path / "feedback.sqlite"
    with KioskServer(Retriever.open(demo_bundle), port=0, workers=1, feedback=Feedback(FeedbackStore(db))) as server:
        page = browser.new_page()
        page.set_default_timeout(30_000)
        page.goto(server.start().url)
        chosen = []
        for action in ("yes", "pick", "none"):
            page.set_input_files("#file-input", str(QUERY))
            page.locator("#feedback").wait_for(state="visible")
            cards = page.locator(".match-card")
            if action == "yes":
                chosen.append(cards.first.get_attribute("data-id"))
                page.click("#feedback-yes")
            elif action == "pick":
                page.click("#feedback-pick")
                assert "Tap your product" in page.locator("#status").inner_text()
                chosen.append(cards.nth(2).get_attribute("data-id"))
                cards.nth(2).click()
            else:
                chosen.append(None)
                page.click("#feedback-none")
            page.locator("#feedback-thanks").wait_for(state="visible")
            assert page.locator("#feedback").is_hidden() and page.locator("#error").is_hidden()
        page.close()
    with sqlite3.connect(db) as connection:
        stored = [row[0] for row in connection.execute("SELECT product_id FROM feedback ORDER BY created")]
    assert stored == chosen and chosen[0] != chosen[1]


def test_a_kiosk_without_feedback_asks_nothing(page: "sync_api.Page") -> None:
    page.set_input_files("#file-input", str(QUERY))
    page.locator(".match-card").nth(6).wait_for()
    page.wait_for_timeout(300)
    assert page.locator("#feedback").is_hidden()
