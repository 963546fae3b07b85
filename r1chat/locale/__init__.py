"""Message catalogs: English source strings and their Simplified Chinese translations.

User-facing text is written in English inside `_()`; the translation lives in
`zh_CN/*.toml` (one file per area of the app), keyed by the English text.
The language comes from `set_language()`, else the `language` setting, else
the locale variables (`LC_ALL`, `LC_MESSAGES`, `LANG`).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

LANGUAGES = ("en", "zh_CN")

_language: str | None = None
_translations: dict[str, str] | None = None


def language_from_locale(environ: os._Environ[str] | dict[str, str] = os.environ) -> str:
    """Return "zh_CN" when the first set locale variable names Chinese, else "en"."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name, "")
        if value:
            return "zh_CN" if value.lower().startswith("zh") else "en"
    return "en"


def set_language(language: str | None) -> None:
    """Pick the language for later messages; None or "" goes back to the default."""
    global _language
    if language and language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; expected one of {LANGUAGES}")
    _language = language or None


def current_language() -> str:
    global _language
    if _language is None:
        # Imported here because config imports errors, which imports this module.
        from r1chat.config import load_settings
        from r1chat.errors import SettingsError

        # Set first: a SettingsError raised while reading the file translates
        # its own message, which calls back into this function.
        _language = language_from_locale()
        try:
            configured = load_settings().language
        except SettingsError:
            configured = ""
        if configured in LANGUAGES:
            _language = configured
    return _language


def load_translations(language: str = "zh_CN") -> dict[str, str]:
    """Read every catalog file of `language` into one dict keyed by English text."""
    merged: dict[str, str] = {}
    for path in sorted((Path(__file__).parent / language).glob("*.toml")):
        with path.open("rb") as handle:
            merged.update(tomllib.load(handle))
    return merged


def _(message: str) -> str:
    """Translate `message` into the current language; unknown text stays English."""
    if current_language() == "en":
        return message
    global _translations
    if _translations is None:
        _translations = load_translations()
    return _translations.get(message, message)
