"""The prompt box: Enter sends, Ctrl+J starts a new line, pasted lines stay lines."""

from __future__ import annotations

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea


class PromptInput(TextArea):
    """A TextArea whose Enter key sends the prompt instead of starting a line.

    A TextArea rather than an Input, because an Input keeps only the first
    line of a multi-line paste. Bracketed paste (which Termux and desktop
    terminals send) arrives as one Paste event, so its line breaks stay in
    the text and do not send it.
    """

    BINDINGS = [Binding("ctrl+j", "new_line", "New line", show=False)]

    class Submitted(Message):
        """Sent when Enter is pressed; `text` is the whole prompt, unstripped."""

        def __init__(self, prompt_input: PromptInput, text: str) -> None:
            super().__init__()
            self.prompt_input = prompt_input
            self.text = text

    def __init__(self, *, placeholder: str = "", id: str | None = None) -> None:
        super().__init__(
            "",
            soft_wrap=True,
            tab_behavior="focus",
            show_line_numbers=False,
            compact=True,
            placeholder=placeholder,
            id=id,
        )

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.post_message(self.Submitted(self, self.text))
            return
        await super()._on_key(event)

    def action_new_line(self) -> None:
        self.insert("\n")
