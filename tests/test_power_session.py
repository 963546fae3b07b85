"""The governor driving real chat turns on the starter model: tier swaps and -p's power report."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import psutil
import pytest

from r1chat.config import Settings
from r1chat.engine import Sampling
from r1chat.session import ChatSession

GREEDY = Sampling(temperature=0, max_tokens=30)


def r1chat(*args, env=None, timeout=180):
    return subprocess.run(
        [sys.executable, "-m", "r1chat", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


@pytest.fixture
def low_variant(isolated_home):
    """Derive the starter's low-power variant into this test's R1CHAT_HOME."""
    result = r1chat("models", "quantize", "smollm2-135m", "--to", "Q3_K_S")
    assert result.returncode == 0, result.stderr
    path = isolated_home / "models" / "smollm2-135m" / "SmolLM2-135M-Instruct.Q3_K_S.gguf"
    assert path.is_file()
    return path


@pytest.fixture
def sensors_file(tmp_path, monkeypatch):
    path = tmp_path / "sensors.json"
    monkeypatch.setenv("R1CHAT_SENSORS", str(path))

    def write(percent, charging=False):
        path.write_text(json.dumps({"battery_percent": percent, "charging": charging}))
        # The reader notices a change by size and mtime; make sure the mtime moves.
        later = time.time() + 2
        os.utime(path, (later, later))

    return write


def test_battery_drop_between_turns_swaps_to_low(low_variant, sensors_file):
    sensors_file(60)
    notices = []
    session = ChatSession(Settings(), fixed_threads=1, notify=notices.append)
    first = session.ask("My favourite colour is blue. Remember it.", GREEDY)
    assert session.choice.variant.quant == "Q4_1"
    assert session.tier == "normal"
    assert first.answer

    sensors_file(15)
    second = session.ask("What is my favourite colour?", GREEDY)
    session.close()

    assert session.choice.variant.quant == "Q3_K_S"
    assert session.choice.path == low_variant
    assert session.tier == "low"
    assert any("Switching to smollm2-135m:Q3_K_S" in notice for notice in notices)
    # The new model read the whole conversation, the first turn included.
    assert second.stats.reused_tokens == 0
    assert second.stats.prompt_tokens > first.stats.prompt_tokens + first.stats.completion_tokens
    assert "blue" in second.answer.lower()
    assert [m.role for m in session.messages] == ["user", "assistant", "user", "assistant"]


def test_charging_swaps_back_to_normal(low_variant, sensors_file):
    sensors_file(15)
    session = ChatSession(Settings(), fixed_threads=1)
    session.ask("Hello", Sampling(temperature=0, max_tokens=4))
    assert session.choice.variant.quant == "Q3_K_S"

    sensors_file(19, charging=True)
    session.ask("Hello again", Sampling(temperature=0, max_tokens=4))
    session.close()
    assert session.choice.variant.quant == "Q4_1"


def test_missing_low_variant_warns_once_and_keeps_normal(sensors_file):
    sensors_file(10)
    notices = []
    session = ChatSession(Settings(), fixed_threads=1, notify=notices.append)
    session.ask("Hi", Sampling(temperature=0, max_tokens=2))
    session.ask("Hi", Sampling(temperature=0, max_tokens=2))
    session.close()
    warnings = [n for n in notices if "not on this phone" in n]
    assert len(warnings) == 1
    assert "r1chat models quantize smollm2-135m --to Q3_K_S" in warnings[0]
    assert session.choice.variant.quant == "Q4_1"


def test_prompt_json_reports_low_tier(low_variant, sensors_file):
    sensors_file(15)
    result = r1chat("-p", "Hi", "-n", "4", "--seed", "1", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["quant"] == "Q3_K_S"
    assert report["power"]["tier"] == "low"
    assert report["power"]["battery_percent"] == 15
    assert "battery_low" in report["power"]["reason"]
    assert report["power"]["threads"] >= 1


def test_explicit_quant_and_threads_bypass_the_governor(low_variant, sensors_file):
    sensors_file(15)
    result = r1chat("-p", "Hi", "-m", "smollm2-135m:Q4_1", "-t", "1", "-n", "4", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["quant"] == "Q4_1"
    assert report["power"]["tier"] == "normal"
    assert report["power"]["threads"] == 1
    assert report["power"]["reason"] == "fixed_threads"


FAKE_COMMANDS = {
    "hangs": "#!/bin/sh\nsleep 300\n",
    "garbage": "#!/bin/sh\necho 'not json {{{'\n",
}


@pytest.mark.parametrize("behaviour", ["hangs", "garbage", "missing"])
def test_prompt_answers_whatever_termux_api_does(tmp_path, behaviour, monkeypatch):
    monkeypatch.delenv("R1CHAT_SENSORS", raising=False)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if behaviour != "missing":
        script = bin_dir / "termux-battery-status"
        script.write_text(FAKE_COMMANDS[behaviour])
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}

    started = time.monotonic()
    result = r1chat("-p", "Hi", "-n", "4", "--seed", "1", "--json", env=env, timeout=120)
    elapsed = time.monotonic() - started

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["usage"]["completion_tokens"] > 0
    assert "Traceback" not in result.stderr
    assert elapsed < 90
    leftovers = [
        p for p in psutil.process_iter(["cmdline"])
        if any(str(bin_dir) in part for part in (p.info["cmdline"] or []))
    ]
    assert leftovers == []


def test_settings_default_variant_still_swaps(low_variant, sensors_file):
    sensors_file(15)
    session = ChatSession(Settings(default_model="smollm2-135m:Q4_1"), fixed_threads=1)
    session.ask("Hi", Sampling(temperature=0, max_tokens=2))
    session.close()
    assert session.choice.variant.quant == "Q3_K_S"
    assert session.tier == "low"


def test_damaged_low_variant_is_not_used(low_variant, sensors_file):
    from r1chat import store

    store.record_file(low_variant, "0" * 64, good=False)
    sensors_file(15)
    notices = []
    session = ChatSession(Settings(), fixed_threads=1, notify=notices.append)
    session.ask("Hi", Sampling(temperature=0, max_tokens=2))
    session.close()
    assert session.choice.variant.quant == "Q4_1"
    assert any("not on this phone" in notice for notice in notices)


def test_explicit_damaged_variant_is_rejected(low_variant):
    from r1chat import store

    store.record_file(low_variant, "0" * 64, good=False)
    result = r1chat("-p", "Hi", "-m", "smollm2-135m:Q3_K_S", "-n", "2")
    assert result.returncode == 1
    assert "sha256" in result.stderr
    assert "r1chat models pull smollm2-135m:Q3_K_S" in result.stderr
