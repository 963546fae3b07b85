"""The log screen: the last few hundred lines r1chat and llama.cpp logged."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, RichLog, Static

from r1chat.locale import _
from r1chat.tui.log_buffer import DEFAULT_CAPACITY, LogBuffer
from r1chat.tui.translated import TranslatedBindings

POLL_INTERVAL_S = 0.5


class LogScreen(TranslatedBindings, Screen):
    """Shows the log buffer and follows new lines while it is open."""

    BINDINGS = [Binding("escape", "back", "Back")]

    def __init__(self, buffer: LogBuffer) -> None:
        super().__init__()
        self.buffer = buffer
        self._last_sequence = 0

    def compose(self) -> ComposeResult:
        yield Static(_("Log"), id="log-title", classes="screen-title")
        # RichLog wraps long lines, which a 40-column phone screen needs.
        yield RichLog(max_lines=DEFAULT_CAPACITY, wrap=True, markup=False, highlight=False, id="log")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._poll()
        self.set_interval(POLL_INTERVAL_S, self._poll)
        self.query_one(RichLog).focus()

    def _poll(self) -> None:
        lines, self._last_sequence = self.buffer.lines_after(self._last_sequence)
        log_view = self.query_one(RichLog)
        for line in lines:
            log_view.write(line)

    def update_language(self) -> None:
        super().update_language()
        self.query_one("#log-title", Static).update(_("Log"))

    def action_back(self) -> None:
        self.dismiss()
