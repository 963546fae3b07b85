"""The governor's policy with simulated readings, a fixed topology and a fake clock."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from r1chat.config import Settings
from r1chat.power.governor import (
    DEFAULT_CORE_WATTS,
    BenchPoint,
    Governor,
    Plan,
    PlanChanged,
    apply_threads_and_affinity,
    parse_bench,
)
from r1chat.power.sensors import SensorReader, SensorReading
from r1chat.power.topology import CoreClass, Topology

# A 1+4+3 phone: cpu7 prime, cpu3-6 performance, cpu0-2 efficiency.
PHONE = Topology(
    classes=(
        CoreClass("prime", 3187200, (7,)),
        CoreClass("performance", 2803200, (3, 4, 5, 6)),
        CoreClass("efficiency", 2016000, (0, 1, 2)),
    ),
    source="cpufreq",
)
# Four performance and four efficiency cores, so thread counts vary with the budget.
MIDRANGE = Topology(
    classes=(
        CoreClass("performance", 2400000, (4, 5, 6, 7)),
        CoreClass("efficiency", 1800000, (0, 1, 2, 3)),
    ),
    source="cpufreq",
)


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeReader:
    """Returns whatever reading the test put in `current`."""

    def __init__(self, reading: SensorReading | None = None) -> None:
        self.current = reading or SensorReading()

    def __call__(self) -> SensorReading:
        return self.current


def battery(percent, charging=False, **extra) -> SensorReading:
    return SensorReading(battery_percent=percent, charging=charging, source="test", **extra)


def make_governor(topology=MIDRANGE, settings=None, **kwargs):
    clock = kwargs.pop("clock", FakeClock())
    reader = kwargs.pop("reader", FakeReader())
    governor = Governor(
        settings or Settings(), reader=reader, topology=topology, clock=clock, **kwargs
    )
    events: list[PlanChanged] = []
    governor.subscribe(events.append)
    return governor, clock, events


# --- tier ---


def test_discharging_below_low_swaps_to_low():
    governor, _clock, events = make_governor()

    assert governor.plan(battery(25)).tier == "normal"
    plan = governor.plan(battery(19))

    assert plan.tier == "low"
    assert plan.reason.split(",")[0] == "battery_low"
    assert "19%" in plan.message
    assert len(events) == 1
    assert events[0].tier_changed
    assert events[0].previous.tier == "normal"
    assert events[0].plan is plan


@pytest.mark.parametrize(
    ("reading", "reason"),
    [
        (battery(19, charging=True), "charging"),
        (battery(31), "battery_ok"),
        (battery(30), "battery_ok"),
    ],
)
def test_charging_or_recovered_swaps_back(reading, reason):
    governor, _clock, events = make_governor()
    governor.plan(battery(25))
    governor.plan(battery(19))

    plan = governor.plan(reading)

    assert plan.tier == "normal"
    assert plan.reason.split(",")[0] == reason
    assert [event.plan.tier for event in events if event.tier_changed] == ["low", "normal"]


def test_swinging_readings_do_not_flap():
    governor, _clock, events = make_governor()
    tiers = [governor.plan(battery(percent)).tier for percent in [25, 19, 21, 19, 21, 29.9, 21]]

    assert tiers == ["normal", "low", "low", "low", "low", "low", "low"]
    assert sum(event.tier_changed for event in events) == 1


def test_swinging_above_low_stays_normal():
    governor, _clock, events = make_governor()
    tiers = [governor.plan(battery(percent)).tier for percent in [21, 20, 22, 20.0]]

    assert tiers == ["normal"] * 4
    assert events == []


def test_low_tier_between_thresholds_says_why():
    governor, _clock, _events = make_governor()
    governor.plan(battery(15))

    plan = governor.plan(battery(25))

    assert plan.tier == "low"
    assert plan.reason.startswith("battery_below_normal")
    assert "30%" in plan.message


def test_unknown_charging_counts_as_discharging():
    governor, _clock, _events = make_governor()

    assert governor.plan(battery(10, charging=None)).tier == "low"


def test_thresholds_come_from_settings():
    settings = Settings(low_battery_percent=50.0, normal_battery_percent=60.0)
    governor, _clock, _events = make_governor(settings=settings)

    assert governor.plan(battery(45)).tier == "low"
    assert governor.plan(battery(55)).tier == "low"
    assert governor.plan(battery(60)).tier == "normal"


def test_unknown_sensors_plan_normal_within_budget():
    governor, _clock, events = make_governor()

    plan = governor.plan(SensorReading())

    assert plan.tier == "normal"
    assert plan.reason.split(",")[0] == "sensors_unknown"
    assert plan.threads == 4
    assert plan.pause_s == 0.0
    assert events == []


def test_unknown_sensors_keep_low_tier():
    governor, _clock, events = make_governor()
    governor.plan(battery(10))

    plan = governor.plan(SensorReading())

    assert plan.tier == "low"
    assert plan.reason.startswith("sensors_unknown")
    assert sum(event.tier_changed for event in events) == 0


# --- threads and the power budget ---


@pytest.mark.parametrize(
    ("budget", "core_watts", "expected"),
    [
        (5.0, {"performance": 1.5}, 3),
        (5.0, {"performance": 1.0}, 4),
        (2.0, {"performance": 1.0}, 2),
        (1.9, {"performance": 1.0}, 1),
        (3.0, {"performance": 2.0}, 1),
    ],
)
def test_budget_and_core_estimate_give_threads(budget, core_watts, expected):
    governor, _clock, _events = make_governor(
        settings=Settings(power_budget_w=budget), core_watts=core_watts
    )

    plan = governor.plan(battery(80))

    assert plan.threads == expected
    assert plan.watts_estimate == pytest.approx(expected * core_watts["performance"])
    assert plan.cores == (4, 5, 6, 7)[:expected]


def test_threads_never_exceed_performance_cores():
    governor, _clock, _events = make_governor(settings=Settings(power_budget_w=100.0))

    plan = governor.plan(battery(80))

    assert plan.threads == 4
    assert "performance_cores" in plan.reason.split(",")


def test_default_estimates_on_phone():
    governor, _clock, _events = make_governor(topology=PHONE)

    plan = governor.plan(battery(80))

    # One prime core at full load is estimated at the whole 5 W budget.
    assert plan.threads == 1
    assert plan.cores == (7,)
    assert plan.watts_estimate == pytest.approx(DEFAULT_CORE_WATTS["prime"])
    assert plan.reason.split(",")[1] == "power_budget"


def test_larger_budget_adds_performance_cores():
    governor, _clock, _events = make_governor(topology=PHONE, settings=Settings(power_budget_w=8.0))

    plan = governor.plan(battery(80))

    # 5.0 W prime + 2 × 1.2 W performance = 7.4 W; a third would make 8.6 W.
    assert plan.threads == 3
    assert plan.cores == (7, 3, 4)
    assert plan.watts_estimate == pytest.approx(7.4)


def test_at_least_one_thread_over_budget():
    governor, _clock, _events = make_governor(topology=PHONE, settings=Settings(power_budget_w=1.0))

    plan = governor.plan(battery(80))

    assert plan.threads == 1
    assert "over_budget" in plan.reason.split(",")


def test_measured_power_above_budget_reduces_threads():
    reader = FakeReader(battery(80))
    governor, clock, events = make_governor(reader=reader)
    assert governor.plan().threads == 4

    clock.now += 30
    # 2.4 A at 3.8 V is 9.1 W, against an estimate of 4.8 W for 4 threads.
    reader.current = battery(79, current_ma=2400.0, voltage_v=3.8)
    plan = governor.plan()

    assert plan.threads < 4
    assert plan.watts_estimate <= 5.0
    assert "measured_power" in plan.reason.split(",")
    assert governor.power_correction > 1.0
    assert events[-1].threads_changed


def test_measured_power_ignored_while_charging():
    reader = FakeReader(battery(80, charging=True))
    governor, clock, _events = make_governor(reader=reader)
    governor.plan()

    clock.now += 30
    reader.current = battery(80, charging=True, current_ma=-2400.0, voltage_v=3.8)

    assert governor.plan().threads == 4
    assert governor.power_correction == 1.0


def test_measured_power_below_estimate_adds_nothing():
    reader = FakeReader(battery(80))
    governor, clock, _events = make_governor(reader=reader, core_watts={"performance": 1.5})
    assert governor.plan().threads == 3

    clock.now += 30
    reader.current = battery(80, current_ma=300.0, voltage_v=3.8)

    assert governor.plan().threads == 3
    assert governor.power_correction == 1.0


def test_measured_power_is_smoothed_over_time():
    reader = FakeReader(battery(80))
    governor, clock, _events = make_governor(reader=reader, power_smoothing_s=10.0)
    governor.plan()

    clock.now += 1
    reader.current = battery(80, current_ma=2400.0, voltage_v=3.8)
    governor.plan()
    after_one_second = governor.power_correction
    clock.now += 60
    governor.plan()

    assert 1.0 < after_one_second < 1.2
    assert governor.power_correction > 1.5


def test_bench_watts_override_estimate():
    bench = parse_bench({"1": 1.0, "2": 2.0, "3": 4.5, "4": 6.0})
    governor, _clock, _events = make_governor(bench=bench)

    plan = governor.plan(battery(80))

    assert plan.threads == 3
    assert plan.watts_estimate == pytest.approx(4.5)


def test_bench_picks_fastest_within_budget():
    bench = parse_bench(
        {
            1: {"watts": 1.2, "decode_tokens_per_s": 8.0},
            2: {"watts": 2.4, "decode_tokens_per_s": 14.0},
            3: {"watts": 3.6, "decode_tokens_per_s": 12.0},
            4: {"watts": 4.8, "decode_tokens_per_s": 13.0},
        }
    )
    governor, _clock, _events = make_governor(bench=bench)

    plan = governor.plan(battery(80))

    assert plan.threads == 2
    assert plan.reason.split(",")[-1] == "bench_fastest"


@pytest.mark.parametrize(
    "data",
    [
        {"one": 1.0},
        {"0": 1.0},
        {"2": -1.0},
        {"2": {"watts": "high"}},
        {"2": {"watts": 1.0, "decode_tokens_per_s": 0}},
        {"2": True},
    ],
)
def test_parse_bench_rejects_bad_data(data):
    with pytest.raises(ValueError):
        parse_bench(data)


def test_parse_bench_accepts_json_keys():
    assert parse_bench(json.loads('{"2": {"watts": 2.5, "decode_tokens_per_s": 9}}')) == {
        2: BenchPoint(2.5, 9.0)
    }


# --- heat ---


@pytest.mark.parametrize(
    ("reading", "code"),
    [
        (battery(80, battery_temp_c=40.0), "battery_hot"),
        (battery(80, cpu_temp_c=75.0), "cpu_hot"),
    ],
)
def test_hot_readings_reduce_threads(reading, code):
    governor, _clock, events = make_governor()
    assert governor.plan(battery(80, battery_temp_c=30.0, cpu_temp_c=50.0)).threads == 4

    plan = governor.plan(reading)

    assert plan.threads == 2
    assert plan.pause_s == 0.0
    assert code in plan.reason.split(",")
    assert events[-1].threads_changed


def test_cool_readings_keep_threads():
    governor, _clock, _events = make_governor()

    plan = governor.plan(battery(80, battery_temp_c=39.9, cpu_temp_c=74.9))

    assert plan.threads == 4
    assert "hot" not in plan.reason


def test_thermal_hysteresis():
    governor, _clock, _events = make_governor()

    assert governor.plan(battery(80, cpu_temp_c=76.0)).threads == 2
    # Still hot until 1 °C below the limit.
    assert governor.plan(battery(80, cpu_temp_c=74.5)).threads == 2
    assert governor.plan(battery(80, cpu_temp_c=73.9)).threads == 4
    # Coming from cool, 74.5 °C is below the limit.
    assert governor.plan(battery(80, cpu_temp_c=74.5)).threads == 4


def test_far_too_hot_pauses_between_answers():
    governor, _clock, events = make_governor(hot_pause_s=45.0)
    governor.plan(battery(80))

    plan = governor.plan(battery(80, battery_temp_c=45.5))

    assert plan.threads == 1
    assert plan.pause_s == 45.0
    assert plan.reason.split(",")[-2:] == ["battery_hot", "too_hot"]
    assert "45 s" in plan.message
    assert events[-1].pause_changed

    cooled = governor.plan(battery(80, battery_temp_c=41.0))
    assert cooled.pause_s == 0.0
    assert cooled.threads == 2


# --- events and logging ---


def test_no_event_when_nothing_changes():
    governor, _clock, events = make_governor()
    for _ in range(3):
        governor.plan(battery(80))

    assert events == []


def test_failing_listener_does_not_stop_governor(caplog):
    governor, _clock, events = make_governor()

    def broken(event):
        raise RuntimeError("listener bug")

    governor.subscribe(broken)
    governor.plan(battery(80))
    with caplog.at_level(logging.WARNING, logger="r1chat.power.governor"):
        plan = governor.plan(battery(10))

    assert plan.tier == "low"
    assert len(events) == 1
    assert "listener" in caplog.text


def test_unsubscribe_stops_events():
    governor, _clock, events = make_governor()
    governor.unsubscribe(events.append)
    governor.plan(battery(80))
    governor.plan(battery(10))

    assert events == []


def test_decisions_logged_at_info(caplog):
    governor, _clock, _events = make_governor()

    with caplog.at_level(logging.INFO, logger="r1chat.power.governor"):
        governor.plan(battery(80))
        governor.plan(battery(10))
        governor.plan(battery(10))

    infos = [record for record in caplog.records if record.levelno == logging.INFO]
    assert len(infos) == 2
    assert "battery_low" in infos[1].getMessage()
    assert "tier=low" in infos[1].getMessage()


def test_plan_json_shape():
    governor, _clock, _events = make_governor()

    data = governor.plan(battery(80)).to_json()

    assert set(data) == {"tier", "threads", "cores", "watts_estimate", "reason", "message", "pause_s"}
    assert data["cores"] == [4, 5, 6, 7]


def test_chinese_message(monkeypatch):
    from r1chat import locale

    locale.set_language("zh_CN")
    governor, _clock, _events = make_governor()

    plan = governor.plan(battery(10, cpu_temp_c=90.0))

    assert "低功耗模型" in plan.message
    assert "暂停" in plan.message
    assert plan.reason == "battery_low,performance_cores,cpu_hot,too_hot"


# --- with the real sensor reader ---


def test_governor_follows_sensors_file(tmp_path, monkeypatch):
    path = tmp_path / "sensors.json"
    path.write_text(json.dumps({"battery_percent": 25, "charging": False}))
    monkeypatch.setenv("R1CHAT_SENSORS", str(path))
    clock = FakeClock()
    reader = SensorReader(clock=clock, power_supply_root=tmp_path, thermal_root=tmp_path)
    governor = Governor(Settings(), reader=reader, topology=MIDRANGE, clock=clock)

    assert governor.plan().tier == "normal"
    path.write_text(json.dumps({"battery_percent": 15, "charging": False, "cpu_temp_c": 80.0}))
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 1_000_000_000))
    plan = governor.plan()

    assert plan.tier == "low"
    assert plan.reading.battery_percent == 15.0
    assert plan.threads == 1
    assert plan.pause_s == 30.0


# --- affinity ---


def test_apply_sets_threads_and_pins_all_threads(tmp_path):
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("os.sched_setaffinity is not available here")
    target = min(os.sched_getaffinity(0))
    script = tmp_path / "pin.py"
    script.write_text(
        f"""
import json, os, threading
from r1chat.power.governor import Plan, apply_threads_and_affinity
from r1chat.power.sensors import SensorReading

stop = threading.Event()
worker = threading.Thread(target=stop.wait)
worker.start()
calls = []
plan = Plan(tier="normal", threads=1, cores=({target},), watts_estimate=1.0, reason="test",
            message="", pause_s=0.0, reading=SensorReading(), time=0.0)
pinned = apply_threads_and_affinity(plan, calls.append)
masks = [sorted(os.sched_getaffinity(int(tid))) for tid in os.listdir("/proc/self/task")]
stop.set()
worker.join()
print(json.dumps({{"pinned": pinned, "calls": calls, "masks": masks}}))
"""
    )

    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    data = json.loads(result.stdout)

    assert data["pinned"] is True
    assert data["calls"] == [1]
    assert len(data["masks"]) >= 2
    assert all(mask == [target] for mask in data["masks"])


def test_apply_with_forbidden_cores_returns_false():
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("os.sched_setaffinity is not available here")
    before = os.sched_getaffinity(0)
    plan = Plan(
        tier="normal",
        threads=1,
        cores=(4095,),
        watts_estimate=1.0,
        reason="test",
        message="",
        pause_s=0.0,
        reading=SensorReading(),
        time=0.0,
    )

    assert apply_threads_and_affinity(plan) is False
    assert os.sched_getaffinity(0) == before


def test_apply_without_cores_returns_false():
    plan = Plan("normal", 1, (), 1.0, "test", "", 0.0, SensorReading(), 0.0)

    assert apply_threads_and_affinity(plan) is False

