"""Every user-facing string has a Simplified Chinese translation with the same placeholders."""

from __future__ import annotations

import ast
import string
from pathlib import Path

import pytest

import r1chat
from r1chat import locale

PACKAGE = Path(r1chat.__file__).parent


def translatable_calls():
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_":
                yield path.relative_to(PACKAGE.parent), node


def placeholders(text):
    return sorted(name for _, name, _, _ in string.Formatter().parse(text) if name is not None)


def test_every_message_is_a_literal():
    dynamic = [f"{path}:{node.lineno}" for path, node in translatable_calls()
               if not (node.args and isinstance(node.args[0], ast.Constant))]
    assert dynamic == []


def test_every_message_has_a_chinese_translation():
    translations = locale.load_translations("zh_CN")
    missing = sorted({
        f"{path}: {node.args[0].value!r}"
        for path, node in translatable_calls()
        if isinstance(node.args[0], ast.Constant) and node.args[0].value not in translations
    })
    assert missing == []


def test_translations_keep_placeholders():
    translations = locale.load_translations("zh_CN")
    wrong = [key for key, value in translations.items() if placeholders(key) != placeholders(value)]
    assert wrong == []


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"LANG": "zh_CN.UTF-8"}, "zh_CN"),
        ({"LANG": "zh_TW.UTF-8"}, "zh_CN"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LC_ALL": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, "zh_CN"),
        ({"LC_ALL": "C", "LANG": "zh_CN.UTF-8"}, "en"),
        ({}, "en"),
    ],
)
def test_language_from_locale(environ, expected):
    assert locale.language_from_locale(environ) == expected


def test_set_language_switches_messages():
    locale.set_language("zh_CN")
    assert locale._("Interrupted.") == "已中断。"
    locale.set_language("en")
    assert locale._("Interrupted.") == "Interrupted."
    with pytest.raises(ValueError):
        locale.set_language("fr")
