"""The pages' own words (fundcore_host/pages/i18n.py) hold no rule: both languages have the same
keys and placeholders, no word holds a number (limits, amounts and minimums come from the engine
and fundcore's constants), and every word is used by a page."""

from __future__ import annotations

import re
import string
from pathlib import Path

from fundcore_host.pages import i18n

PACKAGE = Path(i18n.__file__).resolve().parents[1]


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_languages_have_the_same_words_and_placeholders() -> None:
    es, en = i18n.WORDS["es"], i18n.WORDS["en"]
    assert es.keys() == en.keys()
    assert {key: placeholders(es[key]) for key in es} == {key: placeholders(en[key]) for key in en}


def test_no_word_holds_a_number() -> None:
    numbers = {
        (lang, key): text
        for lang, words in i18n.WORDS.items()
        for key, text in words.items()
        if re.search(r"\d", re.sub(r"\{[^}]*\}", "", text))
    }
    assert numbers == {}


def test_every_word_is_used_by_a_page() -> None:
    sources = "\n".join(
        path.read_text(encoding="utf-8")
        for path in [*PACKAGE.glob("pages/*.py"), *PACKAGE.glob("templates/**/*.html")]
        if path.name != "i18n.py"
    )
    # words named whole ("t('key')", 't("key")', page.t("key")) or by a prefix and a value
    # ("kind_" ~ tx.kind, "status_" ~ n.status, "channel_" ~ channel, "action_" ...)
    prefixes = set(re.findall(r"""["']([a-z]+_)["']\s*(?:~|\+)""", sources))
    unused = [
        key
        for key in i18n.WORDS["es"]
        if f'"{key}"' not in sources and f"'{key}'" not in sources and not any(key.startswith(p) for p in prefixes)
    ]
    assert unused == []
