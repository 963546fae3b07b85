"""Widgets of the conversation: the user's prompts, the answers and notices."""

from __future__ import annotations

import asyncio

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Collapsible, Static

from r1chat.locale import _
from r1chat.tui.markdown_view import MarkdownView


class UserMessage(Static):
    """A prompt as the user typed it, shown as plain text (no markup, no Markdown)."""

    def __init__(self, text: str) -> None:
        super().__init__(Content(text), classes="user-message")
        self.text = text


class Notice(Static):
    """A line in the conversation that explains what r1chat did, such as leaving turns out.

    The text is a function so that it is translated again after a language switch.
    """

    def __init__(self, describe, classes: str = "notice") -> None:
        super().__init__(describe(), classes=classes)
        self.describe = describe

    def update_language(self) -> None:
        self.update(self.describe())


def trimmed_notice(dropped: int, budget_tokens: int):
    """Return the text function of the notice shown when older messages are left out."""

    def describe() -> str:
        return _(
            "{count} earlier messages are not sent to the model, so that the conversation fits "
            "in the context window ({tokens} tokens for the prompt)."
        ).format(count=dropped, tokens=budget_tokens)

    return describe


def finish_note(finish_reason: str | None, has_answer: bool) -> str:
    """Return the note under an answer that did not end by itself, or "" when it did."""
    if finish_reason == "interrupted":
        return _("Stopped. The answer above is incomplete.")
    if finish_reason == "length" and not has_answer:
        return _("The token limit ran out while the model was still thinking, so there is no answer.")
    if finish_reason == "length":
        return _("Cut off at the token limit.")
    return ""


class AssistantMessage(Vertical):
    """An answer: an optional "thinking" block, the answer as Markdown, and a note.

    While streaming, text arrives through `add_text` in batches; each batch is
    appended to the Markdown views, which parse and render only their last
    block again, so a batch costs the same early and late in a long answer.
    `finish` then renders each view once in full.

    Args:
        reasoning: the model's reasoning, or "" (for an answer from the history).
        answer: the answer text (for an answer from the history).
        think: None folds the reasoning once the answer begins, True keeps it
            open, False hides it.
        streaming: the answer is about to be generated.
        finish_reason: how a saved answer ended ("stop", "length", "interrupted").
    """

    def __init__(
        self,
        reasoning: str = "",
        answer: str = "",
        *,
        think: bool | None = None,
        streaming: bool = False,
        finish_reason: str | None = None,
    ) -> None:
        super().__init__(classes="assistant-message")
        self.think = think
        self.streaming = streaming
        self.reasoning = reasoning
        self.answer = answer
        self.finish_reason = finish_reason
        self.error: str | None = None
        self.stopping = False
        self._lock = asyncio.Lock()

    def compose(self) -> ComposeResult:
        if self.reasoning and self.think is not False:
            yield self._reasoning_block(self.reasoning, collapsed=self.think is not True)
        yield MarkdownView(self.answer, classes="answer")
        yield Static(self._note(), classes="note")

    def _reasoning_block(self, text: str, collapsed: bool) -> Collapsible:
        return Collapsible(
            MarkdownView(text, classes="reasoning"),
            title=self._reasoning_title(),
            collapsed=collapsed,
            classes="thinking",
        )

    def _reasoning_title(self) -> str:
        if self.streaming and not self.answer:
            return _("Thinking…")
        return _("Thinking")

    def _note(self) -> str:
        if self.error:
            return self.error
        if self.stopping and self.streaming:
            return _("Stopping…")
        if self.streaming and not self.reasoning and not self.answer:
            return "…"
        if self.streaming:
            return ""
        return finish_note(self.finish_reason, bool(self.answer.strip()))

    @property
    def answer_view(self) -> MarkdownView:
        return self.query_one("MarkdownView.answer", MarkdownView)

    @property
    def reasoning_view(self) -> MarkdownView | None:
        found = self.query("MarkdownView.reasoning")
        return found.first(MarkdownView) if found else None

    @property
    def thinking(self) -> Collapsible | None:
        found = self.query("Collapsible.thinking")
        return found.first(Collapsible) if found else None

    def _refresh_note(self) -> None:
        found = self.query(".note")
        if not found:
            # Not composed yet, or already removed while the app closes.
            return
        note = found.first(Static)
        text = self._note()
        note.update(text)
        note.display = bool(text)

    def on_mount(self) -> None:
        self._refresh_note()

    async def add_text(self, reasoning: str, answer: str) -> None:
        """Append a batch of streamed reasoning and answer text."""
        async with self._lock:
            if reasoning:
                await self._add_reasoning(reasoning)
            if answer:
                await self._add_answer(answer)
            self._refresh_note()

    async def _add_reasoning(self, text: str) -> None:
        if self.think is False:
            self.reasoning += text
            return
        block = self.thinking
        if block is None:
            # The block starts empty; the stream below writes the text into it.
            block = self._reasoning_block("", collapsed=False)
            await self.mount(block, before=self.answer_view)
        self.reasoning += text
        await block.query_one(MarkdownView).append(text)

    async def _add_answer(self, text: str) -> None:
        starting = not self.answer
        self.answer += text
        if starting:
            await self._fold_reasoning()
        await self.answer_view.append(text)

    async def _fold_reasoning(self) -> None:
        block = self.thinking
        if block is None:
            return
        block.title = self._reasoning_title()
        if self.think is None:
            block.collapsed = True
        await block.query_one(MarkdownView).update(self.reasoning)

    def set_stopping(self) -> None:
        self.stopping = True
        self._refresh_note()

    async def finish(
        self,
        answer: str,
        reasoning: str,
        finish_reason: str,
        error: str | None = None,
    ) -> None:
        """End the stream and render the whole answer once.

        `answer` and `reasoning` are the turn's full texts, which replace the
        streamed ones in case the last batch never arrived.
        """
        async with self._lock:
            folded_before = bool(self.answer)
            self.streaming = False
            self.answer = answer
            self.finish_reason = finish_reason
            self.error = error
            if reasoning and not self.reasoning:
                self.reasoning = reasoning
            block = self.thinking
            if block is not None:
                block.title = self._reasoning_title()
                if not folded_before:
                    await block.query_one(MarkdownView).update(self.reasoning)
                    if self.think is None and answer:
                        block.collapsed = True
            await self.answer_view.update(answer)
            self._refresh_note()

    def update_language(self) -> None:
        block = self.thinking
        if block is not None:
            block.title = self._reasoning_title()
        self._refresh_note()
