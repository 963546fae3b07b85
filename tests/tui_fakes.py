"""Scripted stand-ins for the chat screen's tests: an engine with canned output and fixed sensors."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from r1chat import catalog as catalog_module
from r1chat import store
from r1chat.config import Settings
from r1chat.conversation import Message
from r1chat.engine import Sampling, StreamStats
from r1chat.history import History
from r1chat.power.governor import Governor
from r1chat.power.sensors import SensorReading
from r1chat.power.topology import CoreClass, Topology
from r1chat.tui.chat_app import ChatApp
from r1chat.tui.session import ChatOptions, ChatSession

# Fixed figures, so that snapshots of the status bar do not change between runs.
FIXED_STATS = dict(first_token_s=0.42, decode_tokens_per_s=12.5)
WAIT_S = 10.0


@dataclass
class ScriptedEngine:
    """Yields canned byte pieces the way `Engine.generate` does.

    `gates` maps a piece index to an Event: before yielding that piece the
    engine sets `reached[index]` and waits for the gate, so a test can look at
    the screen halfway through an answer without timing anything.
    """

    pieces: list[bytes]
    n_ctx: int = 4096
    n_threads: int = 4
    gates: dict[int, threading.Event] = field(default_factory=dict)
    reached: dict[int, threading.Event] = field(default_factory=dict)
    calls: list[list[Message]] = field(default_factory=list)
    closed: bool = False
    last_stats: StreamStats = field(default_factory=StreamStats)

    def __post_init__(self) -> None:
        for index in self.gates:
            self.reached.setdefault(index, threading.Event())

    def prompt_tokens(self, messages: list[Message], r1_format: bool) -> list[int]:
        # About four characters a token, like a real tokenizer on English text.
        self.last_messages = list(messages)
        return [0] * sum(4 + len(message.content) // 4 for message in messages)

    def generate(self, tokens: list[int], sampling: Sampling, cancel: threading.Event | None = None):
        self.calls.append(self.last_messages)
        stats = StreamStats(prompt_tokens=len(tokens), threads=self.n_threads, **FIXED_STATS)
        self.last_stats = stats
        stats.finish_reason = "stop"
        for index, piece in enumerate(self.pieces):
            if index in self.gates:
                self.reached[index].set()
                self.gates[index].wait(WAIT_S)
            if cancel is not None and cancel.is_set():
                stats.finish_reason = "interrupted"
                return
            stats.completion_tokens = index + 1
            yield piece

    def set_threads(self, n_threads: int) -> None:
        self.n_threads = n_threads

    def close(self) -> None:
        self.closed = True


def engine_factory(engine):
    """Return an engine factory that reports full progress and returns `engine`."""

    def load(choice, *, n_ctx, n_threads, progress):
        progress(1.0)
        return engine

    return load


def r1_choice() -> store.ModelChoice:
    """Return the catalog's DeepSeek-R1 1.5B Q4_K_M entry, pointing at a file that is never read."""
    catalog = catalog_module.load_catalog()
    entry = catalog.get("deepseek-r1-1.5b")
    variant = entry.variant("Q4_K_M")
    return store.ModelChoice(Path("/nonexistent/deepseek-r1-1.5b.gguf"), entry, variant)


def fixed_governor(battery_percent: float = 76.0, charging: bool = False) -> Governor:
    """Return a real governor reading fixed sensors on a fixed two-core CPU."""
    reading = SensorReading(
        battery_percent=battery_percent,
        charging=charging,
        battery_temp_c=31.0,
        cpu_temp_c=45.0,
        source="simulated",
    )
    topology = Topology((CoreClass("performance", 2_000_000, (0, 1)),), "cpufreq")
    return Governor(Settings(), reader=lambda: reading, topology=topology, clock=lambda: 100.0)


def make_app(
    engine,
    history: History,
    *,
    choice: store.ModelChoice | None = None,
    n_ctx: int = 4096,
    max_tokens: int = 256,
    seed: int | None = 7,
    threads: int | None = None,
    think: bool | None = None,
    governor: Governor | None = None,
    conversation_id: int | None = None,
) -> ChatApp:
    options = ChatOptions(
        n_ctx=n_ctx,
        threads=threads,
        sampling=Sampling(temperature=0.6, top_p=0.95, seed=seed, max_tokens=max_tokens),
        think=think,
    )
    session = ChatSession(options, choice or r1_choice(), history, engine_factory=engine_factory(engine))
    return ChatApp(session, governor=governor, conversation_id=conversation_id)


async def wait_until(pilot, condition, steps: int = 500) -> None:
    """Let the app run until `condition()` is true; fail after `steps` short pauses."""
    for _ in range(steps):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError(f"condition never became true: {condition}")


async def wait_for_thread_event(pilot, event: threading.Event, steps: int = 500) -> None:
    await wait_until(pilot, event.is_set, steps)


async def send_prompt(pilot, app: ChatApp, text: str, finish: bool = True) -> None:
    """Type `text` into the prompt box, press Enter, and wait for the answer unless `finish` is False."""
    from r1chat.tui.messages import AssistantMessage

    before = len(app.chat_screen.query(AssistantMessage))
    app.chat_screen.prompt.insert(text)
    await pilot.press("enter")
    await wait_until(pilot, lambda: len(app.chat_screen.query(AssistantMessage)) > before)
    if finish:
        await wait_until(pilot, lambda: not app.chat_screen.generating)
