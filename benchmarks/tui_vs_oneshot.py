"""Compare the decode speed seen by the chat screen with `r1chat -p --json` on the same model.

One run measures, on the starter model with the same prompt, seed, thread
count and token budget:

1. The chat screen, driven headless through Textual's `App.run_test()` in
   this process with the real model. Two figures: the engine's own
   `decode_tokens_per_s` while the screen streams the answer, and the rate
   at which streamed text reached the screen (tokens after the first, over
   the time from the first screen update to the final render).
2. `r1chat -p --json`, run as a subprocess; the figure is its
   `timings.decode_tokens_per_s`.

Runs alternate between the two, because the machines this runs on are often
shared, and the report gives medians with min and max and the ratio of the
medians (the goal is at least 0.9). It prints figures and asserts nothing.

    python benchmarks/tui_vs_oneshot.py [--runs 5] [--threads 1] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."
SEED = 42
MODEL = "smollm2-135m"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measurements of each kind (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="decode threads for both (default 1)")
    parser.add_argument("--max-tokens", type=int, default=128, help="token budget of each answer (default 128)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return parser.parse_args()


def measure_oneshot(threads: int, max_tokens: int, home: Path) -> dict:
    command = [
        sys.executable, "-m", "r1chat", "-p", PROMPT, "--json", "-m", MODEL,
        "-t", str(threads), "-n", str(max_tokens), "--seed", str(SEED),
    ]
    env = {**os.environ, "R1CHAT_HOME": str(home)}
    completed = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    report = json.loads(completed.stdout)
    return {
        "decode_tokens_per_s": report["timings"]["decode_tokens_per_s"],
        "completion_tokens": report["usage"]["completion_tokens"],
    }


async def measure_chat_screen(threads: int, max_tokens: int) -> dict:
    from r1chat import catalog, store
    from r1chat.engine import Sampling
    from r1chat.history import History
    from r1chat.tui.chat_app import ChatApp
    from r1chat.tui.messages import AssistantMessage
    from r1chat.tui.session import ChatOptions, ChatSession

    choice = store.resolve_model(MODEL, catalog.load_catalog())
    options = ChatOptions(
        n_ctx=4096,
        threads=threads,
        sampling=Sampling(seed=SEED, max_tokens=max_tokens),
    )
    history = History.open()
    session = ChatSession(options, choice, history, fixed_variant=True)
    app = ChatApp(session, governor=None)
    screen_times: list[float] = []
    original_add_text = AssistantMessage.add_text

    async def timed_add_text(self, reasoning: str, answer: str) -> None:
        await original_add_text(self, reasoning, answer)
        screen_times.append(time.perf_counter())

    AssistantMessage.add_text = timed_add_text
    try:
        async with app.run_test(size=(40, 20)) as pilot:
            while not app.engine_ready.is_set():
                await pilot.pause(0.05)
            app.chat_screen.prompt.insert(PROMPT)
            await pilot.press("enter")
            # Plain sleeps: the pilot's pause waits for the screen, which would
            # add work on the app's thread that a user's terminal does not cause.
            while not app.chat_screen.query(AssistantMessage) or app.chat_screen.generating:
                await asyncio.sleep(0.1)
            finished_at = time.perf_counter()
            stats = app.last_stats
    finally:
        AssistantMessage.add_text = original_add_text
        history.close()

    tokens = stats.completion_tokens
    seen = None
    if screen_times and finished_at > screen_times[0] and tokens > 1:
        seen = (tokens - 1) / (finished_at - screen_times[0])
    return {
        "decode_tokens_per_s": stats.decode_tokens_per_s,
        "screen_tokens_per_s": seen,
        "completion_tokens": tokens,
    }


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> int:
    args = parse_args()
    home = Path(tempfile.mkdtemp(prefix="r1chat-bench-"))
    os.environ["R1CHAT_HOME"] = str(home)
    os.environ.setdefault("TEXTUAL_FPS", "20")
    os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")

    oneshot, screen = [], []
    for _ in range(args.runs):
        screen.append(asyncio.run(measure_chat_screen(args.threads, args.max_tokens)))
        oneshot.append(measure_oneshot(args.threads, args.max_tokens, home))

    report = {
        "model": MODEL,
        "threads": args.threads,
        "max_tokens": args.max_tokens,
        "runs": args.runs,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "completion_tokens": {"chat_screen": screen[0]["completion_tokens"], "oneshot": oneshot[0]["completion_tokens"]},
        "oneshot_decode_tokens_per_s": summary([run["decode_tokens_per_s"] for run in oneshot]),
        "chat_screen_decode_tokens_per_s": summary([run["decode_tokens_per_s"] for run in screen]),
        "chat_screen_seen_tokens_per_s": summary(
            [run["screen_tokens_per_s"] for run in screen if run["screen_tokens_per_s"] is not None]
        ),
    }
    report["ratio_decode"] = (
        report["chat_screen_decode_tokens_per_s"]["median"] / report["oneshot_decode_tokens_per_s"]["median"]
    )
    report["ratio_seen"] = (
        report["chat_screen_seen_tokens_per_s"]["median"] / report["oneshot_decode_tokens_per_s"]["median"]
    )

    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"model {MODEL}, {args.threads} threads, {args.max_tokens} max tokens, {args.runs} runs; {report['machine']}")
    print(f"tokens generated: chat screen {report['completion_tokens']['chat_screen']}, -p {report['completion_tokens']['oneshot']}")
    for label, key in (
        ("r1chat -p --json decode", "oneshot_decode_tokens_per_s"),
        ("chat screen, engine decode", "chat_screen_decode_tokens_per_s"),
        ("chat screen, text reaching the screen", "chat_screen_seen_tokens_per_s"),
    ):
        figures = report[key]
        print(f"{label:40s} median {figures['median']:7.1f} tok/s (min {figures['min']:.1f}, max {figures['max']:.1f})")
    print(f"ratio chat screen / -p: engine decode {report['ratio_decode']:.2f}, seen on screen {report['ratio_seen']:.2f} (goal >= 0.9)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
