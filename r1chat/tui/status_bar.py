"""The status bar: model and tier, speed of the last answer, battery, threads and power."""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len
from textual.content import Content
from textual.geometry import Size
from textual.widget import Widget

from r1chat.locale import _

SEPARATOR = " · "
# Four lines fit every field at 40 columns, with the battery charging and hot.
MAX_LINES = 4


@dataclass(frozen=True)
class StatusInfo:
    """The values shown in the status bar; None hides a field."""

    model: str = ""
    tier: str = "normal"
    loading: bool = False
    tokens_per_s: float | None = None
    first_token_s: float | None = None
    battery_percent: float | None = None
    charging: bool | None = None
    temperature_c: float | None = None
    threads: int | None = None
    watts: float | None = None


def status_fields(info: StatusInfo) -> list[str]:
    """Return the status bar's fields in order, translated."""
    tier = _("low power") if info.tier == "low" else _("normal")
    if info.loading:
        fields = [_("loading {model}").format(model=info.model)]
    else:
        fields = [f"{info.model} ({tier})"]
    if info.tokens_per_s is not None:
        fields.append(_("{speed} tok/s").format(speed=f"{info.tokens_per_s:.1f}"))
    if info.first_token_s is not None:
        fields.append(_("first token {seconds} s").format(seconds=f"{info.first_token_s:.2f}"))
    battery = []
    if info.battery_percent is not None:
        text = _("battery {percent}%").format(percent=f"{info.battery_percent:.0f}")
        if info.charging:
            text += " " + _("charging")
        battery.append(text)
    if info.temperature_c is not None:
        battery.append(f"{info.temperature_c:.0f} °C")
    if battery:
        fields.append(" ".join(battery))
    if info.threads is not None:
        if info.threads == 1:
            text = _("1 thread")
        else:
            text = _("{threads} threads").format(threads=info.threads)
        if info.watts is not None:
            text += " ~" + _("{watts} W").format(watts=f"{info.watts:.1f}")
        fields.append(text)
    return fields


def pack_lines(fields: list[str], width: int, max_lines: int = MAX_LINES) -> list[str]:
    """Join fields with separators into lines of at most `width` cells, breaking between fields.

    A field wider than the line gets a line of its own (the screen crops it),
    and fields beyond `max_lines` lines are dropped.
    """
    lines: list[str] = []
    for field in fields:
        if lines and cell_len(lines[-1] + SEPARATOR + field) <= width:
            lines[-1] += SEPARATOR + field
        else:
            lines.append(field)
    return lines[:max_lines]


class StatusBar(Widget):
    """Fields packed into as few lines as the width allows, breaking only between fields."""

    DEFAULT_CSS = """
    StatusBar {
        height: auto;
    }
    """

    def __init__(self, info: StatusInfo | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._info = info or StatusInfo()

    @property
    def info(self) -> StatusInfo:
        return self._info

    @info.setter
    def info(self, info: StatusInfo) -> None:
        if info != self._info:
            self._info = info
            self.refresh(layout=True)

    def _lines(self, width: int) -> list[str]:
        return pack_lines(status_fields(self._info), max(1, width))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(1, len(self._lines(width)))

    def render(self) -> Content:
        return Content("\n".join(self._lines(self.content_region.width or self.size.width)))

    def update_language(self) -> None:
        self.refresh(layout=True)
