"""SVG snapshots of the chat, history and settings screens at phone and desktop sizes, in both languages.

Regenerate with `python -m pytest tests/test_tui_snapshots.py --snapshot-update`
and look at the SVGs before committing them.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from r1chat import config, history as history_module, locale
from r1chat.history import History
from r1chat.tui.messages import AssistantMessage
from tui_fakes import ScriptedEngine, fixed_governor, make_app, send_prompt, wait_until

SIZES = [(40, 20), (80, 24)]
LANGUAGES = ["en", "zh_CN"]
START = datetime(2025, 3, 14, 9, 30, tzinfo=timezone.utc)

ANSWER = """## 答案 / Answer

Python 的列表推导式：

- 简洁 (*concise*)
- fast enough

```python
squares = [n * n for n in range(5)]
```
"""
PIECES = [b"The user asks about ", b"list comprehensions.", b"</think>", b"\n\n"] + [
    line.encode() for line in ANSWER.splitlines(keepends=True)
]


@pytest.fixture
def fixed_world(monkeypatch):
    """Fix the clock of saved messages, the time zone and the settings path shown on screen."""
    ticks = iter(range(1000))
    monkeypatch.setattr(
        history_module, "_now", lambda: (START + timedelta(minutes=next(ticks))).isoformat(timespec="microseconds")
    )
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.setattr(config, "settings_path", lambda: Path("/home/user/.config/r1chat/settings.toml"))
    yield
    monkeypatch.undo()
    time.tzset()


def build_app(language: str):
    locale.set_language(language)
    history = History.open()
    history.add_turn(None, "写一首关于大海的短诗", "海浪轻轻拍岸。", model="deepseek-r1-1.5b:Q4_K_M")
    history.add_turn(None, "How do I resize a partition safely?", "Back up first.", model="deepseek-r1-1.5b:Q4_K_M")
    return make_app(ScriptedEngine(PIECES), history, governor=fixed_governor())


async def finish_answer(pilot) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: app.engine_ready.is_set() and app.plan is not None)
    await send_prompt(pilot, app, "What is a list comprehension?")
    await wait_until(pilot, lambda: app.chat_screen.query_one(AssistantMessage).thinking.collapsed)
    app.chat_screen.prompt.cursor_blink = False
    await pilot.pause()


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_chat_screen_snapshot(snap_compare, fixed_world, language, size):
    assert snap_compare(build_app(language), terminal_size=size, run_before=finish_answer)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_history_screen_snapshot(snap_compare, fixed_world, language, size):
    async def open_history(pilot):
        await finish_answer(pilot)
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: pilot.app.screen.__class__.__name__ == "HistoryScreen")
        await pilot.pause()

    assert snap_compare(build_app(language), terminal_size=size, run_before=open_history)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_settings_screen_snapshot(snap_compare, fixed_world, language, size):
    async def open_settings(pilot):
        await wait_until(pilot, lambda: pilot.app.engine_ready.is_set() and pilot.app.plan is not None)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: pilot.app.screen.__class__.__name__ == "SettingsScreen")
        await pilot.pause()

    assert snap_compare(build_app(language), terminal_size=size, run_before=open_settings)
