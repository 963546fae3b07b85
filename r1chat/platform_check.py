"""Recognise systems where no model can run, so that r1chat stops at start with the reason.

The one such system so far is iSH on iOS. It emulates a 32-bit x86 processor
without SSE4 or AVX, so numpy and llama.cpp stop with an illegal instruction,
and a 32-bit process has too little address space to map a 1 GB model.

iSH is recognised by its `/proc/ish` folder (present in recent versions), or
else by an i686 machine whose `/proc/cpuinfo` lists no SSE4 or AVX flags and
whose kernel release ends in "-ish" or whose CPU vendor is "iSH" (what iSH's
own uname and /proc/cpuinfo report).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from r1chat.errors import UnsupportedPlatform
from r1chat.locale import _

log = logging.getLogger(__name__)

X86_32_MACHINES = frozenset({"i386", "i486", "i586", "i686"})
_VECTOR_FLAG = re.compile(r"(?:^|\s)(?:sse4_1|sse4_2|avx\w*)(?:\s|$)", re.IGNORECASE)
_ISH_VENDOR = re.compile(r"^vendor_id\s*:\s*ish\s*$", re.IGNORECASE | re.MULTILINE)
_ISH_RELEASE = re.compile(r"-ish(?:$|[^a-z])", re.IGNORECASE)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def is_ish(proc_dir: Path | str = "/proc", machine: str | None = None, release: str | None = None) -> bool:
    """Return whether this process runs under iSH.

    `proc_dir` is the proc file system to inspect. `machine` and `release`
    default to this system's `uname -m` and `uname -r`.
    """
    proc = Path(proc_dir)
    if (proc / "ish").is_dir():
        log.debug("found %s: running under iSH", proc / "ish")
        return True

    if machine is None or release is None:
        uname = os.uname()
        machine = uname.machine if machine is None else machine
        release = uname.release if release is None else release
    if machine not in X86_32_MACHINES:
        return False

    cpuinfo = _read_text(proc / "cpuinfo")
    if _VECTOR_FLAG.search(cpuinfo):
        return False
    found = bool(_ISH_RELEASE.search(release) or _ISH_VENDOR.search(cpuinfo))
    log.debug("machine %s, release %s, no SSE4/AVX flags: iSH=%s", machine, release, found)
    return found


def check_platform(proc_dir: Path | str = "/proc", machine: str | None = None, release: str | None = None) -> None:
    """Check that a model can run on this system. Call it before loading anything heavy.

    The arguments are as for `is_ish` and exist for tests.

    Raises:
        UnsupportedPlatform: running under iSH.
    """
    if is_ish(proc_dir, machine, release):
        raise UnsupportedPlatform(
            "iSH",
            _(
                "iSH emulates a 32-bit x86 processor without SSE4 or AVX, so numpy and llama.cpp "
                "stop with an illegal instruction, and a 32-bit process has too little address "
                "space to map a 1 GB model."
            ),
        )
