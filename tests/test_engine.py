"""The llama.cpp engine on the real starter model."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading

import pytest

from r1chat.conversation import Message
from r1chat.engine import Engine, Sampling, check_gguf
from r1chat.errors import ModelFileError, PromptTooLong
from r1chat.turn import run_turn

QUESTION = [Message("user", "What is the capital of France?")]


@pytest.fixture(scope="module")
def engine(starter_path):
    with Engine(starter_path, n_ctx=1024, n_threads=2) as loaded:
        yield loaded


def generate_text(engine, messages, **sampling):
    tokens = engine.prompt_tokens(messages, r1_format=False)
    return b"".join(engine.generate(tokens, Sampling(**sampling))).decode("utf-8", errors="replace")


def test_engine_reads_model_info(engine, starter_path):
    assert engine.info.architecture == "llama"
    assert engine.info.n_vocab == 49152
    assert "<|im_start|>" in engine.info.chat_template
    assert engine.n_ctx == 1024
    assert engine.load_s > 0


def test_same_seed_gives_same_answer(engine):
    first = generate_text(engine, QUESTION, seed=7, max_tokens=24)
    second = generate_text(engine, QUESTION, seed=7, max_tokens=24)
    assert first.strip()
    assert first == second


def test_gguf_template_renders_chatml(engine):
    text = engine.apply_template([Message("user", "hi")])
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_max_tokens_stops_with_length(engine):
    generate_text(engine, [Message("user", "Write a long story about a dragon.")], seed=1, max_tokens=5)
    assert engine.last_stats.finish_reason == "length"
    assert engine.last_stats.completion_tokens == 5


def test_cancel_stops_mid_answer(engine):
    cancel = threading.Event()
    pieces = []
    tokens = engine.prompt_tokens([Message("user", "Write a long story about a dragon.")], False)
    for piece in engine.generate(tokens, Sampling(seed=1, max_tokens=200), cancel):
        pieces.append(piece)
        if len(pieces) == 3:
            cancel.set()
    assert len(pieces) == 3
    assert engine.last_stats.finish_reason == "interrupted"


def test_next_turn_reuses_cached_prefix(engine):
    first = [Message("user", "Name a colour.")]
    reply = generate_text(engine, first, seed=2, max_tokens=8)
    follow_up = first + [Message("assistant", reply), Message("user", "Another one?")]
    generate_text(engine, follow_up, seed=2, max_tokens=8)
    assert engine.last_stats.reused_tokens >= len(engine.prompt_tokens(first, False)) - 1


def test_thread_change_applies_between_steps(engine):
    tokens = engine.prompt_tokens(QUESTION, False)
    stream = engine.generate(tokens, Sampling(seed=1, max_tokens=6))
    next(stream)
    engine.set_threads(1)
    list(stream)
    assert engine.last_stats.threads == 1
    assert engine.n_threads == 1
    engine.set_threads(2)


def test_run_turn_in_r1_format_keeps_reasoning_apart(engine):
    result = run_turn(engine, QUESTION, r1_format=True, sampling=Sampling(seed=1, max_tokens=12))
    # The starter never closes </think>, so all of its output is reasoning.
    assert result.answer == ""
    assert result.reasoning
    assert result.finish_reason == "length"
    assert result.ended_in_reasoning


def test_r1_prompt_keeps_user_text_out_of_control_tokens(engine):
    plain = engine.tokenize("<｜User｜>", special=False)
    tokens = engine.prompt_tokens([Message("user", "<｜User｜>")], r1_format=True)
    assert plain == engine.tokenize("<｜User｜>", special=True)  # no such control token here
    assert len(tokens) > len(plain)


def test_prompt_longer_than_context(starter_path):
    with Engine(starter_path, n_ctx=256, n_threads=1) as small:
        tokens = small.prompt_tokens([Message("user", "word " * 400)], False)
        with pytest.raises(PromptTooLong) as info:
            list(small.generate(tokens, Sampling(max_tokens=4)))
    assert info.value.context_size == 256
    assert info.value.prompt_tokens == len(tokens)


def test_small_context_lowers_the_batch_size(starter_path):
    with Engine(starter_path, n_ctx=256, n_batch=512, n_threads=1) as small:
        tokens = small.prompt_tokens([Message("user", "word " * 200)], False)
        assert small.n_batch <= 256
        assert len(tokens) > 200
        list(small.generate(tokens, Sampling(max_tokens=2)))
    assert small.last_stats.prompt_tokens == len(tokens)
    assert small.last_stats.prefill_tokens_per_s > 0


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "empty"),
        (b"<!DOCTYPE html><html><body>404</body></html>", "HTML page"),
        (b"PK\x03\x04 zip data", "not a GGUF"),
    ],
)
def test_bad_files_are_rejected(tmp_path, content, problem):
    path = tmp_path / "model file.gguf"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=problem) as info:
        check_gguf(path)
    assert info.value.path == path


def test_truncated_model_is_rejected(tmp_path, starter_path):
    path = tmp_path / "half.gguf"
    with starter_path.open("rb") as source, path.open("wb") as target:
        target.write(source.read(starter_path.stat().st_size // 2))
    with pytest.raises(ModelFileError, match="truncated"):
        Engine(path, n_ctx=256, n_threads=1)


def test_path_with_spaces_and_chinese(tmp_path, starter_path):
    folder = tmp_path / "我的 模型"
    folder.mkdir()
    path = folder / "小 模型.gguf"
    shutil.copyfile(starter_path, path)
    with Engine(path, n_ctx=256, n_threads=1) as loaded:
        assert loaded.info.n_vocab == 49152


def run_python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_android_platform_guard():
    result = run_python(
        "import sys; sys.platform = 'android'\n"
        "from r1chat.engine import import_llama_cpp\n"
        "module = import_llama_cpp()\n"
        "print(module.__name__, sys.platform)\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["llama_cpp", "android"]


def test_android_without_guard_fails():
    result = run_python("import sys; sys.platform = 'android'\nimport llama_cpp\n")
    assert result.returncode != 0
    assert "Unsupported platform" in result.stderr


def test_loading_writes_nothing_to_stderr(starter_path):
    result = run_python(
        "from pathlib import Path\n"
        "from r1chat.engine import Engine\n"
        f"Engine(Path({str(starter_path)!r}), n_ctx=256, n_threads=1).close()\n"
    )
    assert result.returncode == 0
    assert result.stderr == ""
    assert result.stdout == ""


def test_llama_log_goes_to_python_logger(starter_path):
    result = run_python(
        "import logging, sys\n"
        "from pathlib import Path\n"
        "lines = []\n"
        "class Collect(logging.Handler):\n"
        "    def emit(self, record): lines.append(record.getMessage())\n"
        "logging.getLogger('r1chat.llama_cpp').addHandler(Collect())\n"
        "logging.getLogger('r1chat.llama_cpp').setLevel(logging.DEBUG)\n"
        "from r1chat.engine import Engine\n"
        f"Engine(Path({str(starter_path)!r}), n_ctx=256, n_threads=1).close()\n"
        "print(sum('llama_model_loader' in line for line in lines))\n"
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 0
