"""`r1chat status [--json]`: sensor readings, CPU cores and the governor's plan.

Imports neither llama_cpp nor textual, so it starts fast.
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata

from r1chat.config import load_settings
from r1chat.locale import _
from r1chat.power.benchfile import load_bench
from r1chat.power.governor import Governor, Plan
from r1chat.power.sensors import SensorReading
from r1chat.power.topology import Topology, read_topology


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="r1chat status",
        description=_("Show battery, temperature, CPU cores and the power plan."),
    )
    parser.add_argument("--json", action="store_true", help=_("print one JSON object"))
    return parser


def main(argv: list[str]) -> int:
    """Print the status and return the exit code (0, or 2 for bad arguments).

    Raises:
        SettingsError: `settings.toml` is invalid.
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)

    topology = read_topology()
    governor = Governor(load_settings(), topology=topology, bench=load_bench())
    plan = governor.plan()
    if args.json:
        status = {
            "sensors": plan.reading.to_json(),
            "plan": plan.to_json(),
            "cores": topology.to_json(),
        }
        print(json.dumps(status, ensure_ascii=False))
    else:
        print(format_status(plan, topology, governor.settings.power_budget_w))
    return 0


def format_status(plan: Plan, topology: Topology, budget_w: float) -> str:
    """Format the status as an aligned two-column table in the user's language."""
    rows = _sensor_rows(plan.reading) + [
        (_("Cores"), _format_cores(topology)),
        (_("Tier"), _("low power") if plan.tier == "low" else _("normal")),
        (
            _("Threads"),
            _("{threads} on cores {cores}").format(
                threads=plan.threads, cores=",".join(str(cpu) for cpu in plan.cores)
            ),
        ),
        (
            _("Power"),
            _("{watts} W estimated, budget {budget} W").format(
                watts=f"{plan.watts_estimate:.1f}", budget=f"{budget_w:g}"
            ),
        ),
    ]
    if plan.pause_s:
        rows.append((_("Pause"), _("{seconds} s between answers").format(seconds=f"{plan.pause_s:g}")))
    rows.append((_("Why"), plan.message))

    width = max(_display_width(label) for label, _value in rows)
    lines = [label + " " * (width - _display_width(label) + 2) + value for label, value in rows]
    return "\n".join(lines)


def _sensor_rows(reading: SensorReading) -> list[tuple[str, str]]:
    unknown = _("unknown")
    if reading.battery_percent is None:
        battery = unknown
    else:
        battery = f"{reading.battery_percent:.0f}%"
        if reading.charging is True:
            battery += " " + _("(charging)")
        elif reading.charging is False:
            battery += " " + _("(on battery)")

    def number(value: float | None, unit: str, digits: int) -> str:
        return unknown if value is None else f"{value:.{digits}f} {unit}"

    return [
        (_("Battery"), battery),
        (_("Battery temp."), number(reading.battery_temp_c, "°C", 1)),
        (_("CPU temp."), number(reading.cpu_temp_c, "°C", 1)),
        (_("Current"), number(reading.current_ma, "mA", 0)),
        (_("Voltage"), number(reading.voltage_v, "V", 2)),
        (_("Source"), reading.source),
    ]


def _format_cores(topology: Topology) -> str:
    parts = []
    for core_class in topology.classes:
        part = f"{_class_label(core_class.name)} {len(core_class.cpus)}"
        if core_class.max_freq_khz:
            part += f" × {core_class.max_freq_khz / 1_000_000:.2f} GHz"
        parts.append(part)
    return ", ".join(parts)


def _class_label(name: str) -> str:
    labels = {
        "prime": _("prime"),
        "performance": _("performance"),
        "efficiency": _("efficiency"),
    }
    return labels.get(name, name)


def _display_width(text: str) -> int:
    # Chinese characters take two terminal columns.
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


if __name__ == "__main__":
    from r1chat.errors import R1ChatError

    try:
        sys.exit(main(sys.argv[1:]))
    except R1ChatError as error:
        print(_("Error: {message}").format(message=error), file=sys.stderr)
        if error.hint:
            print(error.hint, file=sys.stderr)
        sys.exit(error.exit_code)
