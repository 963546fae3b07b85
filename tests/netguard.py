"""Forbid network traffic in child processes, for tests that prove r1chat stays offline.

`guarded_env(folder)` writes a `sitecustomize.py` into `folder` and returns an
environment for `subprocess` that loads it at interpreter start. In such a
child, every socket connect, UDP send and host-name lookup to a host outside
`allow` raises `NetworkForbidden` (a RuntimeError, so code that catches
OSError cannot swallow it) and is appended to the file `log_path(folder)`, so
a test can also assert that no attempt was made at all.
"""

from __future__ import annotations

import os
from pathlib import Path

import r1chat

LOG_NAME = "network-attempts.log"

_SITECUSTOMIZE = '''
import os
import socket

_LOG = os.environ["R1CHAT_TEST_NETWORK_LOG"]
_ALLOWED = {host for host in os.environ.get("R1CHAT_TEST_ALLOWED_HOSTS", "").split(",") if host}


class NetworkForbidden(RuntimeError):
    """A network connection was attempted where the test forbids it."""


def _reject(what, target):
    with open(_LOG, "a", encoding="utf-8") as log:
        log.write(f"{what} {target!r}\\n")
    raise NetworkForbidden(f"network access forbidden by the test guard: {what} {target!r}")


def _host_of(address):
    return address[0] if isinstance(address, tuple) else address


def _checked(name, original):
    def method(sock, address, *args):
        if sock.family != socket.AF_UNIX and _host_of(address) not in _ALLOWED:
            _reject(name, address)
        return original(sock, address, *args)
    return method


socket.socket.connect = _checked("connect", socket.socket.connect)
socket.socket.connect_ex = _checked("connect_ex", socket.socket.connect_ex)
_real_sendto = socket.socket.sendto


def _sendto(sock, data, *args):
    address = args[-1]
    if sock.family != socket.AF_UNIX and _host_of(address) not in _ALLOWED:
        _reject("sendto", address)
    return _real_sendto(sock, data, *args)


socket.socket.sendto = _sendto
_real_getaddrinfo = socket.getaddrinfo


def _getaddrinfo(host, *args, **kwargs):
    if host is not None and str(host) not in _ALLOWED:
        _reject("getaddrinfo", host)
    return _real_getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _getaddrinfo
'''


def log_path(folder: Path) -> Path:
    return folder / LOG_NAME


def guarded_env(folder: Path, allow: tuple[str, ...] = (), base: dict[str, str] | None = None) -> dict[str, str]:
    """Return an environment whose Python processes cannot reach any host but those in `allow`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(_SITECUSTOMIZE, encoding="utf-8")
    log_path(folder).write_text("", encoding="utf-8")
    env = dict(os.environ if base is None else base)
    package_root = str(Path(r1chat.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), package_root, env.get("PYTHONPATH")]))
    env["R1CHAT_TEST_NETWORK_LOG"] = str(log_path(folder))
    env["R1CHAT_TEST_ALLOWED_HOSTS"] = ",".join(allow)
    return env
