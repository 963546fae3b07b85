"""Messages, the R1 chat format, and fitting a conversation into the context window."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from r1chat.errors import PromptTooLong

# DeepSeek-R1 special tokens. The bars are U+FF5C (full-width) and the
# spaces in the sentence tokens are U+2581.
R1_BOS = "<｜begin▁of▁sentence｜>"
R1_EOS = "<｜end▁of▁sentence｜>"
R1_USER = "<｜User｜>"
R1_ASSISTANT = "<｜Assistant｜>"
R1_GENERATION_PROMPT = R1_ASSISTANT + "<think>\n"

# DeepSeek's usage advice for the R1 distills: temperature 0.5-0.7 (0.6
# recommended), top_p 0.95, and no system prompt.
R1_TEMPERATURE = 0.6
R1_TOP_P = 0.95
# The smallest room left for an answer when a long prompt crowds the window.
MIN_ANSWER_TOKENS = 64


@dataclass(frozen=True)
class Message:
    role: str  # "system", "user" or "assistant"
    content: str
    # The assistant's reasoning; stored for the screen, never sent to the model.
    reasoning: str = ""


@dataclass(frozen=True)
class Segment:
    """A piece of a rendered prompt; `special` pieces may contain control tokens."""

    text: str
    special: bool


def strip_reasoning(text: str) -> str:
    """Drop everything up to and including the last `</think>` of an assistant message."""
    head, tag, tail = text.rpartition("</think>")
    return tail.lstrip() if tag else text


def render_r1(messages: list[Message], add_generation_prompt: bool = True) -> list[Segment]:
    """Render messages in the DeepSeek-R1 chat format.

    User and assistant text stay in non-special segments, so text a user types
    that looks like a control token is tokenized as plain text.
    """
    segments = [Segment(R1_BOS, True)]
    for message in messages:
        if message.role == "system":
            segments.append(Segment(message.content, False))
        elif message.role == "user":
            segments.append(Segment(R1_USER, True))
            segments.append(Segment(message.content, False))
        elif message.role == "assistant":
            segments.append(Segment(R1_ASSISTANT, True))
            segments.append(Segment(strip_reasoning(message.content), False))
            segments.append(Segment(R1_EOS, True))
        else:
            raise ValueError(f"unknown message role {message.role!r}")
    if add_generation_prompt:
        segments.append(Segment(R1_GENERATION_PROMPT, True))
    return segments


def render_text(segments: list[Segment]) -> str:
    return "".join(segment.text for segment in segments)


def fit_messages(
    messages: list[Message],
    count_tokens: Callable[[list[Message]], int],
    budget: int,
) -> tuple[list[Message], int]:
    """Leave out the oldest turns until the prompt fits in `budget` tokens.

    The system message (if first) and the last message (the current prompt)
    are always kept. Returns the kept messages and how many were left out.

    Raises:
        PromptTooLong: the current prompt alone does not fit.
    """
    system = [m for m in messages[:1] if m.role == "system"]
    rest = messages[len(system):]
    dropped = 0
    while True:
        kept = system + rest
        tokens = count_tokens(kept)
        if tokens <= budget:
            return kept, dropped
        if len(rest) <= 1:
            raise PromptTooLong(tokens, budget)
        # Drop a whole turn: a user message and the assistant reply after it.
        cut = 2 if len(rest) > 2 and rest[0].role == "user" and rest[1].role == "assistant" else 1
        rest = rest[cut:]
        dropped += cut


def fit_with_answer_room(
    messages: list[Message],
    count_tokens: Callable[[list[Message]], int],
    n_ctx: int,
    max_tokens: int,
) -> tuple[list[Message], int, int]:
    """Fit `messages` into an `n_ctx`-token window while keeping room for the answer.

    Up to half the window is kept for the answer, because R1 reasoning runs
    long. A prompt too long for that still runs with a smaller reserve.
    Returns the kept messages, how many were left out, and the prompt budget.

    Raises:
        PromptTooLong: the prompt alone leaves less than the smallest reserve.
    """
    reserve = min(max_tokens, n_ctx // 2)
    try:
        kept, dropped = fit_messages(messages, count_tokens, n_ctx - reserve)
        return kept, dropped, n_ctx - reserve
    except PromptTooLong:
        reserve = min(reserve, max(MIN_ANSWER_TOKENS, n_ctx // 8))
    try:
        kept, dropped = fit_messages(messages, count_tokens, n_ctx - reserve)
    except PromptTooLong as error:
        raise PromptTooLong(error.prompt_tokens, n_ctx, reserve) from None
    return kept, dropped, n_ctx - reserve
