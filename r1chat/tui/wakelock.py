"""Termux's wake lock, held while an answer is generated.

Android may suspend a dimmed phone's CPU, which freezes an answer halfway.
Termux:API's `termux-wake-lock` keeps the CPU awake until
`termux-wake-unlock`. Without Termux:API the commands are missing, and the
lock is skipped without a message.
"""

from __future__ import annotations

import logging
import shutil
import subprocess

log = logging.getLogger(__name__)

LOCK_COMMAND = "termux-wake-lock"
UNLOCK_COMMAND = "termux-wake-unlock"


class WakeLock:
    """Starts the lock and unlock commands without waiting for them.

    `termux-wake-lock` returns at once on a working phone, but it talks to an
    Android service, and a hung call must not hold up an answer. Finished
    command processes are reaped on the next call.
    """

    def __init__(self, lock_command: str = LOCK_COMMAND, unlock_command: str = UNLOCK_COMMAND) -> None:
        self.lock_command = lock_command
        self.unlock_command = unlock_command
        self.held = False
        self._running: list[subprocess.Popen] = []

    def acquire(self) -> None:
        if not self.held and self._start(self.lock_command):
            self.held = True

    def release(self) -> None:
        if self.held:
            self._start(self.unlock_command)
            self.held = False

    def _start(self, command: str) -> bool:
        self._running = [process for process in self._running if process.poll() is None]
        path = shutil.which(command)
        if path is None:
            return False
        try:
            process = subprocess.Popen(
                [path],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as error:
            log.warning("cannot run %s: %s", path, error)
            return False
        self._running.append(process)
        log.debug("started %s (pid %d)", path, process.pid)
        return True
