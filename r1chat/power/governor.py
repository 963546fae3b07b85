"""The power policy: which model tier to run and how many threads, from sensor readings.

Tier: below `low_battery_percent` and not charging, the low-power variant;
back to normal when charging or at `normal_battery_percent` and above. The gap
between the two thresholds keeps the tier from flapping.

Threads: at most one per performance core, and as many as fit the power
budget by a per-core estimate for each core class. The estimate grows by the
ratio of measured to estimated power while the phone runs on battery and
reports current and voltage. A hot battery or CPU halves the threads, and a
temperature far above the limit drops to one thread with a pause between
answers.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from r1chat.config import Settings
from r1chat.locale import _
from r1chat.power.sensors import SensorReader, SensorReading
from r1chat.power.topology import Topology, read_topology

logger = logging.getLogger(__name__)

TIER_NORMAL = "normal"
TIER_LOW = "low"

# Estimated watts drawn by one core of each class at full load while decoding.
# Phone reviews report roughly 5 W for one prime core at full load on recent
# Snapdragon chips and about 10 W with all eight cores busy. The prime value
# takes the first figure, and the other 5 W are split over a 1+4+3 layout as
# 4 × 1.2 W + 3 × 0.3 W. These are estimates, not measurements of this phone,
# so a setting or a saved benchmark overrides them.
DEFAULT_CORE_WATTS: dict[str, float] = {
    "prime": 5.0,
    "performance": 1.2,
    "efficiency": 0.3,
}


@dataclass(frozen=True)
class BenchPoint:
    """Measured cost and speed of decoding with one thread count."""

    watts: float
    decode_tokens_per_s: float | None = None


def parse_bench(data: Mapping[object, object]) -> dict[int, BenchPoint]:
    """Convert saved benchmark results into `{threads: BenchPoint}`.

    `data` maps a thread count (int, or str as in JSON) to either watts or an
    object with "watts" and optionally "decode_tokens_per_s".

    Raises:
        ValueError: a thread count is not a positive integer, or a value is not
            a positive number.
    """
    points: dict[int, BenchPoint] = {}
    for key, value in data.items():
        try:
            threads = int(key)
        except (TypeError, ValueError):
            raise ValueError(f"thread count must be an integer, not {key!r}") from None
        if threads < 1:
            raise ValueError(f"thread count must be at least 1, not {threads}")
        if isinstance(value, Mapping):
            watts = value.get("watts")
            speed = value.get("decode_tokens_per_s")
        else:
            watts, speed = value, None
        if not _is_positive(watts):
            raise ValueError(f"watts for {threads} threads must be a positive number, not {watts!r}")
        if speed is not None and not _is_positive(speed):
            raise ValueError(
                f"decode_tokens_per_s for {threads} threads must be a positive number, not {speed!r}"
            )
        points[threads] = BenchPoint(float(watts), None if speed is None else float(speed))
    return points


def _is_positive(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


@dataclass(frozen=True)
class Plan:
    """One decision of the governor.

    `reason` lists machine-readable codes joined by commas (for example
    "battery_low,power_budget"); `message` explains the same in the user's
    language. `pause_s` is how long to wait before the next answer (0 unless
    far too hot). `cores` are the core ids to pin the process to.
    """

    tier: str
    threads: int
    cores: tuple[int, ...]
    watts_estimate: float
    reason: str
    message: str
    pause_s: float
    reading: SensorReading
    time: float

    def to_json(self) -> dict[str, object]:
        """Return the `plan` object of `r1chat status --json`."""
        return {
            "tier": self.tier,
            "threads": self.threads,
            "cores": list(self.cores),
            "watts_estimate": round(self.watts_estimate, 2),
            "reason": self.reason,
            "message": self.message,
            "pause_s": self.pause_s,
        }


@dataclass(frozen=True)
class PlanChanged:
    """Event sent to subscribers when the tier, the thread count or the pause changes."""

    previous: Plan
    plan: Plan

    @property
    def tier_changed(self) -> bool:
        return self.previous.tier != self.plan.tier

    @property
    def threads_changed(self) -> bool:
        return self.previous.threads != self.plan.threads

    @property
    def pause_changed(self) -> bool:
        return self.previous.pause_s != self.plan.pause_s


@dataclass
class _Decision:
    """Reason codes and translated sentences collected while planning."""

    codes: list[str] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)

    def add(self, code: str, sentence: str) -> None:
        self.codes.append(code)
        self.sentences.append(sentence)

    def message(self) -> str:
        # Chinese sentences end in a full-width stop and take no space after it.
        text = ""
        for sentence in self.sentences:
            if text and not text.endswith("。"):
                text += " "
            text += sentence
        return text


class Governor:
    """Chooses tier, threads and cores from sensor readings.

    The current tier, the thermal state and the power correction are state, so
    call `plan()` on one governor for the whole session. `plan()` is safe to
    call from several threads.

    Args:
        settings: thresholds and the power budget (`r1chat.config.Settings`).
        reader: a `SensorReader` or any callable returning a `SensorReading`.
        topology: the CPU topology; read from sysfs when omitted.
        clock: monotonic seconds, used for plan times and power smoothing.
        core_watts: per-class watts that replace entries of `DEFAULT_CORE_WATTS`.
        bench: saved benchmark results, `{threads: BenchPoint}` (see `parse_bench`).
        hot_pause_margin_c: °C above a hot limit at which answers pause.
        hot_pause_s: seconds to wait between answers while far too hot.
        thermal_hysteresis_c: °C below a limit at which a hot state ends.
        power_smoothing_s: time constant of the measured-power correction.
        max_power_correction: largest factor by which measured power scales estimates.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        reader: SensorReader | Callable[[], SensorReading] | None = None,
        topology: Topology | None = None,
        clock: Callable[[], float] = time.monotonic,
        core_watts: Mapping[str, float] | None = None,
        bench: Mapping[int, BenchPoint] | None = None,
        hot_pause_margin_c: float = 5.0,
        hot_pause_s: float = 30.0,
        thermal_hysteresis_c: float = 1.0,
        power_smoothing_s: float = 10.0,
        max_power_correction: float = 4.0,
    ) -> None:
        self.settings = settings or Settings()
        self.clock = clock
        if reader is None:
            reader = SensorReader(clock=clock)
        self._read = reader.read if hasattr(reader, "read") else reader
        self.topology = topology or read_topology()
        self.core_watts = {**DEFAULT_CORE_WATTS, **(core_watts or {})}
        self.bench = dict(bench or {})
        self.hot_pause_margin_c = hot_pause_margin_c
        self.hot_pause_s = hot_pause_s
        self.thermal_hysteresis_c = thermal_hysteresis_c
        self.power_smoothing_s = power_smoothing_s
        self.max_power_correction = max_power_correction

        self._lock = threading.Lock()
        self._listeners: list[Callable[[PlanChanged], None]] = []
        self._tier = TIER_NORMAL
        # 0 below the hot limits, 1 at or above them, 2 far above them.
        self._thermal_level = 0
        self._power_factor = 1.0
        self._power_updated_at: float | None = None
        self._last_plan: Plan | None = None

    @property
    def tier(self) -> str:
        return self._tier

    @property
    def last_plan(self) -> Plan | None:
        return self._last_plan

    @property
    def power_correction(self) -> float:
        """Factor (at least 1) by which measured power has scaled the estimates."""
        return self._power_factor

    def subscribe(
        self, callback: Callable[[PlanChanged], None]
    ) -> Callable[[PlanChanged], None]:
        """Call `callback(PlanChanged)` after each plan whose tier, threads or pause changed.

        Returns `callback`, so this works as a decorator. Exceptions raised by a
        callback are logged and do not stop the governor.
        """
        self._listeners.append(callback)
        return callback

    def unsubscribe(self, callback: Callable[[PlanChanged], None]) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def estimate_watts(self, threads: int) -> float:
        """Estimated watts for decoding with `threads` threads on the fastest performance cores."""
        return self._base_watts(threads) * self._power_factor

    def plan(self, reading: SensorReading | None = None) -> Plan:
        """Read the sensors (unless `reading` is given) and decide tier, threads and pause."""
        if reading is None:
            reading = self._read()
        with self._lock:
            previous = self._last_plan
            plan = self._decide(reading)
            self._last_plan = plan
        self._log(previous, plan)
        if previous is not None and (
            previous.tier != plan.tier
            or previous.threads != plan.threads
            or previous.pause_s != plan.pause_s
        ):
            self._notify(PlanChanged(previous=previous, plan=plan))
        return plan

    def _decide(self, reading: SensorReading) -> Plan:
        now = self.clock()
        decision = _Decision()
        self._update_tier(reading, decision)
        self._update_power_correction(reading, now)
        threads = self._choose_threads(decision)
        threads, pause_s = self._apply_thermal_limits(reading, threads, decision)
        cores = self.topology.performance_cpus[:threads] or self.topology.cpus[:threads]
        return Plan(
            tier=self._tier,
            threads=threads,
            cores=tuple(cores),
            watts_estimate=self.estimate_watts(threads),
            reason=",".join(decision.codes),
            message=decision.message(),
            pause_s=pause_s,
            reading=reading,
            time=now,
        )

    def _update_tier(self, reading: SensorReading, decision: _Decision) -> None:
        percent = reading.battery_percent
        low = self.settings.low_battery_percent
        normal = self.settings.normal_battery_percent
        if percent is None:
            # Keeps the current tier, so a flaky sensor does not swap models.
            decision.add("sensors_unknown", _("Battery level unknown: keeping the current model."))
            return
        charging = reading.charging is True
        if self._tier == TIER_NORMAL and percent < low and not charging:
            self._tier = TIER_LOW
        elif self._tier == TIER_LOW and (charging or percent >= normal):
            self._tier = TIER_NORMAL

        percent_text = f"{percent:.0f}"
        if self._tier == TIER_LOW and percent < low:
            decision.add(
                "battery_low",
                _("Battery at {percent}% and not charging: using the low-power model.").format(
                    percent=percent_text
                ),
            )
        elif self._tier == TIER_LOW:
            decision.add(
                "battery_below_normal",
                _(
                    "Battery at {percent}%: the low-power model stays until {normal}% or charging."
                ).format(percent=percent_text, normal=f"{normal:g}"),
            )
        elif charging:
            decision.add("charging", _("Charging: using the normal model."))
        else:
            decision.add(
                "battery_ok",
                _("Battery at {percent}%: using the normal model.").format(percent=percent_text),
            )

    def _update_power_correction(self, reading: SensorReading, now: float) -> None:
        """Move the correction factor toward measured ÷ estimated power, smoothed over time.

        Only readings on battery count, because while charging the current
        includes the charger. The estimate is for the previous plan's threads,
        which were running when the battery was measured. The factor never drops
        below 1, since a low reading taken between answers says nothing about
        the draw of decoding.
        """
        power = reading.power_w
        previous = self._last_plan
        if reading.charging is not False or power is None or power <= 0 or previous is None:
            return
        updated_at = self._power_updated_at if self._power_updated_at is not None else previous.time
        self._power_updated_at = now
        elapsed = max(0.0, now - updated_at)
        if self.power_smoothing_s > 0:
            weight = 1.0 - math.exp(-elapsed / self.power_smoothing_s)
        else:
            weight = 1.0
        ratio = power / self._base_watts(previous.threads)
        ratio = min(max(ratio, 1.0), self.max_power_correction)
        self._power_factor += weight * (ratio - self._power_factor)
        logger.debug(
            "Measured %.2f W on %d threads, correction %.2f", power, previous.threads, self._power_factor
        )

    def _choose_threads(self, decision: _Decision) -> int:
        budget = self.settings.power_budget_w
        available = max(1, len(self.topology.performance_cpus))
        within_budget = _largest_within(lambda n: self.estimate_watts(n), available, budget)
        uncorrected = _largest_within(self._base_watts, available, budget)
        threads = max(1, within_budget)
        watts = self.estimate_watts(threads)

        if within_budget == 0:
            decision.add(
                "over_budget",
                _(
                    "Threads: 1, estimated {watts} W, which is over the {budget} W budget."
                ).format(watts=f"{watts:.1f}", budget=f"{budget:g}"),
            )
        elif within_budget < available:
            decision.add(
                "power_budget",
                _("Threads: {threads}, estimated {watts} W, within the {budget} W budget.").format(
                    threads=threads, watts=f"{watts:.1f}", budget=f"{budget:g}"
                ),
            )
        else:
            decision.add(
                "performance_cores",
                _("Threads: {threads}, one per performance core, estimated {watts} W.").format(
                    threads=threads, watts=f"{watts:.1f}"
                ),
            )
        if within_budget < uncorrected:
            decision.add(
                "measured_power",
                _("The battery reports more power than estimated, so fewer threads run."),
            )

        fastest = self._fastest_benchmarked(threads)
        if fastest is not None and fastest < threads:
            threads = fastest
            decision.add(
                "bench_fastest",
                _("Thread count that decoded fastest in the saved benchmark: {threads}.").format(
                    threads=threads
                ),
            )
        return threads

    def _fastest_benchmarked(self, limit: int) -> int | None:
        timed = {
            threads: point.decode_tokens_per_s
            for threads, point in self.bench.items()
            if threads <= limit and point.decode_tokens_per_s is not None
        }
        if not timed:
            return None
        # Ties go to fewer threads, which draw less power.
        return max(sorted(timed), key=lambda threads: timed[threads])

    def _apply_thermal_limits(
        self, reading: SensorReading, threads: int, decision: _Decision
    ) -> tuple[int, float]:
        battery_hot = self.settings.battery_hot_c
        cpu_hot = self.settings.cpu_hot_c
        margin = self.hot_pause_margin_c

        far_sources = self._hot_sources(reading, battery_hot + margin, cpu_hot + margin, level=2)
        hot_sources = self._hot_sources(reading, battery_hot, cpu_hot, level=1)
        if far_sources:
            self._thermal_level = 2
        elif hot_sources:
            self._thermal_level = 1
        else:
            self._thermal_level = 0
            return threads, 0.0

        for source in hot_sources or far_sources:
            if source == "battery_hot":
                sentence = _("Battery at {temp} °C: fewer threads to cool down.")
                temp = reading.battery_temp_c
            else:
                sentence = _("CPU at {temp} °C: fewer threads to cool down.")
                temp = reading.cpu_temp_c
            decision.add(source, sentence.format(temp=f"{temp:.0f}"))
        if self._thermal_level == 1:
            return max(1, threads // 2), 0.0

        decision.add(
            "too_hot",
            _("Too hot: pausing {seconds} s between answers.").format(
                seconds=f"{self.hot_pause_s:g}"
            ),
        )
        return 1, self.hot_pause_s

    def _hot_sources(
        self, reading: SensorReading, battery_limit: float, cpu_limit: float, level: int
    ) -> list[str]:
        # Once at `level`, the state lasts until the temperature drops by the hysteresis.
        slack = self.thermal_hysteresis_c if self._thermal_level >= level else 0.0
        sources = []
        if reading.battery_temp_c is not None and reading.battery_temp_c >= battery_limit - slack:
            sources.append("battery_hot")
        if reading.cpu_temp_c is not None and reading.cpu_temp_c >= cpu_limit - slack:
            sources.append("cpu_hot")
        return sources

    def _base_watts(self, threads: int) -> float:
        """Watts for `threads` threads before the measured-power correction."""
        point = self.bench.get(threads)
        if point is not None:
            return point.watts
        cores = self.topology.performance_cpus or self.topology.cpus
        total = 0.0
        for index in range(threads):
            # Beyond the known cores, repeat the slowest performance core's cost.
            cpu = cores[min(index, len(cores) - 1)]
            name = self.topology.class_of(cpu).name
            total += self.core_watts.get(name, self.core_watts["performance"])
        return total

    def _log(self, previous: Plan | None, plan: Plan) -> None:
        changed = previous is None or (previous.tier, previous.threads, previous.pause_s, previous.reason) != (
            plan.tier,
            plan.threads,
            plan.pause_s,
            plan.reason,
        )
        logger.log(
            logging.INFO if changed else logging.DEBUG,
            "Power plan: tier=%s threads=%d cores=%s watts=%.2f pause=%gs reason=%s "
            "(battery=%s%% charging=%s battery_temp=%s cpu_temp=%s source=%s)",
            plan.tier,
            plan.threads,
            list(plan.cores),
            plan.watts_estimate,
            plan.pause_s,
            plan.reason,
            plan.reading.battery_percent,
            plan.reading.charging,
            plan.reading.battery_temp_c,
            plan.reading.cpu_temp_c,
            plan.reading.source,
        )

    def _notify(self, event: PlanChanged) -> None:
        for callback in list(self._listeners):
            try:
                callback(event)
            except Exception:
                logger.warning("Power plan listener %r failed", callback, exc_info=True)


def _largest_within(watts_for: Callable[[int], float], available: int, budget: float) -> int:
    """Return the largest thread count up to `available` whose watts fit `budget`, or 0."""
    best = 0
    for threads in range(1, available + 1):
        # A small tolerance keeps 5.0 W "within" a 5 W budget despite float rounding.
        if watts_for(threads) <= budget + 1e-9:
            best = threads
    return best


def apply_threads_and_affinity(
    plan: Plan, set_threads: Callable[[int], None] | None = None
) -> bool:
    """Apply `plan`: call `set_threads(plan.threads)` if given, and pin every thread to `plan.cores`.

    Linux applies `sched_setaffinity` to one thread, so each thread listed in
    `/proc/self/task` is pinned, and threads started later inherit the mask.
    Returns whether the affinity was set; systems that forbid it (Android
    cpusets, macOS) are logged at debug and return False.
    """
    if set_threads is not None:
        set_threads(plan.threads)
    if not plan.cores:
        return False
    cores = set(plan.cores)
    try:
        thread_ids = [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:
        thread_ids = [0]
    pinned = False
    for thread_id in thread_ids:
        try:
            os.sched_setaffinity(thread_id, cores)
            pinned = True
        except ProcessLookupError:
            continue
        except (OSError, AttributeError) as error:
            logger.debug("Cannot pin thread %d to cores %s: %s", thread_id, sorted(cores), error)
            return False
    return pinned



def make_governor(settings: Settings) -> Governor:
    """Build the session's governor, using the saved `r1chat bench` result if there is one."""
    from r1chat.power.benchfile import load_bench

    return Governor(settings, bench=load_bench())
