"""Chat screen behaviour with a scripted engine: streaming, folding, stopping, screens."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from textual import events

from r1chat import config
from r1chat.config import Settings
from r1chat.history import History
from r1chat.power.governor import Governor
from r1chat.power.sensors import SensorReading
from r1chat.power.topology import CoreClass, Topology
from r1chat.tui.markdown_view import CHUNK_CHARS
from r1chat.tui.messages import AssistantMessage, Notice, UserMessage
from tui_fakes import (
    ScriptedEngine,
    fixed_governor,
    make_app,
    send_prompt,
    wait_for_thread_event,
    wait_until,
)

# anyio's pytest plugin runs these async tests on asyncio.
pytestmark = pytest.mark.anyio


@pytest.fixture
def history():
    with History.open() as opened:
        yield opened


def answers(app) -> list[AssistantMessage]:
    return list(app.chat_screen.query(AssistantMessage))


async def test_reasoning_streams_then_folds(history):
    pieces = [b"First I ", b"count the ", b"letters.", b"</think>", b"\n\nThe answer is **3**."]
    gate = threading.Event()
    engine = ScriptedEngine(pieces, gates={3: gate})
    app = make_app(engine, history)
    async with app.run_test(size=(40, 20)) as pilot:
        await send_prompt(pilot, app, "How many r in berry?", finish=False)
        await wait_for_thread_event(pilot, engine.reached[3])
        view = answers(app)[0]
        await wait_until(pilot, lambda: view.reasoning_view is not None and "letters." in view.reasoning_view.source)
        block = view.thinking
        assert block.collapsed is False
        assert block.title == "Thinking…"
        assert view.answer_view.source == ""

        gate.set()
        await wait_until(pilot, lambda: not app.chat_screen.generating)
        assert block.collapsed is True
        assert block.title == "Thinking"
        assert view.reasoning_view.source == "First I count the letters."
        assert view.answer_view.source == "The answer is **3**."


async def test_think_flag_keeps_or_hides_reasoning(history):
    pieces = [b"Some reasoning.", b"</think>", b"Answer."]
    for think, expect_block, expect_collapsed in ((True, True, False), (False, False, None)):
        app = make_app(ScriptedEngine(pieces), history, think=think)
        async with app.run_test(size=(40, 20)) as pilot:
            await send_prompt(pilot, app, "Hi")
            view = answers(app)[0]
            assert (view.thinking is not None) is expect_block
            if expect_block:
                assert view.thinking.collapsed is expect_collapsed
            assert view.answer_view.source == "Answer."
            assert view.reasoning == "Some reasoning."


def long_markdown(size: int = 60_000) -> str:
    """Return a Markdown answer of about `size` characters: headings, lists, code, tables, CJK."""
    sections = []
    number = 0
    while sum(len(section) for section in sections) < size:
        number += 1
        sections.append(
            f"## Section {number}\n\n"
            f"Paragraph {number} explains the idea with *emphasis*, `code` and a [link](https://example.org).\n"
            "中文段落：模型在手机上离线运行，回答会逐步显示。\n\n"
            f"- item {number}.1\n- item {number}.2\n  - nested item\n\n"
            "```python\n"
            f"def step_{number}(value):\n    return value * {number}\n"
            "```\n\n"
            "| column | value |\n| --- | --- |\n"
            f"| row {number} | {number * 3} |\n\n"
        )
    return "".join(sections)


async def test_long_answer_bounded_full_renders(history, monkeypatch):
    text = long_markdown()
    assert len(text.encode()) >= 60_000
    lines = text.splitlines(keepends=True)
    pieces = [b"</think>"] + [line.encode() for line in lines]
    # The engine pauses every 150 lines until the screen has taken the text, so
    # each batch is the same size however fast this machine is.
    gates = {index: threading.Event() for index in range(150, len(pieces), 150)}
    engine = ScriptedEngine(pieces, gates=gates)

    parsed_sizes: list[int] = []
    original_parse = MarkdownIt.parse

    def measuring_parse(self, src, env=None):
        parsed_sizes.append(len(src))
        return original_parse(self, src, env)

    monkeypatch.setattr(MarkdownIt, "parse", measuring_parse)

    app = make_app(engine, history, max_tokens=100_000)
    async with app.run_test(size=(80, 24)) as pilot:
        await send_prompt(pilot, app, "Write a long document.", finish=False)
        screen = app.chat_screen
        view = answers(app)[0]
        for index in sorted(gates):
            await wait_for_thread_event(pilot, engine.reached[index])
            await wait_until(pilot, lambda: len(screen.answer_buffer) == 0 and len(view.answer_view.source) == len(view.answer))
            if index == 900:
                # Chunks of finished blocks so far, and the open tail.
                assert len(view.answer_view.children) >= 2
                assert len(view.answer_view.children) <= len(view.answer) // CHUNK_CHARS + 2
                assert view.answer_view.full_renders == 0
            gates[index].set()
        streaming_parses = list(parsed_sizes)
        await wait_until(pilot, lambda: not screen.generating)

        assert view.answer_view.full_renders == 1
        assert len(streaming_parses) >= len(gates)
        # Each batch parses only its own text and the block still open, never the whole answer.
        assert max(streaming_parses) < 8_000
        assert view.answer_view.source == view.answer
        assert view.answer.strip() == text.strip()
        # Finished blocks are grouped into chunks of about CHUNK_CHARS characters,
        # plus the empty tail, so a long answer stays a few dozen widgets.
        assert len(view.answer_view.children) <= len(text) // CHUNK_CHARS + 2


async def test_escape_stops_and_saves_incomplete(history):
    pieces = [b"</think>", b"One, ", b"two, ", b"three, ", b"four."]
    gate = threading.Event()
    engine = ScriptedEngine(pieces, gates={3: gate})
    app = make_app(engine, history)
    async with app.run_test(size=(40, 20)) as pilot:
        await send_prompt(pilot, app, "Count to four", finish=False)
        await wait_for_thread_event(pilot, engine.reached[3])
        await pilot.press("escape")
        gate.set()
        await wait_until(pilot, lambda: not app.chat_screen.generating)
        view = answers(app)[0]
        assert view.answer_view.source == "One, two,"
        assert view.finish_reason == "interrupted"
        assert "Stopped" in str(view.query_one(".note").render())

    saved = history.messages(history.last_conversation().id)
    assert [message.role for message in saved] == ["user", "assistant"]
    assert saved[1].complete is False
    assert saved[1].finish_reason == "interrupted"
    assert saved[1].content == "One, two,"


async def test_empty_prompt_sends_nothing(history):
    engine = ScriptedEngine([b"</think>", b"Hi."])
    app = make_app(engine, history)
    async with app.run_test(size=(40, 20)) as pilot:
        app.chat_screen.prompt.insert("   \n  ")
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert app.chat_screen.generating is False
        assert list(app.chat_screen.query(UserMessage)) == []
    assert engine.calls == []
    assert history.conversations() == []


async def test_pasted_lines_stay_one_prompt(history):
    engine = ScriptedEngine([b"</think>", b"Done."])
    app = make_app(engine, history)
    async with app.run_test(size=(40, 20)) as pilot:
        prompt = app.chat_screen.prompt
        # A terminal's bracketed paste reaches the app, which forwards it to the focused widget.
        app.post_message(events.Paste("line one\nline two\nline three"))
        await wait_until(pilot, lambda: prompt.text == "line one\nline two\nline three")
        assert app.chat_screen.generating is False
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(engine.calls) == 1 and not app.chat_screen.generating)
    assert engine.calls[0][-1].content == "line one\nline two\nline three"


async def test_ctrl_j_adds_line(history):
    engine = ScriptedEngine([b"</think>", b"Done."])
    app = make_app(engine, history)
    async with app.run_test(size=(40, 20)) as pilot:
        await pilot.press("a", "ctrl+j", "b")
        assert app.chat_screen.prompt.text == "a\nb"
        assert app.chat_screen.generating is False


async def test_reasoning_never_sent_back(history):
    engine = ScriptedEngine([b"secret plan", b"</think>", b"Visible answer."])
    app = make_app(engine, history)
    async with app.run_test(size=(40, 20)) as pilot:
        await send_prompt(pilot, app, "first")
        await send_prompt(pilot, app, "second")
    second_call = engine.calls[1]
    assert [message.role for message in second_call] == ["user", "assistant", "user"]
    assert second_call[1].content == "Visible answer."
    assert all("secret plan" not in message.content for message in second_call)
    saved = history.messages(history.last_conversation().id)
    assert saved[1].reasoning == "secret plan"


async def test_trimming_notice_with_scripted_engine(history):
    engine = ScriptedEngine([b"</think>", b"x" * 20], n_ctx=200)
    app = make_app(engine, history, n_ctx=200, max_tokens=40)
    long_prompt = "word " * 60
    async with app.run_test(size=(40, 20)) as pilot:
        await send_prompt(pilot, app, long_prompt)
        assert list(app.chat_screen.query(Notice)) == []
        await send_prompt(pilot, app, long_prompt)
        notices = list(app.chat_screen.query(Notice))
        assert len(notices) == 1
        assert "2 earlier messages are not sent" in str(notices[0].render())
    assert [message.role for message in engine.calls[1]] == ["user"]


async def test_history_rename_delete_export(history):
    engine = ScriptedEngine([b"</think>", b"# Title\n\nBody."])
    app = make_app(engine, history)
    async with app.run_test(size=(40, 20)) as pilot:
        await send_prompt(pilot, app, "first conversation")
        await pilot.press("ctrl+n")
        await send_prompt(pilot, app, "second conversation")
        first, second = sorted(conversation.id for conversation in history.conversations())

        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "HistoryScreen")
        screen = app.screen
        assert screen.selected_id == second

        await pilot.press("r")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "RenameScreen")
        app.screen.query_one("Input").value = "Renamed"
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is screen)
        assert history.conversation(second).title == "Renamed"

        await pilot.press("e")
        await pilot.pause()
        exports = list((config.data_dir() / "exports").glob("*.md"))
        assert len(exports) == 1
        exported = exports[0].read_text(encoding="utf-8")
        assert exported.startswith("# Renamed")
        assert "second conversation" in exported
        assert exports[0].name.endswith(f"-renamed-{second}.md")

        await pilot.press("down")
        assert screen.selected_id == first
        await pilot.press("d")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "ConfirmScreen")
        await pilot.press("y")
        await wait_until(pilot, lambda: app.screen is screen)
        assert [conversation.id for conversation in history.conversations()] == [second]

        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is app.chat_screen)
        assert app.session.conversation_id == second
        users = [widget.text for widget in app.chat_screen.query(UserMessage)]
        assert users == ["second conversation"]


async def test_settings_power_budget(history):
    governor = fixed_governor()
    app = make_app(ScriptedEngine([b"</think>", b"ok"]), history, governor=governor)
    async with app.run_test(size=(40, 20)) as pilot:
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "SettingsScreen")
        field = app.screen.query_one("#power-budget")
        field.value = "lots"
        await pilot.press("escape")
        error = app.screen.query_one("#budget-error")
        assert app.screen.__class__.__name__ == "SettingsScreen"
        assert error.display is True
        assert "not a number of watts" in str(error.render())

        field.value = "2.5"
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.chat_screen)
    assert governor.settings.power_budget_w == 2.5
    assert config.load_settings().power_budget_w == 2.5


async def test_log_screen_shows_lines(history):
    app = make_app(ScriptedEngine([b"</think>", b"ok"]), history)
    async with app.run_test(size=(40, 20)) as pilot:
        await wait_until(pilot, lambda: app.engine_ready.is_set())
        await pilot.press("ctrl+l")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "LogScreen")
        log_view = app.screen.query_one("#log")
        await wait_until(pilot, lambda: any("loading deepseek-r1-1.5b:Q4_K_M" in str(line.text) for line in log_view.lines))
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.chat_screen)


async def test_wake_lock_held_while_answering(history, monkeypatch, tmp_path):
    sim_bin = Path(__file__).parent / "termux_sim" / "bin"
    calls = tmp_path / "termux-calls.log"
    monkeypatch.setenv("PATH", f"{sim_bin}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SIM_LOG", str(calls))
    gate = threading.Event()
    engine = ScriptedEngine([b"</think>", b"Hello", b" there."], gates={2: gate})
    app = make_app(engine, history)
    async with app.run_test(size=(40, 20)) as pilot:
        await send_prompt(pilot, app, "Hi", finish=False)
        await wait_for_thread_event(pilot, engine.reached[2])
        assert app.wake_lock.held is True
        await wait_until(pilot, lambda: calls.exists() and "termux-wake-lock" in calls.read_text())
        gate.set()
        await wait_until(pilot, lambda: not app.chat_screen.generating)
        assert app.wake_lock.held is False
        await wait_until(pilot, lambda: "termux-wake-unlock" in calls.read_text())
    assert calls.read_text().split() == ["termux-wake-lock", "termux-wake-unlock"]


async def test_wake_lock_skipped_without_termux(history, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    app = make_app(ScriptedEngine([b"</think>", b"Hello"]), history)
    async with app.run_test(size=(40, 20)) as pilot:
        await send_prompt(pilot, app, "Hi")
        assert app.wake_lock.held is False
        assert answers(app)[0].answer_view.source == "Hello"


class ChangingSensors:
    """A sensor reader whose battery level the test changes between answers."""

    def __init__(self, battery_percent: float) -> None:
        self.battery_percent = battery_percent

    def __call__(self) -> SensorReading:
        return SensorReading(
            battery_percent=self.battery_percent,
            charging=False,
            battery_temp_c=30.0,
            cpu_temp_c=40.0,
            source="simulated",
        )


def governor_with(sensors: ChangingSensors) -> Governor:
    topology = Topology((CoreClass("performance", 2_000_000, (0, 1)),), "cpufreq")
    return Governor(Settings(), reader=sensors, topology=topology, clock=lambda: 100.0)


def record_notifications(app) -> list[str]:
    messages: list[str] = []
    original = app.notify

    def notify(message, **options):
        messages.append(str(message))
        return original(message, **options)

    app.notify = notify
    return messages


async def test_low_battery_swaps_to_low_tier(history):
    low_file = config.models_dir() / "deepseek-r1-1.5b" / "DeepSeek-R1-Distill-Qwen-1.5B-Q2_K.gguf"
    low_file.parent.mkdir(parents=True)
    low_file.write_bytes(b"GGUF stand-in; the scripted engine never reads it")
    sensors = ChangingSensors(battery_percent=80)
    engine = ScriptedEngine([b"</think>", b"Fine."])
    loaded: list[str] = []

    def factory(choice, *, n_ctx, n_threads, progress):
        loaded.append(choice.label)
        return engine

    app = make_app(engine, history, governor=governor_with(sensors))
    app.session.engine_factory = factory
    notifications = record_notifications(app)
    async with app.run_test(size=(40, 20)) as pilot:
        await send_prompt(pilot, app, "Hello")
        assert loaded == ["deepseek-r1-1.5b:Q4_K_M"]

        sensors.battery_percent = 12
        await send_prompt(pilot, app, "Still there?")
        assert loaded == ["deepseek-r1-1.5b:Q4_K_M", "deepseek-r1-1.5b:Q2_K"]
        assert app.session.tier == "low"
        await wait_until(pilot, lambda: app.chat_screen.status_bar.info.tier == "low")
        assert "deepseek-r1-1.5b:Q2_K" in app.chat_screen.status_bar.info.model
        assert any("low-power model" in message for message in notifications)
        assert any(message.startswith("Switching to deepseek-r1-1.5b:Q2_K") for message in notifications)
        assert answers(app)[-1].answer_view.source == "Fine."


async def test_missing_low_tier_warns_once(history):
    sensors = ChangingSensors(battery_percent=10)
    app = make_app(ScriptedEngine([b"</think>", b"Fine."]), history, governor=governor_with(sensors))
    notifications = record_notifications(app)
    async with app.run_test(size=(40, 20)) as pilot:
        await send_prompt(pilot, app, "Hello")
        await send_prompt(pilot, app, "Again")
        assert app.session.tier == "normal"
    warnings = [message for message in notifications if "not on this phone" in message]
    assert len(warnings) == 1
    assert "deepseek-r1-1.5b:Q2_K" in warnings[0]


async def test_mouse_opens_reasoning_and_history(history):
    engine = ScriptedEngine([b"Hidden steps.", b"</think>", b"Shown answer."])
    app = make_app(engine, history)
    async with app.run_test(size=(40, 20)) as pilot:
        await send_prompt(pilot, app, "Hi")
        block = answers(app)[0].thinking
        assert block.collapsed is True
        await pilot.click("CollapsibleTitle")
        await wait_until(pilot, lambda: block.collapsed is False)

        history_key = next(key for key in app.chat_screen.query("FooterKey") if key.action == "history")
        await pilot.click(history_key)
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "HistoryScreen")
        # The newest conversation is the first option, at the top of the list.
        await pilot.click("#conversations", offset=(2, 0))
        await wait_until(pilot, lambda: app.screen is app.chat_screen)
        assert app.session.conversation_id == history.last_conversation().id


async def test_settings_switches_model(history):
    loaded: list[str] = []
    engine = ScriptedEngine([b"</think>", b"ok"])

    def factory(choice, *, n_ctx, n_threads, progress):
        loaded.append(choice.label)
        progress(1.0)
        return engine

    app = make_app(engine, history)
    app.session.engine_factory = factory
    async with app.run_test(size=(40, 20)) as pilot:
        await wait_until(pilot, lambda: loaded == ["deepseek-r1-1.5b:Q4_K_M"] and app.engine_ready.is_set())
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "SettingsScreen")
        model_select = app.screen.query_one("#model")
        specs = [value for _label, value in model_select._options]
        assert "smollm2-135m:Q4_1" in specs
        model_select.value = "smollm2-135m:Q4_1"
        await wait_until(pilot, lambda: loaded[-1] == "smollm2-135m:Q4_1" and app.engine_ready.is_set())
        assert app.session.model_label == "smollm2-135m:Q4_1"
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.chat_screen.status_bar.info.model == "smollm2-135m:Q4_1")
    assert config.load_settings().default_model == "smollm2-135m:Q4_1"
