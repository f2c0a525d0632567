"""Model cards: the shipped card describes the shipped model; malformed cards are named errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.bundle import sha256_file
from runtime.errors import ModelCardError
from runtime.describe.modelcard import ModelCard

from .conftest import MODEL

CARD = MODEL.with_name(MODEL.stem + ".card.json")


def test_shipped_card_matches_the_shipped_model() -> None:
    card = ModelCard.load(CARD)
    assert card.sha256 == sha256_file(MODEL)
    assert card.file == MODEL.name and card.task == "visual"
    assert card.input.mean == (127.0, 127.0, 127.0) and card.input.std == (128.0, 128.0, 128.0)
    assert card.outputs == {"features": "X", "saliency": "S"}
    assert MODEL.stat().st_size < 50 * 1024 * 1024


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.pop("sha256"), "lacks the field 'sha256'"),
        (lambda c: c["input"].pop("height"), "lacks the field 'height'"),
        (lambda c: c["input"].update(resize="stretch-ish"), "unknown resize policy"),
        (lambda c: c["input"].update(mean=[1, 2]), "needs 3 values"),
        (lambda c: c["input"].update(std=[0, 1, 1]), "must be positive"),
    ],
)
def test_malformed_cards(tmp_path: Path, edit, message: str) -> None:
    raw = json.loads(CARD.read_text())
    edit(raw)
    path = tmp_path / "card.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ModelCardError, match=message):
        ModelCard.load(path)


def test_missing_and_unparsable_cards(tmp_path: Path) -> None:
    with pytest.raises(ModelCardError, match="not found"):
        ModelCard.load(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ModelCardError, match="not valid JSON"):
        ModelCard.load(tmp_path / "bad.json")


def test_shipped_cards_name_no_path_of_the_machine_that_made_them() -> None:
    """Issue 13, fault 9: cards recorded /tmp/... checkpoints; they record file names and sha256 instead."""
    import json
    import re

    engines = Path(__file__).resolve().parents[1] / "engines"

    def strings(value):
        if isinstance(value, dict):
            for item in value.values():
                yield from strings(item)
        elif isinstance(value, list):
            for item in value:
                yield from strings(item)
        elif isinstance(value, str):
            yield value

    cards = sorted(engines.glob("*.card.json"))
    assert len(cards) >= 3
    for card in cards:
        absolute = [s for s in strings(json.loads(card.read_text())) if s.startswith("/")]
        assert not absolute, (card.name, absolute)
    for page in sorted(engines.glob("*.md")):
        assert not re.search(r"(?<![\w.])/(tmp|work|root|home)/", page.read_text()), page.name
