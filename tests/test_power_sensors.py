"""Sensor sources: the simulated file, a fake termux-battery-status, fake sysfs trees."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections import namedtuple
from pathlib import Path

import psutil
import pytest

from r1chat.power import sensors
from r1chat.power.sensors import SensorReader, SensorReading, discharge_current_ma

TERMUX_JSON = {
    "health": "GOOD",
    "percentage": 57,
    "plugged": "UNPLUGGED",
    "status": "DISCHARGING",
    "temperature": 31.5,
    "voltage": 3870,
    "current": -450000,
}


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def empty_sysfs(tmp_path):
    power_supply = tmp_path / "power_supply"
    thermal = tmp_path / "thermal"
    power_supply.mkdir()
    thermal.mkdir()
    return power_supply, thermal


@pytest.fixture
def bin_dir(tmp_path, monkeypatch):
    """A folder first on PATH, followed only by the system folders (no real termux command)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", os.pathsep.join([str(folder), "/usr/bin", "/bin"]))
    assert shutil.which("termux-battery-status") is None
    return folder


def make_reader(empty_sysfs, **kwargs) -> SensorReader:
    power_supply, thermal = empty_sysfs
    kwargs.setdefault("clock", FakeClock())
    return SensorReader(
        power_supply_root=power_supply, thermal_root=thermal, use_psutil=False, **kwargs
    )


def write_script(folder: Path, body: str, name: str = "termux-battery-status") -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(0o755)
    return path


def processes_matching(marker: str) -> list[psutil.Process]:
    """Live (non-zombie) processes whose command line contains `marker`."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
        except psutil.Error:
            continue
        if marker in cmdline and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


def wait_until_gone(marker: str, limit_s: float = 2.0) -> list[psutil.Process]:
    deadline = time.monotonic() + limit_s
    while True:
        left = processes_matching(marker)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def write_sysfs_file(folder: Path, name: str, value: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(value + "\n", encoding="utf-8")


# --- the reading itself ---


def test_reading_to_json_has_exact_fields():
    reading = SensorReading(battery_percent=50.0, charging=False, source="sysfs", time=3.0)

    assert reading.to_json() == {
        "battery_percent": 50.0,
        "charging": False,
        "battery_temp_c": None,
        "cpu_temp_c": None,
        "current_ma": None,
        "voltage_v": None,
        "source": "sysfs",
    }


def test_reading_power_from_current_and_voltage():
    assert SensorReading(current_ma=1000.0, voltage_v=4.0).power_w == pytest.approx(4.0)
    assert SensorReading(current_ma=1000.0).power_w is None


@pytest.mark.parametrize(
    ("raw", "charging", "expected"),
    [
        (-450.0, False, 450.0),
        (450.0, False, 450.0),
        (450.0, True, -450.0),
        (-450.0, True, -450.0),
        (450.0, None, -450.0),
    ],
)
def test_discharge_current_sign(raw, charging, expected):
    assert discharge_current_ma(raw, charging) == expected


def test_no_source_gives_unknown_reading(empty_sysfs, bin_dir):
    reading = make_reader(empty_sysfs).read()

    assert reading.source == "none"
    assert reading.to_json() == {**{key: None for key in reading.to_json()}, "source": "none"}


def test_missing_sysfs_folders_give_unknown_reading(tmp_path, bin_dir):
    reader = SensorReader(
        power_supply_root=tmp_path / "absent-ps",
        thermal_root=tmp_path / "absent-thermal",
        use_psutil=False,
    )

    assert reader.read().source == "none"


# --- R1CHAT_SENSORS ---


def test_sensors_file_is_used_first(tmp_path, empty_sysfs, bin_dir, monkeypatch):
    write_script(bin_dir, f"echo '{json.dumps(TERMUX_JSON)}'\n")
    path = tmp_path / "sensors.json"
    path.write_text(json.dumps({"battery_percent": 15, "charging": False, "cpu_temp_c": 50.5}))
    monkeypatch.setenv("R1CHAT_SENSORS", str(path))

    reading = make_reader(empty_sysfs).read()

    assert reading.source == "simulated"
    assert reading.battery_percent == 15.0
    assert reading.charging is False
    assert reading.cpu_temp_c == 50.5
    assert reading.battery_temp_c is None


def test_sensors_file_reread_when_changed(tmp_path, empty_sysfs, monkeypatch):
    path = tmp_path / "sensors.json"
    path.write_text(json.dumps({"battery_percent": 80, "charging": False}))
    monkeypatch.setenv("R1CHAT_SENSORS", str(path))
    reader = make_reader(empty_sysfs)

    assert reader.read().battery_percent == 80.0

    path.write_text(json.dumps({"battery_percent": 15, "charging": True}))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000_000))
    reading = reader.read()

    assert reading.battery_percent == 15.0
    assert reading.charging is True


def test_sensors_file_not_reread_when_unchanged(tmp_path, empty_sysfs, monkeypatch):
    path = tmp_path / "sensors.json"
    path.write_text(json.dumps({"battery_percent": 80}))
    monkeypatch.setenv("R1CHAT_SENSORS", str(path))
    reader = make_reader(empty_sysfs)
    assert reader.read().battery_percent == 80.0
    stat = path.stat()

    # Same size and mtime: the reader keeps its parsed copy.
    path.write_text(json.dumps({"battery_percent": 15}))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    assert reader.read().battery_percent == 80.0


def test_invalid_sensors_file_falls_through(tmp_path, empty_sysfs, monkeypatch, caplog):
    path = tmp_path / "sensors.json"
    path.write_text(json.dumps({"battery_percent": "full"}))
    monkeypatch.setenv("R1CHAT_SENSORS", str(path))
    power_supply, _thermal = empty_sysfs
    battery = power_supply / "BAT0"
    write_sysfs_file(battery, "type", "Battery")
    write_sysfs_file(battery, "capacity", "64")

    with caplog.at_level(logging.WARNING, logger="r1chat.power.sensors"):
        reading = make_reader(empty_sysfs).read()

    assert reading.source == "sysfs"
    assert reading.battery_percent == 64.0
    assert "battery_percent" in caplog.text


def test_missing_sensors_file_warns_once(tmp_path, empty_sysfs, monkeypatch, caplog):
    monkeypatch.setenv("R1CHAT_SENSORS", str(tmp_path / "absent.json"))
    reader = make_reader(empty_sysfs)

    with caplog.at_level(logging.WARNING, logger="r1chat.power.sensors"):
        first = reader.read()
        reader.read()

    assert first.source == "none"
    assert len(caplog.records) == 1


@pytest.mark.parametrize(
    "content",
    [
        [1, 2],
        {"charging": "yes"},
        {"voltage_v": True},
        {"current_ma": "NaN"},
    ],
)
def test_parse_sensors_file_rejects_bad_types(content):
    with pytest.raises(ValueError):
        sensors.parse_sensors_file(content)


def test_read_sensors_uses_environment(tmp_path, monkeypatch):
    path = tmp_path / "sensors.json"
    path.write_text(json.dumps({"battery_percent": 42, "charging": True}))
    monkeypatch.setenv("R1CHAT_SENSORS", str(path))
    monkeypatch.setattr(sensors, "_default_reader", None)

    reading = sensors.read_sensors()

    assert reading.battery_percent == 42.0
    assert reading.source == "simulated"


# --- termux-battery-status ---


def test_termux_valid_output(empty_sysfs, bin_dir):
    write_script(bin_dir, f"echo '{json.dumps(TERMUX_JSON)}'\n")

    reading = make_reader(empty_sysfs).read()

    assert reading.source == "termux-api"
    assert reading.battery_percent == 57.0
    assert reading.charging is False
    assert reading.battery_temp_c == 31.5
    assert reading.voltage_v == pytest.approx(3.87)
    assert reading.current_ma == pytest.approx(450.0)


def test_termux_current_sign_follows_status(empty_sysfs, bin_dir):
    charging = {**TERMUX_JSON, "plugged": "PLUGGED_AC", "status": "CHARGING", "current": 900000}
    write_script(bin_dir, f"echo '{json.dumps(charging)}'\n")

    reading = make_reader(empty_sysfs).read()

    assert reading.charging is True
    assert reading.current_ma == pytest.approx(-900.0)


def test_termux_current_in_milliamps(empty_sysfs, bin_dir):
    write_script(bin_dir, f"echo '{json.dumps({**TERMUX_JSON, 'current': 337})}'\n")

    assert make_reader(empty_sysfs).read().current_ma == pytest.approx(337.0)


def test_termux_missing_falls_through_to_sysfs(empty_sysfs, bin_dir):
    power_supply, _thermal = empty_sysfs
    battery = power_supply / "battery"
    write_sysfs_file(battery, "type", "Battery")
    write_sysfs_file(battery, "capacity", "88")

    reading = make_reader(empty_sysfs).read()

    assert reading.source == "sysfs"
    assert reading.battery_percent == 88.0


def test_termux_garbage_falls_through(empty_sysfs, bin_dir, caplog):
    write_script(bin_dir, "echo 'this is not json {'\n")

    with caplog.at_level(logging.WARNING, logger="r1chat.power.sensors"):
        reading = make_reader(empty_sysfs).read()

    assert reading.source == "none"
    assert "invalid output" in caplog.text


def test_termux_json_without_percentage_falls_through(empty_sysfs, bin_dir, caplog):
    write_script(bin_dir, "echo '{\"status\": \"CHARGING\"}'\n")

    with caplog.at_level(logging.WARNING, logger="r1chat.power.sensors"):
        reading = make_reader(empty_sysfs).read()

    assert reading.source == "none"
    assert "percentage" in caplog.text


def test_termux_failing_command_falls_through(empty_sysfs, bin_dir, caplog):
    write_script(bin_dir, "echo 'Termux:API is not installed' >&2\nexit 1\n")

    with caplog.at_level(logging.WARNING, logger="r1chat.power.sensors"):
        reading = make_reader(empty_sysfs).read()

    assert reading.source == "none"
    assert "failed" in caplog.text


def test_termux_hang_is_killed_with_children(empty_sysfs, bin_dir, caplog):
    marker = f"{uuid.uuid4().int % 10_000}.{uuid.uuid4().int % 10_000}"
    script = write_script(
        bin_dir,
        # A looping subshell and a long sleep: both must die with the group.
        f"( while :; do sleep 1; done ) &\nsleep 3{marker}\n",
    )
    reader = make_reader(empty_sysfs, termux_timeout_s=0.5)

    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="r1chat.power.sensors"):
        reading = reader.read()
    elapsed = time.monotonic() - started

    assert reading.source == "none"
    assert "timed out" in caplog.text
    # The bound is the timeout plus slack for a loaded machine, not a speed goal.
    assert elapsed < 0.5 + 3.0
    assert wait_until_gone(str(script)) == []
    assert wait_until_gone(f"sleep 3{marker}") == []
    assert psutil.Process().children(recursive=True) == []


def test_termux_hang_not_retried_until_backoff(tmp_path, empty_sysfs, bin_dir):
    runs = tmp_path / "runs"
    write_script(bin_dir, f"echo run >> {runs}\nexec sleep 30\n")
    clock = FakeClock()
    reader = make_reader(empty_sysfs, clock=clock, termux_timeout_s=0.3, termux_retry_s=60.0)

    reader.read()
    clock.now += 30
    reader.read()
    assert runs.read_text().count("run") == 1

    clock.now += 31
    reader.read()
    assert runs.read_text().count("run") == 2


def test_termux_result_cached(tmp_path, empty_sysfs, bin_dir):
    runs = tmp_path / "runs"
    write_script(bin_dir, f"echo run >> {runs}\necho '{json.dumps(TERMUX_JSON)}'\n")
    clock = FakeClock()
    reader = make_reader(empty_sysfs, clock=clock, termux_cache_s=5.0)

    first = reader.read()
    clock.now += 4
    second = reader.read()

    assert runs.read_text().count("run") == 1
    assert second.battery_percent == 57.0
    # A cached reading keeps the time it was measured.
    assert second.time == first.time

    clock.now += 2
    third = reader.read()
    assert runs.read_text().count("run") == 2
    assert third.time == clock.now


def test_termux_never_runs_twice_at_once(tmp_path, empty_sysfs, bin_dir):
    runs = tmp_path / "runs"
    write_script(
        bin_dir,
        f"echo start >> {runs}\nsleep 0.5\necho end >> {runs}\necho '{json.dumps(TERMUX_JSON)}'\n",
    )
    reader = make_reader(empty_sysfs, clock=time.monotonic, termux_timeout_s=3.0)
    readings: list[SensorReading] = []

    threads = [threading.Thread(target=lambda: readings.append(reader.read())) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert runs.read_text().split() == ["start", "end"]
    assert [reading.battery_percent for reading in readings] == [57.0, 57.0, 57.0]


# --- sysfs ---


def test_sysfs_battery_parsed(empty_sysfs):
    power_supply, _thermal = empty_sysfs
    write_sysfs_file(power_supply / "AC", "type", "Mains")
    write_sysfs_file(power_supply / "AC", "online", "0")
    battery = power_supply / "BAT0"
    for name, value in {
        "type": "Battery",
        "capacity": "57",
        "status": "Discharging",
        "temp": "312",
        "current_now": "-850000",
        "voltage_now": "3870000",
    }.items():
        write_sysfs_file(battery, name, value)

    reading = make_reader(empty_sysfs).read()

    assert reading.source == "sysfs"
    assert reading.battery_percent == 57.0
    assert reading.charging is False
    assert reading.battery_temp_c == pytest.approx(31.2)
    assert reading.current_ma == pytest.approx(850.0)
    assert reading.voltage_v == pytest.approx(3.87)
    assert reading.power_w == pytest.approx(0.85 * 3.87)


def test_sysfs_unknown_status_uses_mains_online(empty_sysfs):
    power_supply, _thermal = empty_sysfs
    write_sysfs_file(power_supply / "AC", "type", "Mains")
    write_sysfs_file(power_supply / "AC", "online", "1")
    write_sysfs_file(power_supply / "BAT1", "type", "Battery")
    write_sysfs_file(power_supply / "BAT1", "capacity", "90")
    write_sysfs_file(power_supply / "BAT1", "status", "Unknown")

    reading = make_reader(empty_sysfs).read()

    assert reading.charging is True


def test_sysfs_power_now_gives_current(empty_sysfs):
    power_supply, _thermal = empty_sysfs
    battery = power_supply / "BAT0"
    write_sysfs_file(battery, "type", "Battery")
    write_sysfs_file(battery, "capacity", "40")
    write_sysfs_file(battery, "status", "Discharging")
    write_sysfs_file(battery, "power_now", "8000000")
    write_sysfs_file(battery, "voltage_now", "16000000")

    reading = make_reader(empty_sysfs).read()

    assert reading.current_ma == pytest.approx(500.0)
    assert reading.power_w == pytest.approx(8.0)


def test_sysfs_skips_non_battery_supplies(empty_sysfs):
    power_supply, _thermal = empty_sysfs
    write_sysfs_file(power_supply / "usb", "type", "USB")
    write_sysfs_file(power_supply / "usb", "capacity", "12")

    assert make_reader(empty_sysfs).read().source == "none"


def test_thermal_picks_hottest_cpu_zone(empty_sysfs):
    _power_supply, thermal = empty_sysfs
    zones = {
        "thermal_zone0": ("cpu-0-0-usr", "45000"),
        "thermal_zone1": ("cpu-1-2-usr", "61300"),
        "thermal_zone2": ("battery", "90000"),
        "thermal_zone3": ("soc", "95"),
        "thermal_zone4": ("cpuss-1", "-273000"),
        "thermal_zone5": ("x86_pkg_temp", "garbage"),
    }
    for zone, (zone_type, temp) in zones.items():
        write_sysfs_file(thermal / zone, "type", zone_type)
        write_sysfs_file(thermal / zone, "temp", temp)

    reading = make_reader(empty_sysfs).read()

    assert reading.cpu_temp_c == pytest.approx(61.3)
    assert reading.source == "thermal"
    assert reading.battery_percent is None


def test_thermal_joins_battery_source(empty_sysfs):
    power_supply, thermal = empty_sysfs
    write_sysfs_file(power_supply / "BAT0", "type", "Battery")
    write_sysfs_file(power_supply / "BAT0", "capacity", "70")
    write_sysfs_file(thermal / "thermal_zone0", "type", "x86_pkg_temp")
    write_sysfs_file(thermal / "thermal_zone0", "temp", "52000")

    reading = make_reader(empty_sysfs).read()

    assert reading.source == "sysfs+thermal"
    assert reading.cpu_temp_c == 52.0


# --- psutil ---


def test_psutil_battery_used_last(empty_sysfs, bin_dir, monkeypatch):
    Battery = namedtuple("Battery", "percent secsleft power_plugged")
    monkeypatch.setattr(psutil, "sensors_battery", lambda: Battery(33.0, 3600, False))
    power_supply, thermal = empty_sysfs

    reading = SensorReader(
        clock=FakeClock(), power_supply_root=power_supply, thermal_root=thermal
    ).read()

    assert reading.source == "psutil"
    assert reading.battery_percent == 33.0
    assert reading.charging is False
