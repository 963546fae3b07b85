"""The chat screen's state apart from the screen: the model, the conversation, the history.

Every method that touches the engine or the database may block, so the
screen calls them from worker threads, never from Textual's event loop.
"""

from __future__ import annotations

import argparse
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from r1chat import config, store
from r1chat.catalog import Variant
from r1chat.conversation import Message, fit_with_answer_room
from r1chat.engine import Engine, Sampling, StreamStats
from r1chat.history import History, MessageStats
from r1chat.session import sampling_from_args
from r1chat.turn import TurnResult, run_turn

log = logging.getLogger(__name__)


class ChatEngine(Protocol):
    """The part of `r1chat.engine.Engine` that the chat screen calls; tests pass a scripted fake."""

    n_ctx: int
    n_threads: int
    last_stats: StreamStats

    def prompt_tokens(self, messages: list[Message], r1_format: bool) -> list[int]: ...

    def generate(self, tokens: list[int], sampling: Sampling, cancel: threading.Event | None = None): ...

    def set_threads(self, n_threads: int) -> None: ...

    def close(self) -> None: ...


class EngineFactory(Protocol):
    def __call__(
        self,
        choice: store.ModelChoice,
        *,
        n_ctx: int,
        n_threads: int | None,
        progress: Callable[[float], None],
    ) -> ChatEngine: ...


def load_engine(
    choice: store.ModelChoice,
    *,
    n_ctx: int,
    n_threads: int | None,
    progress: Callable[[float], None],
) -> Engine:
    """Load `choice` with llama.cpp; the default engine factory.

    Raises:
        ModelFileError: the file is not a loadable GGUF model.
        EngineError: llama.cpp could not create the context.
    """
    return Engine(choice.path, n_ctx=n_ctx, n_threads=n_threads, progress=progress)


@dataclass
class ChatOptions:
    """Settings of one chat session, from the command line and `settings.toml`."""

    n_ctx: int
    # Fixed by --threads; None lets the power governor choose.
    threads: int | None
    sampling: Sampling
    # None: reasoning streams, then folds. True: it stays open. False: it is hidden.
    think: bool | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace, settings: config.Settings) -> ChatOptions:
        sampling = sampling_from_args(args, settings)
        return cls(
            n_ctx=args.ctx or settings.context_size,
            threads=args.threads,
            sampling=sampling,
            think=args.think,
        )


@dataclass(frozen=True)
class FittedPrompt:
    messages: list[Message]
    # Earlier messages left out so that the rest fits in the context window.
    dropped: int
    budget_tokens: int


class ChatSession:
    """One conversation with one loaded model, saved to the history as it goes.

    Args:
        options: context size, sampling and thread settings.
        choice: the model to load.
        history: where conversations are saved.
        engine_factory: loads a model; `load_engine` unless a test passes a fake.
        fixed_variant: the user named a variant (`ID:QUANT` or a .gguf path),
            so the governor's tier does not swap it.
    """

    def __init__(
        self,
        options: ChatOptions,
        choice: store.ModelChoice,
        history: History,
        engine_factory: EngineFactory = load_engine,
        fixed_variant: bool = False,
    ) -> None:
        self.options = options
        self.choice = choice
        self.history = history
        self.engine_factory = engine_factory
        self.fixed_variant = fixed_variant
        self.engine: ChatEngine | None = None
        self.conversation_id: int | None = None
        # The messages sent to the model: answers without their reasoning, in order.
        self.messages: list[Message] = []
        # Held while the engine is loaded, closed or generating, so that a
        # model switch waits for the answer in progress to stop.
        self.engine_lock = threading.RLock()

    @property
    def model_label(self) -> str:
        return self.choice.label

    @property
    def tier(self) -> str:
        return self.choice.variant.tier if self.choice.variant else "normal"

    # The model -------------------------------------------------------------

    def load(self, choice: store.ModelChoice | None = None, progress: Callable[[float], None] | None = None) -> None:
        """Load `choice` (default: the current one), closing the engine it replaces.

        Raises:
            ModelFileError, EngineError: the model cannot be loaded; the old
                engine is closed already and `engine` is None.
        """
        choice = choice or self.choice
        with self.engine_lock:
            if self.engine is not None:
                self.engine.close()
                self.engine = None
            self.choice = choice
            log.info("loading %s from %s", choice.label, choice.path)
            self.engine = self.engine_factory(
                choice,
                n_ctx=self.options.n_ctx,
                n_threads=self.options.threads,
                progress=progress or (lambda fraction: None),
            )

    def tier_variant(self, tier: str) -> Variant | None:
        """Return the variant the governor's `tier` calls for, or None to keep the current one.

        None when the user fixed the variant, the tier is the current one, or
        the model has no variant of that tier.
        """
        entry = self.choice.entry
        if self.fixed_variant or entry is None or tier == self.tier:
            return None
        return store.preferred_variant(entry, tier)

    def installed_choice(self, variant: Variant) -> store.ModelChoice | None:
        """Return `variant` as a model choice if its file is on the phone and not known to be damaged."""
        path = store.installed_path(variant)
        if path is None or store.verification_state(variant, path) == "mismatch":
            return None
        return store.ModelChoice(path, self.choice.entry, variant)

    def set_threads(self, threads: int) -> None:
        """Ask the engine for `threads` decode threads, unless --threads fixed them."""
        if self.options.threads is None and self.engine is not None:
            self.engine.set_threads(threads)

    def close(self, timeout_s: float = -1) -> bool:
        """Free the model once no answer is being generated; False when `timeout_s` ran out first."""
        if not self.engine_lock.acquire(timeout=timeout_s):
            log.warning("model not closed: an answer was still being generated after %g s", timeout_s)
            return False
        try:
            if self.engine is not None:
                self.engine.close()
                self.engine = None
        finally:
            self.engine_lock.release()
        return True

    # The conversation ------------------------------------------------------

    def new_conversation(self) -> None:
        """Start an empty conversation; it is saved with its first message."""
        self.conversation_id = None
        self.messages = []

    def open_conversation(self, conversation_id: int):
        """Make a saved conversation the current one and return its stored messages.

        Raises:
            ConversationNotFound: no conversation has that id.
            HistoryError: the database cannot be read.
        """
        stored = self.history.messages(conversation_id)
        self.conversation_id = conversation_id
        self.messages = [
            Message(item.role, item.content, item.reasoning)
            for item in stored
            if item.role in ("user", "assistant")
        ]
        return stored

    def add_prompt(self, text: str) -> None:
        """Append the user's prompt and save it.

        Raises:
            HistoryError: the prompt cannot be saved; it stays in the conversation.
        """
        self.messages.append(Message("user", text))
        if self.conversation_id is None:
            self.conversation_id = self.history.new_conversation(model=self.model_label).id
        self.history.add_message(self.conversation_id, "user", text)

    def fit_prompt(self) -> FittedPrompt:
        """Leave out the oldest turns until the conversation and an answer fit in the context.

        Raises:
            PromptTooLong: the current prompt alone does not fit.
        """
        engine = self._require_engine()
        r1_format = self.choice.is_r1

        def count_tokens(messages: list[Message]) -> int:
            return len(engine.prompt_tokens(messages, r1_format))

        kept, dropped, budget = fit_with_answer_room(
            self.messages, count_tokens, engine.n_ctx, self.options.sampling.max_tokens
        )
        if dropped:
            log.info("left out %d earlier messages to fit %d prompt tokens", dropped, budget)
        return FittedPrompt(kept, dropped, budget)

    def generate(
        self,
        messages: list[Message],
        cancel: threading.Event,
        on_reasoning: Callable[[str], None],
        on_answer: Callable[[str], None],
    ) -> TurnResult:
        """Stream the answer to `messages`; the result keeps what was written when cancelled.

        Raises:
            PromptTooLong, EngineError: from the engine.
        """
        return run_turn(
            self._require_engine(),
            messages,
            r1_format=self.choice.is_r1,
            sampling=self.options.sampling,
            cancel=cancel,
            on_reasoning=on_reasoning,
            on_answer=on_answer,
        )

    def add_answer(self, result: TurnResult) -> None:
        """Append the answer and save it; a stopped or cut-off answer is saved as incomplete.

        Raises:
            HistoryError: the answer cannot be saved; it stays in the conversation.
        """
        self.messages.append(Message("assistant", result.answer, result.reasoning))
        if self.conversation_id is None:
            return
        stats = result.stats
        self.history.add_message(
            self.conversation_id,
            "assistant",
            result.answer,
            reasoning=result.reasoning,
            complete=result.finish_reason == "stop",
            finish_reason=result.finish_reason,
            model=self.model_label,
            stats=MessageStats(
                prompt_tokens=stats.prompt_tokens,
                completion_tokens=stats.completion_tokens,
                first_token_s=stats.first_token_s or None,
                tokens_per_s=stats.decode_tokens_per_s or None,
            ),
        )

    def _require_engine(self) -> ChatEngine:
        if self.engine is None:
            raise RuntimeError("the model is not loaded")
        return self.engine


def export_path(title: str, conversation_id: int, folder: Path | None = None, now: datetime | None = None) -> Path:
    """Return a new file name for an exported conversation in `folder` (default: `data_dir()/exports`).

    The name is the date, the title's letters and digits (CJK kept), and the
    id, and a number is added rather than overwrite an existing file.
    """
    folder = folder or config.data_dir() / "exports"
    day = (now or datetime.now()).strftime("%Y-%m-%d")
    words = re.sub(r"[^\w]+", "-", title, flags=re.UNICODE).strip("-_").lower()[:40] or "conversation"
    stem = f"{day}-{words}-{conversation_id}"
    path = folder / f"{stem}.md"
    number = 2
    while path.exists():
        path = folder / f"{stem}-{number}.md"
        number += 1
    return path


def export_conversation(history: History, conversation_id: int, folder: Path | None = None) -> Path:
    """Write a conversation as Markdown into a new file and return its path.

    Raises:
        ConversationNotFound: no conversation has that id.
        HistoryError: the database cannot be read.
        OSError: the file cannot be written.
    """
    conversation = history.conversation(conversation_id)
    text = history.export_markdown(conversation_id)
    path = export_path(conversation.title, conversation_id, folder)
    config.ensure_dir(path.parent)
    with path.open("x", encoding="utf-8") as handle:
        handle.write(text)
    log.info("exported conversation %d to %s", conversation_id, path)
    return path
