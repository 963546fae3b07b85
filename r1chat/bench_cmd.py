"""`r1chat bench [--json]`: measure the model at each thread count and save the result.

For each thread count from 1 to the number of usable cores it measures
first-token latency, prefill and decode tokens/s, and combines decode speed
with the governor's power estimate into tokens per joule. The result is saved
(`bench.json` in the data folder) and the governor then prefers the fastest
thread count that fits the power budget.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

from r1chat import config
from r1chat.conversation import Message
from r1chat.errors import UsageError
from r1chat.locale import _

BENCH_PROMPT = (
    "Explain step by step how a phone battery stores energy, how charging works, "
    "and why batteries wear out over the years. Write at least three paragraphs."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="r1chat bench",
        description=_("Measure speed and power at each thread count; the governor uses the result."),
    )
    parser.add_argument("-m", "--model", metavar="MODEL", help=_("catalog id, id:QUANT or a .gguf path"))
    parser.add_argument("-n", "--tokens", type=int, default=64, metavar="N",
                        help=_("tokens to decode per thread count (default 64)"))
    parser.add_argument("--max-threads", type=int, metavar="N",
                        help=_("highest thread count to try (default: the usable cores)"))
    parser.add_argument("--json", action="store_true", help=_("print one JSON object"))
    parser.add_argument("--no-save", action="store_true", help=_("do not save the result for the governor"))
    return parser


def peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux and Android.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def measure(engine, threads: int, tokens: list[int], n_decode: int) -> dict:
    """Run one prefill and `n_decode` decode steps with `threads`; return the figures."""
    from r1chat.engine import Sampling

    engine.set_threads(threads)
    # Every run measures a full prefill.
    engine.reset_cache()
    list(engine.generate(tokens, Sampling(temperature=0, max_tokens=n_decode, ignore_eos=True)))
    stats = engine.last_stats
    return {
        "first_token_s": round(stats.first_token_s, 4),
        "prefill_tokens_per_s": round(stats.prefill_tokens_per_s, 2),
        "decode_tokens_per_s": round(stats.decode_tokens_per_s, 2),
        "decoded_tokens": stats.completion_tokens,
    }


def main(argv: list[str]) -> int:
    """Run the benchmark; return the exit code.

    Raises:
        R1ChatError: the model cannot be found or loaded.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if args.tokens < 2:
        raise UsageError(_("--tokens must be at least 2."))

    from r1chat.engine import Engine
    from r1chat.power.benchfile import save_bench
    from r1chat.power.governor import make_governor
    from r1chat.catalog import load_catalog
    from r1chat.session import choose_model

    settings = config.load_settings()
    choice, _fixed = choose_model(args.model, settings, load_catalog(), lambda text: print(text, file=sys.stderr))
    governor = make_governor(settings)
    plan = governor.plan()
    max_threads = args.max_threads or usable_cores()

    engine = Engine(choice.path, n_ctx=1024, n_threads=1)
    prompt = engine.prompt_tokens([Message("user", BENCH_PROMPT)], choice.is_r1)
    # One short warm-up run pages the weights in, so the first count is not penalised.
    measure(engine, 1, prompt, 4)

    results: dict[str, dict] = {}
    for threads in range(1, max_threads + 1):
        figures = measure(engine, threads, prompt, args.tokens)
        watts = governor.estimate_watts(threads)
        figures["watts_estimate"] = round(watts, 2)
        figures["tokens_per_joule"] = round(figures["decode_tokens_per_s"] / watts, 2) if watts else None
        figures["watts"] = figures["watts_estimate"]
        results[str(threads)] = figures
        if not args.json:
            print(
                _("{threads} threads: first token {first:.2f} s, prefill {prefill:.1f} tok/s, "
                  "decode {decode:.1f} tok/s, ~{watts:.1f} W, {tpj} tok/J").format(
                    threads=threads,
                    first=figures["first_token_s"],
                    prefill=figures["prefill_tokens_per_s"],
                    decode=figures["decode_tokens_per_s"],
                    watts=watts,
                    tpj=figures["tokens_per_joule"],
                ),
                flush=True,
            )
    engine.close()

    report = {
        "model": choice.label,
        "path": str(choice.path),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "prompt_tokens": len(prompt),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "sensors": plan.reading.to_json(),
        "threads": results,
    }
    if not args.no_save:
        report["saved_to"] = str(save_bench(report))
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(_("Peak memory: {mb:.0f} MB").format(mb=report["peak_rss_mb"]))
        if not args.no_save:
            print(_("Saved to {path}; the governor now uses it to choose threads.").format(path=report["saved_to"]))
    return 0
