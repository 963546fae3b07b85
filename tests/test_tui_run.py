"""`r1chat.tui.app.run`: what happens before the screen opens, and a bug inside an answer."""

from __future__ import annotations

import argparse

import pytest

from r1chat.errors import ModelNotFound
from r1chat.history import History
from r1chat.tui import app as app_module
from r1chat.tui.messages import AssistantMessage
from tui_fakes import ScriptedEngine, make_app, send_prompt


def chat_args(**overrides) -> argparse.Namespace:
    values = dict(
        model=None, threads=None, ctx=None, max_tokens=None, temperature=None,
        top_p=None, seed=None, think=None, continue_last=False,
    )
    values.update(overrides)
    return argparse.Namespace(**values)


def test_run_unknown_model_raises_before_screen(monkeypatch):
    # run() sets these for Textual; monkeypatch restores them afterwards.
    monkeypatch.delenv("TEXTUAL_FPS", raising=False)
    monkeypatch.delenv("TEXTUAL_ANIMATIONS", raising=False)
    with pytest.raises(ModelNotFound):
        app_module.run(chat_args(model="no-such-model"))


class BrokenEngine(ScriptedEngine):
    def generate(self, tokens, sampling, cancel=None):
        raise ZeroDivisionError("scripted bug")
        yield b""


@pytest.mark.anyio
async def test_answer_bug_shows_error_not_hang():
    with History.open() as history:
        app = make_app(BrokenEngine([]), history)
        async with app.run_test(size=(40, 20)) as pilot:
            await send_prompt(pilot, app, "Hi")
            view = app.chat_screen.query_one(AssistantMessage)
            assert view.error == "Unexpected error: ZeroDivisionError: scripted bug"
            assert app.chat_screen.generating is False
            lines, _ = app.log_buffer.lines_after(0)
            assert any("answer failed unexpectedly" in line for line in lines)
