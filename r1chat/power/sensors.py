"""Battery and temperature readings from the best source this device offers.

Battery sources, best first: the simulated file named by `R1CHAT_SENSORS`,
Termux:API's `termux-battery-status`, `/sys/class/power_supply/*`, and
`psutil.sensors_battery()`. The CPU temperature comes from the hottest CPU
thermal zone under `/sys/class/thermal` unless the battery source gave one.
A device with no readable source gives a reading whose fields are all None
and whose source is "none". A missing, broken or hanging source is logged and
skipped, never raised.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

SENSORS_ENV = "R1CHAT_SENSORS"
TERMUX_COMMAND = "termux-battery-status"
POWER_SUPPLY_ROOT = Path("/sys/class/power_supply")
THERMAL_ROOT = Path("/sys/class/thermal")

# Thermal zone types that measure a CPU: Qualcomm "cpu-1-0-usr", "cpuss-0",
# MediaTek "mtktscpu", Intel "x86_pkg_temp". Zones such as "battery", "skin"
# or Qualcomm's "soc" (the battery's state of charge) do not match.
_CPU_ZONE_PATTERN = re.compile(r"cpu|x86_pkg|cluster|silver|gold|prime", re.IGNORECASE)


@dataclass(frozen=True)
class SensorReading:
    """One reading of battery and temperature; None marks an unknown value.

    `current_ma` is positive while the battery discharges and negative while it
    charges. `time` is the reader's clock (monotonic seconds) when the values
    were measured, so a cached termux reading keeps the time of its run.
    """

    battery_percent: float | None = None
    charging: bool | None = None
    battery_temp_c: float | None = None
    cpu_temp_c: float | None = None
    current_ma: float | None = None
    voltage_v: float | None = None
    source: str = "none"
    time: float = 0.0

    def to_json(self) -> dict[str, object]:
        """Return the `sensors` object of `r1chat status --json`."""
        return {
            "battery_percent": self.battery_percent,
            "charging": self.charging,
            "battery_temp_c": self.battery_temp_c,
            "cpu_temp_c": self.cpu_temp_c,
            "current_ma": self.current_ma,
            "voltage_v": self.voltage_v,
            "source": self.source,
        }

    @property
    def power_w(self) -> float | None:
        """Battery power in watts (current × voltage), positive while discharging."""
        if self.current_ma is None or self.voltage_v is None:
            return None
        return self.current_ma / 1000.0 * self.voltage_v


# Fields of a battery source's partial reading, before the CPU temperature is merged in.
_READING_FIELDS = (
    "battery_percent",
    "charging",
    "battery_temp_c",
    "cpu_temp_c",
    "current_ma",
    "voltage_v",
)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def discharge_current_ma(raw_ma: float, charging: bool | None) -> float:
    """Return `raw_ma` with the sign "positive = discharging".

    Phones disagree on the sign of the battery current, so the charging status
    decides it. With an unknown status the Android convention applies
    (positive means current flows into the battery), so the sign is flipped.
    """
    if charging is True:
        return -abs(raw_ma)
    if charging is False:
        return abs(raw_ma)
    return -raw_ma


def parse_sensors_file(data: object) -> dict[str, object]:
    """Validate the JSON of a `R1CHAT_SENSORS` file and return its reading fields.

    The file contains the fields of `SensorReading.to_json()`. A missing field
    or null means unknown, and other keys (such as "source") are ignored.

    Raises:
        ValueError: the JSON is not an object, or a field has the wrong type.
    """
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    values: dict[str, object] = {}
    for name in _READING_FIELDS:
        value = data.get(name)
        if value is None:
            continue
        if name == "charging":
            if not isinstance(value, bool):
                raise ValueError(f"charging must be true, false or null, not {value!r}")
        elif not _is_number(value):
            raise ValueError(f"{name} must be a number or null, not {value!r}")
        else:
            value = float(value)
        values[name] = value
    return values


def parse_termux_battery(output: str) -> dict[str, object]:
    """Convert the JSON printed by `termux-battery-status` into reading fields.

    Termux:API reports percentage, plugged and status, temperature in °C,
    voltage in mV and current in µA with a phone-dependent sign.

    Raises:
        ValueError: the output is not JSON or has no numeric "percentage".
    """
    data = json.loads(output)
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    percent = data.get("percentage")
    if not _is_number(percent):
        raise ValueError(f"percentage must be a number, not {percent!r}")

    values: dict[str, object] = {"battery_percent": float(percent)}
    charging = _termux_charging(data.get("plugged"), data.get("status"))
    values["charging"] = charging
    temperature = data.get("temperature")
    if _is_number(temperature):
        values["battery_temp_c"] = float(temperature)
    voltage_mv = data.get("voltage")
    if _is_number(voltage_mv) and voltage_mv > 0:
        values["voltage_v"] = voltage_mv / 1000.0
    current = data.get("current")
    if _is_number(current):
        # NOTE: some vendors put mA into this µA field. A phone that is awake
        # draws far more than 10 mA, so smaller magnitudes are read as mA.
        current_ma = current if abs(current) < 10_000 else current / 1000.0
        values["current_ma"] = discharge_current_ma(current_ma, charging)
    return values


def _termux_charging(plugged: object, status: object) -> bool | None:
    if isinstance(plugged, str) and plugged:
        return plugged.upper() != "UNPLUGGED"
    if isinstance(status, str):
        upper = status.upper()
        if upper in ("CHARGING", "FULL"):
            return True
        if upper in ("DISCHARGING", "NOT_CHARGING"):
            return False
    return None


def run_with_timeout(argv: list[str], timeout_s: float) -> str:
    """Run `argv` in its own process group and return its stdout.

    On timeout the whole group is killed with SIGKILL and reaped, so a hung
    command leaves no process behind, including children it started.

    Raises:
        subprocess.TimeoutExpired: the command ran longer than `timeout_s`.
        subprocess.CalledProcessError: the command exited with a non-zero status.
        OSError: the command could not be started.
    """
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        stdout, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        raise
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, argv, output=stdout)
    return stdout.decode("utf-8", errors="replace")


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        # The pipe closes once every process of the group is dead.
        process.communicate(timeout=1.0)
    except subprocess.TimeoutExpired:
        # A descendant that moved to another session keeps the pipe open.
        process.stdout.close()
        process.wait()


def read_power_supply(root: Path = POWER_SUPPLY_ROOT) -> dict[str, object] | None:
    """Read the first battery under a sysfs `power_supply` folder.

    Units in sysfs: capacity in %, temp in tenths of °C, current_now in µA,
    voltage_now in µV, power_now in µW. Returns None when no battery is readable.
    """
    try:
        supplies = sorted(root.iterdir())
    except OSError:
        return None
    external_online = any(
        _read_text(supply / "type") in ("Mains", "USB", "Wireless")
        and _read_number(supply / "online") == 1
        for supply in supplies
    )
    for supply in supplies:
        if _read_text(supply / "type") != "Battery":
            continue
        capacity = _read_number(supply / "capacity")
        if capacity is None:
            continue
        return _battery_values(supply, capacity, external_online)
    return None


def _battery_values(supply: Path, capacity: float, external_online: bool) -> dict[str, object]:
    status = _read_text(supply / "status")
    if status in ("Charging", "Full", "Not charging"):
        # "Not charging" means plugged in but held, so the battery is not draining.
        charging: bool | None = True
    elif status == "Discharging":
        charging = False
    else:
        charging = True if external_online else None

    values: dict[str, object] = {"battery_percent": capacity, "charging": charging}
    temp = _read_number(supply / "temp")
    if temp is not None:
        values["battery_temp_c"] = temp / 10.0
    voltage_uv = _read_number(supply / "voltage_now")
    if voltage_uv is not None and voltage_uv > 0:
        values["voltage_v"] = voltage_uv / 1_000_000.0
    current_ua = _read_number(supply / "current_now")
    power_uw = _read_number(supply / "power_now")
    if current_ua is not None:
        values["current_ma"] = discharge_current_ma(current_ua / 1000.0, charging)
    elif power_uw is not None and voltage_uv:
        # Some laptop batteries report power instead of current.
        values["current_ma"] = discharge_current_ma(power_uw / voltage_uv * 1000.0, charging)
    return values


def read_psutil_battery() -> dict[str, object] | None:
    """Read percent and plug state from `psutil.sensors_battery()`, if psutil has them."""
    try:
        import psutil
    except ImportError:
        return None
    try:
        battery = psutil.sensors_battery()
    except (OSError, AttributeError, RuntimeError) as error:
        logger.debug("psutil.sensors_battery() failed: %s", error)
        return None
    if battery is None or not _is_number(battery.percent):
        return None
    return {"battery_percent": float(battery.percent), "charging": battery.power_plugged}


def read_cpu_temperature(root: Path = THERMAL_ROOT) -> float | None:
    """Return the hottest CPU thermal zone in °C, or None when none is readable.

    Zone temperatures are in m°C. Values outside 0–150 °C after conversion are
    dropped because sensors report placeholders such as 0 or -273 when idle or
    broken.
    """
    hottest: float | None = None
    for zone in sorted(root.glob("thermal_zone*")):
        zone_type = _read_text(zone / "type")
        if zone_type is None or not _CPU_ZONE_PATTERN.search(zone_type):
            continue
        value = _read_number(zone / "temp")
        if value is None:
            continue
        # NOTE: a few kernels report whole °C; no CPU runs below 1000 m°C (1 °C).
        celsius = value / 1000.0 if abs(value) >= 1000 else value
        if 0 < celsius <= 150 and (hottest is None or celsius > hottest):
            hottest = celsius
    return hottest


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _read_number(path: Path) -> float | None:
    text = _read_text(path)
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


class SensorReader:
    """Reads sensors with caching, a timeout and a lock around `termux-battery-status`.

    Args:
        clock: monotonic seconds; tests inject a fake one.
        termux_command: name or path of the Termux:API command.
        termux_timeout_s: seconds before a hung command's process group is killed.
        termux_cache_s: seconds a termux reading is reused.
        termux_retry_s: seconds before a failed or hung command is tried again.
        power_supply_root, thermal_root: sysfs folders, replaced in tests.
        use_psutil: whether `psutil.sensors_battery()` is tried.
        environ: where `R1CHAT_SENSORS` is looked up; defaults to `os.environ`.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        termux_command: str = TERMUX_COMMAND,
        termux_timeout_s: float = 3.0,
        termux_cache_s: float = 5.0,
        termux_retry_s: float = 60.0,
        power_supply_root: Path = POWER_SUPPLY_ROOT,
        thermal_root: Path = THERMAL_ROOT,
        use_psutil: bool = True,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.clock = clock
        self.termux_command = termux_command
        self.termux_timeout_s = termux_timeout_s
        self.termux_cache_s = termux_cache_s
        self.termux_retry_s = termux_retry_s
        self.power_supply_root = power_supply_root
        self.thermal_root = thermal_root
        self.use_psutil = use_psutil
        self._environ = environ
        self._termux_lock = threading.Lock()
        # (clock time, values or None for a failure) of the last termux run.
        self._termux_cache: tuple[float, dict[str, object] | None] | None = None
        # (path, mtime_ns, size) -> parsed values or None for an invalid file.
        self._file_key: tuple[str, int, int] | None = None
        self._file_values: dict[str, object] | None = None

    def read(self) -> SensorReading:
        """Return a reading from the best available source, skipping sources that fail."""
        now = self.clock()
        simulated = self._read_sensors_file()
        if simulated is not None:
            return SensorReading(**simulated, source="simulated", time=now)

        values, source, measured_at = self._read_battery(now)
        sources = [source] if source else []
        if values.get("cpu_temp_c") is None:
            cpu_temp = read_cpu_temperature(self.thermal_root)
            if cpu_temp is not None:
                values["cpu_temp_c"] = cpu_temp
                sources.append("thermal")
        return SensorReading(**values, source="+".join(sources) or "none", time=measured_at)

    def _read_battery(self, now: float) -> tuple[dict[str, object], str | None, float]:
        termux = self._read_termux()
        if termux is not None:
            measured_at, values = termux
            return dict(values), "termux-api", measured_at
        values = read_power_supply(self.power_supply_root)
        if values is not None:
            return values, "sysfs", now
        if self.use_psutil:
            values = read_psutil_battery()
            if values is not None:
                return values, "psutil", now
        return {}, None, now

    def _read_sensors_file(self) -> dict[str, object] | None:
        environ = os.environ if self._environ is None else self._environ
        value = environ.get(SENSORS_ENV)
        if not value:
            return None
        path = Path(value).expanduser()
        try:
            stat = path.stat()
        except OSError as error:
            key = (str(path), -1, -1)
            if key != self._file_key:
                logger.warning("Cannot read %s=%s: %s", SENSORS_ENV, path, error)
                self._file_key, self._file_values = key, None
            return None

        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key == self._file_key:
            return self._file_values
        self._file_key = key
        try:
            self._file_values = parse_sensors_file(json.loads(path.read_text(encoding="utf-8")))
            logger.debug("Read simulated sensors from %s: %s", path, self._file_values)
        except (OSError, UnicodeDecodeError, ValueError) as error:
            logger.warning("Ignoring invalid %s file %s: %s", SENSORS_ENV, path, error)
            self._file_values = None
        return self._file_values

    def _read_termux(self) -> tuple[float, dict[str, object]] | None:
        """Return (time measured, values) from the cache or a new run, or None."""
        cached = self._cached_termux()
        if cached is not None:
            return _successful(cached)
        command = shutil.which(self.termux_command)
        if command is None:
            return None
        # Waits at most one timeout for a run in another thread, then uses its result.
        if not self._termux_lock.acquire(timeout=self.termux_timeout_s + 1.0):
            logger.debug("%s is still running in another thread", self.termux_command)
            return None
        try:
            cached = self._cached_termux()
            if cached is None:
                values = self._run_termux(command)
                cached = self._termux_cache = (self.clock(), values)
            return _successful(cached)
        finally:
            self._termux_lock.release()

    def _cached_termux(self) -> tuple[float, dict[str, object] | None] | None:
        if self._termux_cache is None:
            return None
        stamp, values = self._termux_cache
        max_age = self.termux_cache_s if values is not None else self.termux_retry_s
        return self._termux_cache if self.clock() - stamp < max_age else None

    def _run_termux(self, command: str) -> dict[str, object] | None:
        try:
            output = run_with_timeout([command], self.termux_timeout_s)
        except subprocess.TimeoutExpired:
            logger.warning(
                "%s timed out after %.1f s; is the Termux:API app installed?",
                command,
                self.termux_timeout_s,
            )
            return None
        except (OSError, subprocess.CalledProcessError) as error:
            logger.warning("%s failed: %s", command, error)
            return None
        try:
            values = parse_termux_battery(output)
        except ValueError as error:
            logger.warning("Ignoring invalid output of %s: %s: %r", command, error, output[:200])
            return None
        logger.debug("%s: %s", command, values)
        return values


def _successful(
    cached: tuple[float, dict[str, object] | None],
) -> tuple[float, dict[str, object]] | None:
    stamp, values = cached
    return None if values is None else (stamp, values)


_default_reader: SensorReader | None = None
_default_reader_lock = threading.Lock()


def read_sensors() -> SensorReading:
    """Read sensors through one process-wide `SensorReader`, so its cache is shared."""
    global _default_reader
    with _default_reader_lock:
        if _default_reader is None:
            _default_reader = SensorReader()
    return _default_reader.read()
