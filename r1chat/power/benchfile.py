"""The saved result of `r1chat bench`, which the governor uses to choose threads."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from r1chat import config
from r1chat.power.governor import BenchPoint, parse_bench

log = logging.getLogger(__name__)


def bench_path() -> Path:
    return config.data_dir() / "bench.json"


def save_bench(report: dict) -> Path:
    """Write a bench report (with a "threads" map) atomically; return its path."""
    path = bench_path()
    config.ensure_dir(path.parent)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_bench() -> dict[int, BenchPoint]:
    """Return the saved per-thread results, or {} when there are none or they are unreadable."""
    path = bench_path()
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        return parse_bench(report["threads"])
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("ignoring unreadable bench result %s: %s", path, error)
        return {}
