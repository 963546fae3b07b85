"""Only `r1chat models pull` may open a network connection.

The `no_network` fixture gives an environment in which a Python child process
fails loudly on any connection, UDP send or host-name lookup, and logs the
attempt. Commands that must stay offline run under it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from model_server import ModelServer
from netguard import guarded_env, log_path


@pytest.fixture
def no_network(tmp_path):
    """Environment (dict) for subprocesses with all network access forbidden."""
    return guarded_env(tmp_path / "netguard")


def run_guarded(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=120
    )


def attempts(env) -> str:
    return open(env["R1CHAT_TEST_NETWORK_LOG"], encoding="utf-8").read()


def test_guard_blocks_http_request(no_network):
    server = ModelServer()
    url = server.serve("/file.gguf", b"GGUF" + b"x" * 100)
    code = f"import httpx; print(httpx.get({url!r}).status_code)"
    try:
        unguarded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        guarded = run_guarded(no_network, "-c", code)
    finally:
        server.close()

    assert unguarded.returncode == 0, unguarded.stderr
    assert unguarded.stdout.strip() == "200"
    assert guarded.returncode != 0
    assert "network access forbidden by the test guard" in guarded.stderr
    assert "127.0.0.1" in attempts(no_network)
    assert len(server.requests) == 1


def test_guard_blocks_name_lookup(no_network):
    result = run_guarded(no_network, "-c", "import socket; socket.getaddrinfo('example.org', 443)")

    assert result.returncode != 0
    assert "example.org" in attempts(no_network)


def test_guard_allows_listed_host(tmp_path):
    env = guarded_env(tmp_path / "allow", allow=("127.0.0.1",))
    server = ModelServer()
    url = server.serve("/file.gguf", b"GGUF" + b"x" * 100)
    try:
        result = run_guarded(env, "-c", f"import httpx; print(httpx.get({url!r}).status_code)")
    finally:
        server.close()

    assert result.returncode == 0, result.stderr
    assert attempts(env) == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["list"],
        ["list", "--json"],
        ["path", "smollm2-135m"],
        ["verify", "smollm2-135m"],
    ],
)
def test_models_commands_stay_offline(no_network, argv):
    result = run_guarded(no_network, "-m", "r1chat.models_cmd", *argv)

    assert result.returncode == 0, result.stderr
    assert attempts(no_network) == ""


def test_pull_is_blocked_offline(no_network, tmp_path):
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        """
[models.remote]
name = "Remote"

[[models.remote.variants]]
quant = "Q4_0"
file = "remote.Q4_0.gguf"
sources = [{ url = "http://127.0.0.1:9/remote.gguf" }]
""",
        encoding="utf-8",
    )
    env = dict(no_network, R1CHAT_CATALOG=str(catalog))

    result = run_guarded(env, "-m", "r1chat.models_cmd", "pull", "remote")

    assert result.returncode != 0
    assert "127.0.0.1" in attempts(env)


def test_prompt_answers_with_sockets_forbidden(no_network):
    result = run_guarded(no_network, "-m", "r1chat", "-p", "What is the capital of France?",
                         "--seed", "1", "-n", "8", "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["usage"]["completion_tokens"] > 0
    assert attempts(no_network) == ""


def test_status_runs_with_sockets_forbidden(no_network):
    result = run_guarded(no_network, "-m", "r1chat", "status", "--json")

    assert result.returncode == 0, result.stderr
    assert attempts(no_network) == ""
