"""`r1chat status [--json]` run as a module and through main()."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from r1chat import locale
from r1chat.errors import SettingsError
from r1chat.status_cmd import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def sensors_file(tmp_path, monkeypatch):
    path = tmp_path / "sensors.json"
    path.write_text(
        json.dumps(
            {
                "battery_percent": 15,
                "charging": False,
                "battery_temp_c": 33.5,
                "cpu_temp_c": 48.0,
                "current_ma": 420.0,
                "voltage_v": 3.81,
            }
        )
    )
    monkeypatch.setenv("R1CHAT_SENSORS", str(path))
    return path


def run_status(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "r1chat.status_cmd", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


def test_json_from_module_run(sensors_file):
    result = run_status("--json")

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["sensors"] == {
        "battery_percent": 15.0,
        "charging": False,
        "battery_temp_c": 33.5,
        "cpu_temp_c": 48.0,
        "current_ma": 420.0,
        "voltage_v": 3.81,
        "source": "simulated",
    }
    assert data["plan"]["tier"] == "low"
    assert data["plan"]["threads"] >= 1
    assert data["plan"]["watts_estimate"] > 0
    assert data["plan"]["reason"].startswith("battery_low")
    assert data["cores"]["count"] >= 1
    assert len(data["plan"]["cores"]) == data["plan"]["threads"]


def test_json_nulls_without_sensors(capsys, monkeypatch):
    # An empty PATH hides any termux command; this machine has no battery in sysfs.
    monkeypatch.setenv("PATH", "")

    assert main(["--json"]) == 0
    data = json.loads(capsys.readouterr().out)

    for key in ("battery_percent", "charging", "battery_temp_c", "current_ma", "voltage_v"):
        assert key in data["sensors"]
    assert data["plan"]["tier"] == "normal"
    if data["sensors"]["battery_percent"] is None:
        assert data["plan"]["reason"].startswith("sensors_unknown")


def test_budget_setting_changes_plan(sensors_file, isolated_home, capsys):
    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "settings.toml").write_text("power_budget_w = 0.5\n")

    assert main(["--json"]) == 0
    plan = json.loads(capsys.readouterr().out)["plan"]

    assert plan["threads"] == 1
    assert "over_budget" in plan["reason"].split(",")


def test_table_in_english(sensors_file, capsys):
    assert main([]) == 0
    out = capsys.readouterr().out

    assert "Battery        15% (on battery)" in out
    assert "CPU temp.      48.0 °C" in out
    assert "Tier           low power" in out
    assert "Why" in out
    assert "low-power model" in out


def test_table_in_chinese(sensors_file, capsys):
    locale.set_language("zh_CN")

    assert main([]) == 0
    out = capsys.readouterr().out

    assert "电池" in out
    assert "低功耗" in out
    assert "Battery" not in out


def test_bad_argument_exits_2(capsys):
    assert main(["--bogus"]) == 2
    assert "usage" in capsys.readouterr().err


def test_invalid_settings_raise(isolated_home):
    # An explicit language keeps the error's translation from loading the same settings.
    locale.set_language("en")
    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "settings.toml").write_text("power_budget_w = 'lots'\n")

    with pytest.raises(SettingsError):
        main(["--json"])


def test_invalid_settings_module_run_without_traceback(isolated_home):
    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "settings.toml").write_text("power_budget_w = 'lots'\n")

    result = run_status("--json")

    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert "settings" in result.stderr


def test_imports_no_heavy_modules():
    code = (
        "import sys, r1chat.status_cmd; "
        "print(sorted(m for m in ('llama_cpp', 'textual') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )

    assert result.stdout.strip() == "[]"


def test_every_power_message_is_translated():
    catalog = tomllib.loads((ROOT / "r1chat/locale/zh_CN/power.toml").read_text("utf-8"))
    sources = [
        ROOT / "r1chat/status_cmd.py",
        ROOT / "r1chat/power/governor.py",
        ROOT / "r1chat/power/sensors.py",
        ROOT / "r1chat/power/topology.py",
    ]
    messages = set()
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "_"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                messages.add(node.args[0].value)

    assert len(messages) > 30
    assert sorted(messages - set(catalog)) == []
