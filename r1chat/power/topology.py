"""CPU topology: the cores this process may use, grouped into classes by maximum frequency.

Phones mix core types (for example one prime, four performance and three
efficiency cores). Decoding with more threads than performance cores stalls on
the slow cores, so the governor needs to know which cores are fast.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

CPU_ROOT = Path("/sys/devices/system/cpu")
_CPU_DIR_PATTERN = re.compile(r"cpu(\d+)")


@dataclass(frozen=True)
class CoreClass:
    """Cores that share one maximum frequency (None when cpufreq is unavailable)."""

    name: str
    max_freq_khz: int | None
    cpus: tuple[int, ...]


@dataclass(frozen=True)
class Topology:
    """Core classes, fastest first, and where they were read from."""

    classes: tuple[CoreClass, ...]
    # "cpufreq" when frequencies were read; "affinity" or "cpu_count" for the fallback.
    source: str

    @property
    def cpus(self) -> tuple[int, ...]:
        """All usable core ids, fastest class first."""
        return tuple(cpu for core_class in self.classes for cpu in core_class.cpus)

    @property
    def performance_classes(self) -> tuple[CoreClass, ...]:
        """Every class except the slowest one; the only class when there is one."""
        if len(self.classes) <= 1:
            return self.classes
        return self.classes[:-1]

    @property
    def performance_cpus(self) -> tuple[int, ...]:
        """Ids of the performance cores, fastest first."""
        return tuple(cpu for core_class in self.performance_classes for cpu in core_class.cpus)

    def class_of(self, cpu: int) -> CoreClass:
        """Return the class of core `cpu`.

        Raises:
            KeyError: `cpu` is not one of this topology's cores.
        """
        for core_class in self.classes:
            if cpu in core_class.cpus:
                return core_class
        raise KeyError(cpu)

    def to_json(self) -> dict[str, object]:
        """Return the `cores` object of `r1chat status --json`."""
        return {
            "count": len(self.cpus),
            "performance": list(self.performance_cpus),
            "source": self.source,
            "classes": [
                {
                    "name": core_class.name,
                    "max_freq_mhz": (
                        None if core_class.max_freq_khz is None else core_class.max_freq_khz // 1000
                    ),
                    "cpus": list(core_class.cpus),
                }
                for core_class in self.classes
            ],
        }


def class_names(count: int) -> list[str]:
    """Name `count` classes ordered fastest first.

    One class is "performance"; two are "performance" and "efficiency"; three
    or more start with "prime", end with "efficiency" and call the rest
    "performance".
    """
    if count <= 0:
        return []
    if count == 1:
        return ["performance"]
    if count == 2:
        return ["performance", "efficiency"]
    return ["prime"] + ["performance"] * (count - 2) + ["efficiency"]


def read_topology(cpu_root: Path = CPU_ROOT, affinity: Iterable[int] | None = None) -> Topology:
    """Read core classes from `cpu*/cpufreq/cpuinfo_max_freq` under `cpu_root`.

    Only cores in `affinity` (default: `os.sched_getaffinity(0)` where it
    exists) are kept. Without readable cpufreq files, all usable cores form one
    "performance" class. Call this before pinning the process to fewer cores,
    because pinning shrinks the affinity it reads.
    """
    allowed = set(affinity) if affinity is not None else _current_affinity()
    frequencies = _read_max_frequencies(cpu_root)
    if allowed:
        usable = {cpu: freq for cpu, freq in frequencies.items() if cpu in allowed}
        # A cpuset that names cores absent from sysfs is ignored rather than trusted.
        frequencies = usable or frequencies
    if not frequencies:
        return _single_class_topology(allowed)

    by_frequency: dict[int, list[int]] = {}
    for cpu, freq in frequencies.items():
        by_frequency.setdefault(freq, []).append(cpu)
    ordered = sorted(by_frequency.items(), reverse=True)
    names = class_names(len(ordered))
    classes = tuple(
        CoreClass(name=name, max_freq_khz=freq, cpus=tuple(sorted(cpus)))
        for name, (freq, cpus) in zip(names, ordered)
    )
    logger.debug("CPU topology from %s: %s", cpu_root, classes)
    return Topology(classes=classes, source="cpufreq")


def _read_max_frequencies(cpu_root: Path) -> dict[int, int]:
    frequencies: dict[int, int] = {}
    try:
        entries = list(cpu_root.iterdir())
    except OSError:
        return frequencies
    for entry in entries:
        match = _CPU_DIR_PATTERN.fullmatch(entry.name)
        if match is None:
            continue
        try:
            text = (entry / "cpufreq" / "cpuinfo_max_freq").read_text(encoding="ascii")
            freq = int(text.strip())
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        if freq > 0:
            frequencies[int(match.group(1))] = freq
    return frequencies


def _current_affinity() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set()


def _single_class_topology(allowed: set[int]) -> Topology:
    if allowed:
        cpus, source = tuple(sorted(allowed)), "affinity"
    else:
        cpus, source = tuple(range(os.cpu_count() or 1)), "cpu_count"
    return Topology(
        classes=(CoreClass(name="performance", max_freq_khz=None, cpus=cpus),), source=source
    )
