"""The last few hundred log lines, kept in memory for the log screen."""

from __future__ import annotations

import collections
import logging
import threading

DEFAULT_CAPACITY = 500
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
TIME_FORMAT = "%H:%M:%S"


class LogBuffer(logging.Handler):
    """A logging handler that keeps the last `capacity` formatted lines.

    `emit` runs on whichever thread logs, so the lines are guarded by a lock.
    Each line gets a sequence number, so a reader asks for the lines after
    the last number it saw, even after older lines were dropped.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY, level: int = logging.DEBUG) -> None:
        super().__init__(level)
        self.setFormatter(logging.Formatter(LOG_FORMAT, TIME_FORMAT))
        self._lines: collections.deque[tuple[int, str]] = collections.deque(maxlen=capacity)
        self._guard = threading.Lock()
        self.last_sequence = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)
            return
        with self._guard:
            for line in text.splitlines() or [""]:
                self.last_sequence += 1
                self._lines.append((self.last_sequence, line))

    def lines_after(self, sequence: int = 0) -> tuple[list[str], int]:
        """Return the kept lines numbered after `sequence`, and the last number."""
        with self._guard:
            lines = [line for number, line in self._lines if number > sequence]
            return lines, self.last_sequence
