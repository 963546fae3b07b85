"""Split a model's output stream into reasoning (`<think>…</think>`) and answer.

R1 prompts end with `<think>\\n`, so an R1 model's output starts inside the
reasoning and only `</think>` appears. Other models write no tags at all (all
answer) or open `<think>` themselves at the very start. Input arrives as raw
bytes from the tokenizer, so a tag, a Chinese character or an emoji may be
split across chunks at any byte; nothing is emitted until it is whole.
"""

from __future__ import annotations

import codecs

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"
REASONING = "reasoning"
ANSWER = "answer"


def _held_prefix_len(text: str, tag: str) -> int:
    """Return the length of the longest suffix of `text` that is a proper prefix of `tag`."""
    for size in range(min(len(text), len(tag) - 1), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class ReasoningSplitter:
    """Incremental splitter; `feed` and `finish` return (kind, text) pieces in order.

    Args:
        in_reasoning: the prompt already opened `<think>` (the R1 chat format).
    """

    def __init__(self, in_reasoning: bool) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.state = REASONING if in_reasoning else ANSWER
        # Until the first non-blank answer text, an opening tag may still come.
        self._may_open = not in_reasoning
        self._pending = ""
        self._started = {REASONING: False, ANSWER: False}
        self._parts = {REASONING: [], ANSWER: []}
        self.closed_reasoning = False

    @property
    def reasoning(self) -> str:
        return "".join(self._parts[REASONING]).strip()

    @property
    def answer(self) -> str:
        return "".join(self._parts[ANSWER]).rstrip()

    @property
    def ended_in_reasoning(self) -> bool:
        """True when the output stopped before `</think>` closed the reasoning."""
        return self.state == REASONING

    def feed(self, data: bytes | str) -> list[tuple[str, str]]:
        text = self._decoder.decode(data) if isinstance(data, bytes) else data
        self._pending += text
        return self._drain(final=False)

    def finish(self) -> list[tuple[str, str]]:
        # A stream cut by the token limit or a stop can end inside a multi-byte
        # character; drop that fragment rather than show a replacement character.
        self._decoder.reset()
        return self._drain(final=True)

    def _drain(self, final: bool) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        while self._pending:
            if self.state == ANSWER and self._may_open:
                if not self._check_opening_tag(final):
                    break
                continue
            if self.state == REASONING:
                if not self._started[REASONING] and self._pending.lstrip().startswith(OPEN_TAG):
                    # The model repeated the tag that the prompt already opened.
                    self._pending = self._pending.lstrip()[len(OPEN_TAG):]
                    continue
                index = self._pending.find(CLOSE_TAG)
                if index >= 0:
                    self._emit(out, REASONING, self._pending[:index])
                    self._pending = self._pending[index + len(CLOSE_TAG):]
                    self.state = ANSWER
                    self.closed_reasoning = True
                    continue
                held = 0 if final else max(
                    _held_prefix_len(self._pending, CLOSE_TAG),
                    0 if self._started[REASONING] else _held_prefix_len(self._pending.lstrip(), OPEN_TAG),
                )
                self._emit(out, REASONING, self._pending[: len(self._pending) - held])
                self._pending = self._pending[len(self._pending) - held:]
                break
            self._emit(out, ANSWER, self._pending)
            self._pending = ""
        return out

    def _check_opening_tag(self, final: bool) -> bool:
        """Look for `<think>` before any answer text; return False to wait for more input."""
        stripped = self._pending.lstrip()
        if stripped.startswith(OPEN_TAG):
            self._pending = stripped[len(OPEN_TAG):]
            self.state = REASONING
            self._may_open = False
            return True
        if not final and OPEN_TAG.startswith(stripped):
            return False
        self._may_open = False
        return True

    def _emit(self, out: list[tuple[str, str]], kind: str, text: str) -> None:
        if not self._started[kind]:
            # Leading blank lines after a tag carry no content.
            text = text.lstrip()
            if not text:
                return
            self._started[kind] = True
        self._parts[kind].append(text)
        if out and out[-1][0] == kind:
            out[-1] = (kind, out[-1][1] + text)
        else:
            out.append((kind, text))
