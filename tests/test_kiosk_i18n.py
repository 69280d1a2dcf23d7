"""Every text of the kiosk screen is in every language's catalog, with the same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from kiosk.config import LANGUAGES
from kiosk.texts import NOTICES

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ROOT / "kiosk" / "translations"


def screen_texts() -> set[str]:
    """What pybabel extracts from the kiosk's code and templates (kiosk/babel.cfg)."""
    found = extract_from_dir(
        ROOT / "kiosk",
        method_map=[("**.py", "python"), ("templates/**.html", "jinja2")],
        keywords={**DEFAULT_KEYWORDS, "_l": None},
    )
    return {message for _, _, message, _, _ in found}


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "en"])
def test_every_text_is_translated_with_its_placeholders(language: str) -> None:
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale=language)
    texts = screen_texts()
    assert len(texts) > len(NOTICES)  # the notices and the templates' texts
    missing = sorted(t for t in texts if not (catalog.get(t) and catalog.get(t).string))
    assert missing == []
    for text in texts:
        assert sorted(re.findall(r"%\(\w+\)s", catalog.get(text).string)) == sorted(
            re.findall(r"%\(\w+\)s", text)
        ), text
    assert {m.id for m in catalog if m.id} <= texts, "a translation no text uses any more"
