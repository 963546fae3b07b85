"""`r1chat bench` on the starter model, and the governor reading its saved result."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from r1chat.config import Settings
from r1chat.power.benchfile import bench_path, load_bench
from r1chat.power.governor import make_governor


def test_bench_measures_and_saves(isolated_home):
    result = subprocess.run(
        [sys.executable, "-m", "r1chat", "bench", "--max-threads", "2", "-n", "8", "--json"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, env=os.environ.copy(), timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["threads"]) == {"1", "2"}
    for figures in report["threads"].values():
        assert figures["decoded_tokens"] == 8
        assert figures["decode_tokens_per_s"] > 0
        assert figures["prefill_tokens_per_s"] > 0
        assert figures["first_token_s"] > 0
        assert figures["watts_estimate"] > 0
        assert figures["tokens_per_joule"] > 0
    assert report["peak_rss_mb"] > 50
    assert bench_path().is_file()
    assert set(load_bench()) == {1, 2}


def test_governor_prefers_the_fastest_saved_thread_count(isolated_home):
    isolated_home.mkdir()
    bench_path().write_text(json.dumps({"threads": {
        "1": {"watts": 1.0, "decode_tokens_per_s": 50.0},
        "2": {"watts": 2.0, "decode_tokens_per_s": 20.0},
    }}))
    plan = make_governor(Settings(power_budget_w=5.0)).plan()
    assert plan.threads == 1
    assert "bench_fastest" in plan.reason


def test_unreadable_bench_file_is_ignored(isolated_home):
    isolated_home.mkdir()
    bench_path().write_text("{not json")
    assert load_bench() == {}
