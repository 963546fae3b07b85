"""The chat screen: the conversation, the prompt box, the status bar and the footer."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, ProgressBar, Static

from r1chat.errors import R1ChatError
from r1chat.locale import _
from r1chat.turn import TurnResult
from r1chat.tui.messages import AssistantMessage, Notice, UserMessage, trimmed_notice
from r1chat.tui.prompt_input import PromptInput
from r1chat.tui.status_bar import StatusBar
from r1chat.tui.translated import TranslatedBindings

if TYPE_CHECKING:
    from r1chat.tui.chat_app import ChatApp

log = logging.getLogger(__name__)

# Streamed text reaches the screen in batches this often. Each batch costs a
# layout and a redraw on the thread that decoding also needs (for the GIL
# between llama.cpp calls), and 8 a second still reads as smooth streaming.
FLUSH_INTERVAL_S = 1 / 8
LOAD_POLL_INTERVAL_S = 0.1


def prompt_placeholder() -> str:
    return _("Message (Enter sends, Ctrl+J new line)")


class TextBuffer:
    """Text pieces from the generation thread, waiting for the next screen update.

    Adding a piece is one list append under a short lock, so the generation
    thread does not wait for the screen to draw.
    """

    def __init__(self) -> None:
        self._pieces: list[str] = []
        self._lock = threading.Lock()

    def add(self, text: str) -> None:
        with self._lock:
            self._pieces.append(text)

    def take(self) -> str:
        with self._lock:
            pieces, self._pieces = self._pieces, []
        return "".join(pieces)

    def __len__(self) -> int:
        """Return the number of pieces waiting."""
        with self._lock:
            return len(self._pieces)


def unexpected_error(error: Exception) -> R1ChatError:
    """Wrap a bug's exception in a message that points to the log screen."""
    return R1ChatError(
        _("Unexpected error: {kind}: {error}").format(kind=type(error).__name__, error=error),
        _("The log screen (Ctrl+L) shows the details."),
    )


class ChatScreen(TranslatedBindings, Screen):
    """The conversation with the model; the app's first screen."""

    BINDINGS = [
        Binding("escape", "stop", "Stop"),
        Binding("ctrl+n", "new_chat", "New"),
        Binding("ctrl+o", "history", "History"),
        Binding("ctrl+s", "settings", "Settings"),
        Binding("ctrl+l", "log", "Log", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.generating = False
        self._cancel = threading.Event()
        self.reasoning_buffer = TextBuffer()
        self.answer_buffer = TextBuffer()
        self._view: AssistantMessage | None = None
        self._flush_timer: Timer | None = None
        self._load_timer: Timer | None = None
        self._flush_lock = asyncio.Lock()

    @property
    def chat_app(self) -> ChatApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield VerticalScroll(id="conversation", can_focus=True)
        with Vertical(id="loading"):
            yield Static(id="loading-label")
            yield ProgressBar(total=100, show_eta=False, id="loading-bar")
        yield PromptInput(placeholder=prompt_placeholder(), id="prompt")
        yield StatusBar(id="status")
        yield Footer(compact=True)

    async def on_mount(self) -> None:
        self.conversation.anchor()
        self.query_one("#loading").display = False
        self.prompt.focus()
        await self.chat_app.start_session()

    @property
    def conversation(self) -> VerticalScroll:
        return self.query_one("#conversation", VerticalScroll)

    @property
    def prompt(self) -> PromptInput:
        return self.query_one("#prompt", PromptInput)

    @property
    def status_bar(self) -> StatusBar:
        return self.query_one("#status", StatusBar)

    def update_language(self) -> None:
        super().update_language()
        self.prompt.placeholder = prompt_placeholder()
        if self.chat_app.loading:
            self.show_loading()

    # Model loading ----------------------------------------------------------

    def show_loading(self) -> None:
        """Show the loading bar under the conversation; the conversation stays visible."""
        panel = self.query_one("#loading")
        panel.display = True
        label = _("Loading {model}…").format(model=self.chat_app.loading_label)
        self.query_one("#loading-label", Static).update(label)
        self._poll_loading()
        if self._load_timer is None:
            self._load_timer = self.set_interval(LOAD_POLL_INTERVAL_S, self._poll_loading)

    def _poll_loading(self) -> None:
        self.query_one("#loading-bar", ProgressBar).update(progress=round(self.chat_app.load_fraction * 100))

    def hide_loading(self) -> None:
        if self._load_timer is not None:
            self._load_timer.stop()
            self._load_timer = None
        self.query_one("#loading").display = False

    # Sending a prompt --------------------------------------------------------

    async def on_prompt_input_submitted(self, event: PromptInput.Submitted) -> None:
        text = event.text.strip()
        if not text:
            return
        if self.generating:
            self.notify(_("An answer is being written. Press Esc to stop it first."), severity="warning")
            return
        self.prompt.clear()
        await self.send(text)

    async def send(self, text: str) -> None:
        """Show `text` and its answer-to-be, and start generating in a worker thread."""
        view = AssistantMessage(think=self.chat_app.session.options.think, streaming=True)
        await self.conversation.mount_all([UserMessage(text), view])
        self.conversation.scroll_end(animate=False)
        self._view = view
        self._cancel = threading.Event()
        self.reasoning_buffer = TextBuffer()
        self.answer_buffer = TextBuffer()
        self.generating = True
        self.refresh_bindings()
        self._flush_timer = self.set_interval(FLUSH_INTERVAL_S, self._flush)
        self._run_turn(text, view, self._cancel)

    async def _flush(self) -> None:
        async with self._flush_lock:
            view = self._view
            if view is None:
                return
            reasoning = self.reasoning_buffer.take()
            answer = self.answer_buffer.take()
            if reasoning or answer:
                await view.add_text(reasoning, answer)

    @work(thread=True, exclusive=True, group="turn", exit_on_error=False)
    def _run_turn(self, text: str, view: AssistantMessage, cancel: threading.Event) -> None:
        app = self.chat_app
        session = app.session
        try:
            session.add_prompt(text)
        except R1ChatError as error:
            app.call_ui(self._warn_unsaved, error)
        try:
            if not app.wait_for_engine(cancel):
                app.call_ui(self._finish_turn, view, None, app.load_error)
                return
            app.apply_power_plan(cancel, generating=True)
            with session.engine_lock:
                fitted = session.fit_prompt()
                if fitted.dropped:
                    app.call_ui(self._show_trimmed, view, fitted.dropped, fitted.budget_tokens)
                app.wake_lock.acquire()
                try:
                    result = session.generate(fitted.messages, cancel, self.reasoning_buffer.add, self.answer_buffer.add)
                finally:
                    app.wake_lock.release()
        except R1ChatError as error:
            log.warning("answer failed: %s", error)
            app.call_ui(self._finish_turn, view, None, error)
            return
        except Exception as error:  # noqa: BLE001 - a bug must not leave the screen stuck mid-answer
            log.exception("answer failed unexpectedly")
            app.call_ui(self._finish_turn, view, None, unexpected_error(error))
            return
        try:
            session.add_answer(result)
        except R1ChatError as error:
            app.call_ui(self._warn_unsaved, error)
        app.call_ui(self._finish_turn, view, result, None)

    def _warn_unsaved(self, error: R1ChatError) -> None:
        self.notify(f"{error} {error.hint or ''}".strip(), title=_("Not saved"), severity="error")

    async def _show_trimmed(self, view: AssistantMessage, dropped: int, budget_tokens: int) -> None:
        await self.conversation.mount(Notice(trimmed_notice(dropped, budget_tokens)), before=view)

    async def _finish_turn(self, view: AssistantMessage, result: TurnResult | None, error: R1ChatError | None) -> None:
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        await self._flush()
        async with self._flush_lock:
            self._view = None
        if result is not None:
            await view.finish(result.answer, result.reasoning, result.finish_reason)
            self.chat_app.record_stats(result.stats)
        else:
            message = str(error) if error is not None else _("The answer was stopped before the model was ready.")
            finish_reason = "interrupted" if error is None else "error"
            await view.finish(view.answer, view.reasoning, finish_reason, error=message)
            if error is not None and error.hint:
                self.notify(error.hint, title=str(error), severity="error")
        self.generating = False
        self.refresh_bindings()

    # Keys --------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.generating
        if action == "new_chat":
            # Shown but disabled while an answer is being written.
            return None if self.generating else True
        return True

    def action_stop(self) -> None:
        """Stop the answer; what was written stays and is saved as incomplete."""
        if not self.generating or self._cancel.is_set():
            return
        self._cancel.set()
        if self._view is not None:
            self._view.set_stopping()

    async def action_new_chat(self) -> None:
        if self.generating:
            return
        self.chat_app.session.new_conversation()
        await self.conversation.remove_children()
        self.prompt.focus()

    def action_history(self) -> None:
        from r1chat.tui.history_screen import HistoryScreen

        self.app.push_screen(
            HistoryScreen(self.chat_app.session.history, self.chat_app.session.conversation_id),
            self._history_closed,
        )

    async def _history_closed(self, result) -> None:
        session = self.chat_app.session
        if result is None:
            return
        if session.conversation_id in result.deleted and not self.generating:
            await self.action_new_chat()
        if result.open_id is not None:
            if self.generating:
                self.notify(_("An answer is being written. Press Esc to stop it first."), severity="warning")
                return
            await self.open_conversation(result.open_id)

    def action_settings(self) -> None:
        from r1chat.tui.settings_screen import SettingsScreen

        self.app.push_screen(SettingsScreen())

    def action_log(self) -> None:
        from r1chat.tui.log_screen import LogScreen

        self.app.push_screen(LogScreen(self.chat_app.log_buffer))

    # Reopening a conversation --------------------------------------------------

    async def open_conversation(self, conversation_id: int) -> None:
        """Show a saved conversation; the next prompt continues it.

        Raises:
            ConversationNotFound, HistoryError: from the history.
        """
        stored = self.chat_app.session.open_conversation(conversation_id)
        think = self.chat_app.session.options.think
        widgets = []
        for message in stored:
            if message.role == "user":
                widgets.append(UserMessage(message.content))
            elif message.role == "assistant":
                finish_reason = "stop" if message.complete else message.finish_reason or "interrupted"
                widgets.append(
                    AssistantMessage(
                        message.reasoning, message.content, think=think, finish_reason=finish_reason
                    )
                )
        await self.conversation.remove_children()
        await self.conversation.mount_all(widgets)
        self.conversation.scroll_end(animate=False)
        self.prompt.focus()
