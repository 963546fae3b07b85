"""One chat turn: render the messages, stream from the engine, split off the reasoning."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from r1chat.conversation import Message
from r1chat.engine import Engine, Sampling, StreamStats
from r1chat.reasoning import ANSWER, ReasoningSplitter


@dataclass
class TurnResult:
    answer: str = ""
    reasoning: str = ""
    # "stop", "length" or "interrupted".
    finish_reason: str = "stop"
    # True when a length stop came before `</think>`, so there is no answer.
    ended_in_reasoning: bool = False
    stats: StreamStats = field(default_factory=StreamStats)


def run_turn(
    engine: Engine,
    messages: list[Message],
    *,
    r1_format: bool,
    sampling: Sampling,
    cancel: threading.Event | None = None,
    on_reasoning: Callable[[str], None] | None = None,
    on_answer: Callable[[str], None] | None = None,
) -> TurnResult:
    """Generate the assistant's reply to `messages`, streaming pieces to the callbacks.

    Ctrl-C (KeyboardInterrupt) ends the turn like `cancel`: the result keeps
    what was produced and says "interrupted".

    Raises:
        PromptTooLong: the messages do not fit in the context window.
        EngineError: llama.cpp failed.
    """
    tokens = engine.prompt_tokens(messages, r1_format)
    splitter = ReasoningSplitter(in_reasoning=r1_format)
    result = TurnResult()

    def deliver(pieces: list[tuple[str, str]]) -> None:
        for kind, text in pieces:
            callback = on_answer if kind == ANSWER else on_reasoning
            if callback is not None:
                callback(text)

    stream = engine.generate(tokens, sampling, cancel)
    try:
        for piece in stream:
            deliver(splitter.feed(piece))
        result.finish_reason = engine.last_stats.finish_reason
    except KeyboardInterrupt:
        stream.close()
        result.finish_reason = "interrupted"
    finally:
        deliver(splitter.finish())

    result.answer = splitter.answer
    result.reasoning = splitter.reasoning
    result.stats = engine.last_stats
    result.stats.finish_reason = result.finish_reason
    result.ended_in_reasoning = r1_format and splitter.ended_in_reasoning
    return result
