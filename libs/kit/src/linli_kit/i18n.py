"""What the API says to people, in Chinese by default and in English on request.

Messages are English ids (the text in the code) translated from message catalogues: gettext `.po`
files compiled to `.mo` (Babel), one per package under `<package>/translations/zh/LC_MESSAGES/`,
the kit's (its own errors, marshmallow's, webargs' and werkzeug's messages, the labels of codes)
under each service's own. `linli-messages update <package>` extracts the messages from the source
and refreshes the catalogue; a test fails when a message has no Chinese translation.

The language of a request is negotiated from `Accept-Language` (`zh`, `zh-CN`, `zh-Hans`, `en`,
`en-US`, q-values honoured); anything else, or nothing, is Chinese. The answer says which it is in
`Content-Language`. Codes (`code` of an error, JSON field names, enum values) never change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel.support import NullTranslations, Translations
from flask import current_app, g, has_app_context, has_request_context, request
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from linli_kit.errors import Label, Text
from linli_kit.labels import LABELS

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
CONTENT_LANGUAGE = {"zh": "zh-CN", "en": "en"}
KIT_TRANSLATIONS = Path(__file__).resolve().parent / "translations"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def negotiate(header: str | None) -> str:
    """The language to answer in: the first of ours the caller accepts, by quality then order."""
    if not header:
        return DEFAULT_LANGUAGE
    accepted = parse_accept_header(header, LanguageAccept)
    for value, quality in sorted(accepted, key=lambda item: -item[1]):  # stable: ties keep their order
        if quality <= 0:
            continue
        if value == "*":
            return DEFAULT_LANGUAGE
        primary = value.replace("_", "-").split("-", 1)[0].lower()
        if primary in LANGUAGES:
            return primary
    return DEFAULT_LANGUAGE


def language() -> str:
    """The language of the current request (Chinese outside one)."""
    if not has_request_context():
        return DEFAULT_LANGUAGE
    if "language" not in g:
        g.language = negotiate(request.headers.get("Accept-Language"))
    return g.language


class Catalogue:
    """The Chinese translations of one process: the kit's, then its package's over them."""

    def __init__(self, directories: Iterable[Path]) -> None:
        merged: NullTranslations = NullTranslations()
        for directory in directories:
            found = Translations.load(str(directory), ["zh"])
            if isinstance(found, Translations):
                merged = found if not isinstance(merged, Translations) else merged.merge(found)
        self._zh = merged
        self._patterns: list[tuple[re.Pattern[str], str]] | None = None

    def zh(self, message: str, context: str | None = None) -> str | None:
        if not message:
            return None
        catalog = getattr(self._zh, "_catalog", {})
        key = f"{context}\x04{message}" if context else message
        found = catalog.get(key)
        return found or None

    def reverse(self, text: str) -> tuple[str, dict[str, str]] | None:
        """The message id and values a text was formatted from, for messages that reach us already
        formatted (marshmallow's `Length must be between 1 and 80.`)."""
        if self._patterns is None:
            catalog = getattr(self._zh, "_catalog", {})
            patterns = []
            for key in catalog:
                if isinstance(key, str) and "{" in key and "\x04" not in key and _PLACEHOLDER.search(key):
                    parts = _PLACEHOLDER.split(key)
                    regex = "".join(
                        re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)" for i, part in enumerate(parts)
                    )
                    try:
                        patterns.append((re.compile(f"^{regex}$", re.DOTALL), key))
                    except re.error:  # a placeholder named twice: not reversible
                        continue
            self._patterns = patterns
        for pattern, key in self._patterns:
            match = pattern.match(text)
            if match:
                return key, match.groupdict()
        return None


@lru_cache(maxsize=1)
def kit_catalogue() -> Catalogue:
    return Catalogue([KIT_TRANSLATIONS])


def catalogue() -> Catalogue:
    if has_app_context():
        found = current_app.extensions.get("linli.messages")
        if found is not None:
            return found
    return kit_catalogue()


def translate(text: Any, lang: str | None = None) -> str:
    """`text` in the reader's language: its translation with its values put in, or the English when
    the catalogue has none."""
    lang = lang or language()
    if lang == "en" or not isinstance(text, str):
        return str(text) if text is not None else ""
    if isinstance(text, Label):
        return label(text.kind, text.code, lang)
    messages = catalogue()
    template, params = (text.template, text.params) if isinstance(text, Text) else (text, {})
    translated = messages.zh(template)
    if translated is None and not params:
        reversed_ = messages.reverse(template)
        if reversed_ is not None:
            template, params = reversed_
            translated = messages.zh(template)
    if translated is None:
        return str(text)
    if not params:
        return translated
    try:
        return translated.format(**{name: translate(value, lang) for name, value in params.items()})
    except (KeyError, IndexError, ValueError):
        return str(text)


def translate_fields(fields: Any, lang: str | None = None) -> Any:
    """An error's field messages (lists, or dicts for nested fields) in the reader's language."""
    if isinstance(fields, dict):
        return {name: translate_fields(value, lang) for name, value in fields.items()}
    if isinstance(fields, list | tuple):
        return [translate_fields(value, lang) for value in fields]
    if isinstance(fields, str):
        return translate(fields, lang)
    return fields


def label(kind: str, code: Any, lang: str | None = None) -> str:
    """The words for a code (`issue_status`, `resolved`) in the reader's language; an unknown code is
    given as it is."""
    if code is None:
        return ""
    code = str(getattr(code, "value", code))
    english = LABELS.get(kind, {}).get(code)
    if english is None:
        return code
    if (lang or language()) == "en":
        return english
    return catalogue().zh(english, context=kind) or english


def labels(kind: str, lang: str | None = None) -> dict[str, str]:
    """Every code of a kind with its words."""
    return dict(_labels(kind, lang or language(), catalogue()))


@lru_cache(maxsize=64)
def _labels(kind: str, lang: str, messages: Catalogue) -> tuple[tuple[str, str], ...]:
    # Worded once per kind, language and catalogue (an overview names some 100 figures per answer).
    return tuple((code, label(kind, code, lang)) for code in LABELS.get(kind, {}))
