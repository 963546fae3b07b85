"""A small progress display on stderr: a redrawn bar on a terminal, plain lines otherwise.

    progress = Progress(total_bytes, "DeepSeek-R1 1.5B")
    for chunk in chunks:
        progress.update(done_bytes)
    progress.close()

On a terminal the line shows percent, speed and time left and is redrawn at
most ten times a second. When the stream is a pipe or a file, a line is
written at each 10 % step (or every 30 s when the total is unknown) and one
at the end, so logs stay short. A task shorter than a second writes only the
final line.
"""

from __future__ import annotations

import os
import sys
import time
import unicodedata
from collections import deque
from typing import Callable, TextIO

from r1chat.locale import _

REDRAW_INTERVAL_S = 0.1
# Speed is averaged over this window, so a stalled mobile link shows as slow
# within seconds instead of being hidden by the average since the start.
SPEED_WINDOW_S = 5.0
PLAIN_STEP_PERCENT = 10
PLAIN_INTERVAL_S = 30.0
# A task that ends within this time gets only its final line when not on a terminal.
PLAIN_QUIET_S = 1.0
MIN_BAR_WIDTH = 8


def format_bytes(count: float) -> str:
    """Format a byte count with decimal units, as model sizes are published (1.12 GB)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(count) < 1000 or unit == "GB":
            break
        count /= 1000
    if unit == "B":
        return f"{int(count)} B"
    if count < 10:
        return f"{count:.2f} {unit}"
    if count < 100:
        return f"{count:.1f} {unit}"
    return f"{count:.0f} {unit}"


def format_duration(seconds: float) -> str:
    """Format seconds as m:ss or h:mm:ss."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


class Progress:
    """Progress of one task with a known or unknown total, drawn on `stream`.

    Args:
        total: the amount at completion, or None when unknown.
        label: a short name of the task, shown first on each line.
        stream: where to draw; stderr by default.
        unit: "B" to show bytes and speed; any other text is a count unit
            ("tensors") shown after the numbers.
        done: the amount already done before this run (a resumed download),
            which does not count towards the speed.
        clock: seconds as a float; tests pass a fake clock.
    """

    def __init__(
        self,
        total: int | None,
        label: str,
        stream: TextIO | None = None,
        *,
        unit: str = "B",
        done: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total if total and total > 0 else None
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.unit = unit
        self.done = done
        self._clock = clock
        self._start = clock()
        self._start_done = done
        self._samples: deque[tuple[float, int]] = deque([(self._start, done)])
        self._is_tty = _is_terminal(self.stream)
        self._last_draw = float("-inf")
        self._last_plain_step = -1
        self._last_plain_time = self._start
        self._drawn_width = 0
        self._tail_width = 0
        self._written_done: int | None = None
        self._closed = False
        if not self._is_tty:
            self._last_plain_step = self._plain_step()

    @property
    def is_terminal(self) -> bool:
        return self._is_tty

    def update(self, done: int) -> None:
        """Record that `done` units are complete and redraw when it is time."""
        if self._closed:
            return
        now = self._clock()
        self.done = done
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > SPEED_WINDOW_S:
            self._samples.popleft()

        if self._is_tty:
            if now - self._last_draw >= REDRAW_INTERVAL_S:
                self._draw_terminal_line()
                self._last_draw = now
            return

        if now - self._start < PLAIN_QUIET_S:
            return
        step = self._plain_step()
        if self.total is not None and step > self._last_plain_step:
            self._last_plain_step = step
            self._write_plain_line()
        elif self.total is None and now - self._last_plain_time >= PLAIN_INTERVAL_S:
            self._last_plain_time = now
            self._write_plain_line()

    def close(self) -> None:
        """Draw the final state and end the line; later updates are ignored."""
        if self._closed:
            return
        if self._is_tty:
            self._draw_terminal_line()
            self.stream.write("\n")
        elif self._written_done != self.done:
            self._write_plain_line()
        self.stream.flush()
        self._closed = True

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # Measurements ---------------------------------------------------------

    def speed(self) -> float | None:
        """Return units per second over the last few seconds, or None before there is data."""
        (first_time, first_done), (last_time, last_done) = self._samples[0], self._samples[-1]
        elapsed = last_time - first_time
        if elapsed <= 0:
            return None
        return max(0.0, (last_done - first_done) / elapsed)

    def eta(self) -> float | None:
        """Return the estimated seconds left, or None when unknown."""
        speed = self.speed()
        if self.total is None or not speed:
            return None
        return max(0.0, (self.total - self.done) / speed)

    def percent(self) -> float | None:
        if self.total is None:
            return None
        return min(100.0, 100.0 * self.done / self.total)

    def _plain_step(self) -> int:
        percent = self.percent()
        return -1 if percent is None else int(percent // PLAIN_STEP_PERCENT)

    # Drawing --------------------------------------------------------------

    def _amount(self, value: int) -> str:
        return format_bytes(value) if self.unit == "B" else str(value)

    def _fields(self) -> list[str]:
        """Return the parts after the bar: percent, amount, speed, time left."""
        parts = []
        percent = self.percent()
        if percent is not None:
            parts.append(f"{percent:3.0f}%")
        if self.unit not in ("B", "%"):
            amount = f"{self.done}/{self.total}" if self.total is not None else str(self.done)
            parts.append(f"{amount} {self.unit}")
        elif percent is None:
            parts.append(format_bytes(self.done))
        speed = self.speed()
        if speed is not None and self.unit == "B":
            parts.append(_("{amount}/s").format(amount=format_bytes(speed)))
        eta = self.eta()
        if eta is not None and self.done < (self.total or 0):
            parts.append(_("ETA {time}").format(time=format_duration(eta)))
        elif self.total is None or self.done >= self.total:
            parts.append(format_duration(self._clock() - self._start))
        return parts

    def _draw_terminal_line(self) -> None:
        columns = _terminal_columns(self.stream)
        tail = "  ".join(self._fields())
        label = self.label
        # Widths count terminal cells: a Chinese character takes two.
        room = columns - 1 - _cells(tail) - 1
        bar = ""
        if self.total is not None and room - _cells(label) - 3 >= MIN_BAR_WIDTH:
            width = room - _cells(label) - 3
            filled = int(width * self.done / self.total)
            bar = " [" + "#" * min(filled, width) + "-" * max(0, width - filled) + "]"
        elif _cells(label) > max(0, room):
            label = _cut_to_cells(label, room - 1) + "…" if room > 1 else ""
        line = f"{label}{bar} {tail}" if label else tail
        line = _cut_to_cells(line, columns - 1)
        padding = " " * max(0, self._drawn_width - _cells(line))
        self.stream.write("\r" + line + padding)
        self.stream.flush()
        self._drawn_width = _cells(line)

    def _write_plain_line(self) -> None:
        self.stream.write(f"{self.label}: {', '.join(self._fields())}\n")
        self.stream.flush()
        self._written_done = self.done


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _terminal_columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 80


def _cells(text: str) -> int:
    """Return the terminal width of `text`: wide and full-width characters take two cells."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _cut_to_cells(text: str, width: int) -> str:
    """Return the longest start of `text` that fits in `width` cells."""
    used = 0
    for index, char in enumerate(text):
        used += 2 if unicodedata.east_asian_width(char) in "WF" else 1
        if used > width:
            return text[:index]
    return text
