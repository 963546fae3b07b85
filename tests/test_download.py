"""Downloads against a real HTTP server on 127.0.0.1: resume, retries, bad responses, full disk."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import r1chat
from r1chat import download, store
from r1chat.catalog import Source, Variant, load_catalog
from r1chat.errors import AnotherInstanceRunning, SettingsError
from r1chat.models_cmd import main

from model_server import ModelServer

PAYLOAD_SIZE = 400_000
MODEL_ID = "test-model"
QUANT = "Q4_0"
FILE = "test-model.Q4_0.gguf"
SPEC = f"{MODEL_ID}:{QUANT}"


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Fail any connection to a host other than 127.0.0.1, so no test can reach the internet."""
    real_connect = socket.socket.connect

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1"):
            raise AssertionError(f"test tried to connect to {address!r}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setattr(download, "RETRY_DELAYS_S", (0.0, 0.0, 0.0))


@pytest.fixture
def server():
    model_server = ModelServer()
    yield model_server
    model_server.close()


@pytest.fixture
def payload() -> bytes:
    return b"GGUF" + random.Random(3).randbytes(PAYLOAD_SIZE - 4)


def write_catalog(tmp_path, monkeypatch, sources: list[str], *, sha256: str | None, size: int | None = PAYLOAD_SIZE) -> None:
    """Write a one-model catalog into tmp_path and point R1CHAT_CATALOG at it."""
    lines = [
        f"[models.{MODEL_ID}]",
        'name = "Test model"',
        'family = "test"',
        f"[[models.{MODEL_ID}.variants]]",
        f'quant = "{QUANT}"',
        f'file = "{FILE}"',
        "min_ram_mb = 64",
        f"sources = [{', '.join(sources)}]",
    ]
    if sha256:
        lines.append(f'sha256 = "{sha256}"')
    if size:
        lines.append(f"size = {size}")
    path = tmp_path / "catalog.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("R1CHAT_CATALOG", str(path))


def url_source(url: str) -> str:
    return f'{{ url = "{url}" }}'


def run_models(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def dest_path(home: Path) -> Path:
    return home / "models" / MODEL_ID / FILE


def part_file(home: Path) -> Path:
    return dest_path(home).with_name(FILE + ".part")


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Complete downloads -----------------------------------------------------------------


def test_pull_complete_download(server, payload, tmp_path, monkeypatch, isolated_home):
    url = server.serve("/files/model.gguf", payload)
    write_catalog(tmp_path, monkeypatch, [url_source(url)], sha256=sha256_of(payload))

    code, out, err = run_models("pull", SPEC)

    assert code == 0, err
    dest = dest_path(isolated_home)
    assert dest.read_bytes() == payload
    assert not part_file(isolated_home).exists()
    assert not dest.with_name(FILE + ".lock").exists()
    assert "Installed" in out
    assert server.bytes_sent() == PAYLOAD_SIZE
    record = store.manifest_record(dest)
    assert record["sha256"] == sha256_of(payload)
    assert record["good"] is True
    variant = load_catalog().get(MODEL_ID).variant(QUANT)
    assert store.verification_state(variant, dest) == "verified"


def test_pull_again_is_a_no_op(server, payload, tmp_path, monkeypatch, isolated_home):
    url = server.serve("/files/model.gguf", payload)
    write_catalog(tmp_path, monkeypatch, [url_source(url)], sha256=sha256_of(payload))
    assert run_models("pull", SPEC)[0] == 0

    code, out, _err = run_models("pull", MODEL_ID)

    assert code == 0
    assert "already on the phone" in out
    assert len(server.requests) == 1


def test_pull_through_hf_endpoint_sends_token(server, payload, tmp_path, monkeypatch, isolated_home):
    server.serve("/owner/repo-GGUF/resolve/abc123/" + FILE, payload)
    write_catalog(
        tmp_path, monkeypatch,
        ['{ hub = "huggingface", repo = "owner/repo-GGUF", revision = "abc123" }'],
        sha256=sha256_of(payload),
    )
    monkeypatch.setenv("HF_ENDPOINT", server.base_url + "/")
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")

    code, _out, err = run_models("pull", SPEC)

    assert code == 0, err
    assert dest_path(isolated_home).read_bytes() == payload
    assert [r.path for r in server.requests] == ["/owner/repo-GGUF/resolve/abc123/" + FILE]
    assert server.requests[0].authorization == "Bearer hf_test_token"


def test_token_not_sent_to_url_source(server, payload, tmp_path, monkeypatch):
    url = server.serve("/files/model.gguf", payload)
    write_catalog(tmp_path, monkeypatch, [url_source(url)], sha256=sha256_of(payload))
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")

    assert run_models("pull", SPEC)[0] == 0
    assert server.requests[0].authorization is None


def test_pull_without_catalog_sha256_records_hash(server, payload, tmp_path, monkeypatch, isolated_home):
    url = server.serve("/files/model.gguf", payload)
    write_catalog(tmp_path, monkeypatch, [url_source(url)], sha256=None)

    code, _out, err = run_models("pull", SPEC)

    assert code == 0, err
    assert "no sha256" in err
    assert sha256_of(payload) in err
    record = store.manifest_record(dest_path(isolated_home))
    assert record["sha256"] == sha256_of(payload)
    assert record["good"] is True


# Interruptions and resume --------------------------------------------------------------


def test_dropped_connection_retried_in_same_run(server, payload, tmp_path, monkeypatch, isolated_home):
    url = server.serve("/files/model.gguf", payload, mode="drop-half")
    write_catalog(tmp_path, monkeypatch, [url_source(url)], sha256=sha256_of(payload))

    code, _out, err = run_models("pull", SPEC)

    assert code == 0, err
    assert "retrying" in err
    assert dest_path(isolated_home).read_bytes() == payload
    first, second = server.requests
    assert first.range is None
    assert first.sent == PAYLOAD_SIZE // 2
    assert second.range == f"bytes={PAYLOAD_SIZE // 2}-"
    assert second.status == 206
    assert server.bytes_sent() == PAYLOAD_SIZE


def test_dropped_connection_resumed_by_next_run(server, payload, tmp_path, monkeypatch, isolated_home):
    url = server.serve("/files/model.gguf", payload, mode="drop-half")
    write_catalog(tmp_path, monkeypatch, [url_source(url)], sha256=sha256_of(payload))
    monkeypatch.setattr(download, "RETRY_DELAYS_S", ())

    code, _out, err = run_models("pull", SPEC)

    assert code == 1
    assert "resume" in err
    assert not dest_path(isolated_home).exists()
    assert part_file(isolated_home).stat().st_size == PAYLOAD_SIZE // 2
    sent_first_run = server.bytes_sent()

    code, _out, err = run_models("pull", SPEC)

    assert code == 0, err
    assert dest_path(isolated_home).read_bytes() == payload
    assert server.requests[-1].range == f"bytes={PAYLOAD_SIZE // 2}-"
    assert server.bytes_sent() - sent_first_run == PAYLOAD_SIZE - PAYLOAD_SIZE // 2


def test_server_ignoring_range_starts_over(server, payload, tmp_path, monkeypatch, isolated_home):
    url = server.serve("/files/model.gguf", payload, mode="drop-half")
    write_catalog(tmp_path, monkeypatch, [url_source(url)], sha256=sha256_of(payload))
    monkeypatch.setattr(download, "RETRY_DELAYS_S", ())
    assert run_models("pull", SPEC)[0] == 1
    server.files["/files/model.gguf"].mode = "no-range"

    code, _out, err = run_models("pull", SPEC)

    assert code == 0, err
    assert "does not support resuming" in err
    assert server.requests[-1].range == f"bytes={PAYLOAD_SIZE // 2}-"
    assert server.requests[-1].status == 200
    assert server.requests[-1].sent == PAYLOAD_SIZE
    assert dest_path(isolated_home).read_bytes() == payload


def test_complete_part_finished_without_download(server, payload, tmp_path, monkeypatch, isolated_home):
    url = server.serve("/files/model.gguf", payload)
    write_catalog(tmp_path, monkeypatch, [url_source(url)], sha256=sha256_of(payload))
    part = part_file(isolated_home)
    part.parent.mkdir(parents=True)
    part.write_bytes(payload)

    code, _out, err = run_models("pull", SPEC)

    assert code == 0, err
    assert server.requests[0].status == 416
    assert server.bytes_sent() == 0
    assert dest_path(isolated_home).read_bytes() == payload


def test_part_without_gguf_magic_discarded(server, payload, tmp_path, monkeypatch, isolated_home):
    url = server.serve("/files/model.gguf", payload)
    write_catalog(tmp_path, monkeypatch, [url_source(url)], sha256=sha256_of(payload))
    part = part_file(isolated_home)
    part.parent.mkdir(parents=True)
    part.write_bytes(b"<html>junk from a captive portal</html>")

    code, _out, err = run_models("pull", SPEC)

    assert code == 0, err
    assert server.requests[0].range is None
    assert dest_path(isolated_home).read_bytes() == payload


def test_ctrl_c_keeps_part_for_next_pull(server, payload, tmp_path, monkeypatch, isolated_home):
    url = server.serve("/files/model.gguf", payload, mode="stall-half")
    write_catalog(tmp_path, monkeypatch, [url_source(url)], sha256=sha256_of(payload))
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(r1chat.__file__).resolve().parent.parent)
    process = subprocess.Popen(
        [sys.executable, "-m", "r1chat.models_cmd", "pull", SPEC],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    part = part_file(isolated_home)
    try:
        assert server.stalled.wait(20), "the server never reached the middle of the file"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if part.exists() and part.stat().st_size == PAYLOAD_SIZE // 2:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 130, err
    assert "Interrupted" in err
    assert "to resume" in err
    assert "Traceback" not in err
    assert part.stat().st_size == PAYLOAD_SIZE // 2
    assert not dest_path(isolated_home).exists()

    server.files["/files/model.gguf"].mode = "range"
    server.release()
    code, _out, err = run_models("pull", SPEC)

    assert code == 0, err
    assert len(server.requests) == 2
    assert server.requests[1].range == f"bytes={PAYLOAD_SIZE // 2}-"
    assert server.requests[1].sent == PAYLOAD_SIZE - PAYLOAD_SIZE // 2
    assert dest_path(isolated_home).read_bytes() == payload


# Bad responses ---------------------------------------------------------------------------


def test_wrong_byte_installs_nothing(server, payload, tmp_path, monkeypatch, isolated_home):
    damaged = bytearray(payload)
    damaged[PAYLOAD_SIZE // 3] ^= 0x01
    url = server.serve("/files/model.gguf", bytes(damaged))
    write_catalog(tmp_path, monkeypatch, [url_source(url)], sha256=sha256_of(payload))

    code, _out, err = run_models("pull", SPEC)

    assert code == 1
    assert "does not match" in err
    assert sha256_of(payload) in err
    assert not dest_path(isolated_home).exists()
    assert not part_file(isolated_home).exists()
    assert store.load_manifest() == {}


def test_not_found_names_url(server, tmp_path, monkeypatch, isolated_home):
    url = server.url("/files/missing.gguf")
    write_catalog(tmp_path, monkeypatch, [url_source(url)], sha256=None)

    code, _out, err = run_models("pull", SPEC)

    assert code == 1
    assert url in err
    assert "404" in err
    assert not dest_path(isolated_home).exists()


def test_html_page_with_status_200_rejected(server, tmp_path, monkeypatch, isolated_home):
    url = server.serve("/files/model.gguf", b"", mode="html")
    write_catalog(tmp_path, monkeypatch, [url_source(url)], sha256=None)

    code, _out, err = run_models("pull", SPEC)

    assert code == 1
    assert "web page" in err
    assert not dest_path(isolated_home).exists()
    assert not part_file(isolated_home).exists() or part_file(isolated_home).stat().st_size == 0


def test_html_body_without_html_type_rejected(server, tmp_path, monkeypatch, isolated_home):
    url = server.serve("/files/model.gguf", b"<html><body>Access denied</body></html>" * 10)
    write_catalog(tmp_path, monkeypatch, [url_source(url)], sha256=None)

    code, _out, err = run_models("pull", SPEC)

    assert code == 1
    assert "web page" in err
    assert "b'" not in err
    assert not dest_path(isolated_home).exists()


def test_non_gguf_body_rejected(server, tmp_path, monkeypatch, isolated_home):
    url = server.serve("/files/model.gguf", b"PK\x03\x04 a zip archive" * 10)
    write_catalog(tmp_path, monkeypatch, [url_source(url)], sha256=None)

    code, _out, err = run_models("pull", SPEC)

    assert code == 1
    assert "not a GGUF model file" in err
    assert not dest_path(isolated_home).exists()


def test_transient_errors_retried(server, payload, tmp_path, monkeypatch, isolated_home):
    url_503 = server.serve("/a.gguf", payload, mode="error-once", status=503)
    url_429 = server.serve("/b.gguf", payload, mode="error-once", status=429)
    write_catalog(tmp_path, monkeypatch, [url_source(url_503), url_source(url_429)], sha256=sha256_of(payload))
    variant = load_catalog().get(MODEL_ID).variant(QUANT)
    sleeps: list[float] = []
    stream = io.StringIO()

    for candidate in download.candidate_urls(variant, ["url"], environ={}):
        result = download.download_variant(
            variant, [candidate], stream=stream, retry_delays=(0.25, 0.5), sleep=sleeps.append
        )
        assert result.path.read_bytes() == payload
        assert result.checked is True
        result.path.unlink()

    assert [r.status for r in server.requests] == [503, 200, 429, 200]
    assert sleeps == [0.25, 0.25]
    assert "HTTP 503" in stream.getvalue()
    assert "HTTP 429" in stream.getvalue()


def test_gives_up_after_retries(server, tmp_path, monkeypatch, isolated_home):
    url = server.serve("/files/model.gguf", b"", mode="status", status=503)
    write_catalog(tmp_path, monkeypatch, [url_source(url)], sha256=None)

    code, _out, err = run_models("pull", SPEC)

    assert code == 1
    assert "gave up after 3 retries" in err
    assert len(server.requests) == 4


def test_failing_source_falls_through(server, payload, tmp_path, monkeypatch, isolated_home):
    missing = server.url("/first/missing.gguf")
    good = server.serve("/second/model.gguf", payload)
    write_catalog(tmp_path, monkeypatch, [url_source(missing), url_source(good)], sha256=sha256_of(payload))

    code, _out, err = run_models("pull", SPEC)

    assert code == 0, err
    assert "Trying the next source" in err
    assert [r.path for r in server.requests] == ["/first/missing.gguf", "/second/model.gguf"]
    assert dest_path(isolated_home).read_bytes() == payload


def test_all_sources_failing_lists_each(server, tmp_path, monkeypatch):
    first, second = server.url("/one.gguf"), server.url("/two.gguf")
    write_catalog(tmp_path, monkeypatch, [url_source(first), url_source(second)], sha256=None)

    code, _out, err = run_models("pull", SPEC)

    assert code == 1
    assert "from any source" in err
    assert first in err
    assert second in err


# Disk space and locking ------------------------------------------------------------------


def test_not_enough_space_checked_first(server, payload, tmp_path, monkeypatch, isolated_home):
    url = server.serve("/files/model.gguf", payload)
    write_catalog(tmp_path, monkeypatch, [url_source(url)], sha256=sha256_of(payload))
    real_usage = download.shutil.disk_usage
    monkeypatch.setattr(
        download.shutil, "disk_usage", lambda path: real_usage(path)._replace(free=100_000)
    )

    code, _out, err = run_models("pull", SPEC)

    assert code == 1
    assert "Not enough free space" in err
    assert "400 kB needed" in err
    assert "100 kB free" in err
    assert server.requests == []


def test_disk_full_keeps_part_for_resume(server, payload, tmp_path, monkeypatch, isolated_home):
    url = server.serve("/files/model.gguf", payload)
    write_catalog(tmp_path, monkeypatch, [url_source(url)], sha256=sha256_of(payload))
    real_write = download._Transfer._write
    limit = 150_000

    def write_until_full(transfer, handle, chunk):
        if transfer.offset + len(chunk) > limit:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(transfer, handle, chunk)

    monkeypatch.setattr(download._Transfer, "_write", write_until_full)
    code, _out, err = run_models("pull", SPEC)

    assert code == 1
    assert "disk is full" in err
    assert "resumes" in err
    saved = part_file(isolated_home).stat().st_size
    assert 0 < saved <= limit
    assert payload.startswith(part_file(isolated_home).read_bytes())

    monkeypatch.setattr(download._Transfer, "_write", real_write)
    code, _out, err = run_models("pull", SPEC)

    assert code == 0, err
    assert server.requests[-1].range == f"bytes={saved}-"
    assert dest_path(isolated_home).read_bytes() == payload


def test_second_pull_of_same_file_blocked(server, payload, tmp_path, monkeypatch, isolated_home):
    url = server.serve("/files/model.gguf", payload)
    write_catalog(tmp_path, monkeypatch, [url_source(url)], sha256=sha256_of(payload))
    dest = dest_path(isolated_home)

    with download.model_file_lock(dest):
        code, _out, err = run_models("pull", SPEC)
        with pytest.raises(AnotherInstanceRunning):
            with download.model_file_lock(dest):
                pass

    assert code == 1
    assert f"(pid {os.getpid()})" in err
    assert server.requests == []
    assert run_models("pull", SPEC)[0] == 0


# Where files come from -----------------------------------------------------------------------


def hub_variant() -> Variant:
    return Variant(
        model_id="m",
        quant="Q4_K_M",
        tier="normal",
        file="m-Q4_K_M.gguf",
        sources=(
            Source(url="https://example.org/direct/m.gguf"),
            Source(hub="modelscope", repo="owner/m-GGUF", revision="master"),
            Source(hub="huggingface", repo="owner/m-GGUF", revision="abc"),
        ),
    )


def test_candidates_follow_source_order():
    order = ["huggingface", "hf-mirror", "modelscope"]

    candidates = download.candidate_urls(hub_variant(), order, environ={})

    assert [c.url for c in candidates] == [
        "https://huggingface.co/owner/m-GGUF/resolve/abc/m-Q4_K_M.gguf",
        "https://hf-mirror.com/owner/m-GGUF/resolve/abc/m-Q4_K_M.gguf",
        "https://modelscope.cn/models/owner/m-GGUF/resolve/master/m-Q4_K_M.gguf",
        "https://example.org/direct/m.gguf",
    ]


def test_candidates_with_chosen_source():
    candidates = download.candidate_urls(hub_variant(), ["huggingface"], only="modelscope", environ={})

    assert [c.source for c in candidates] == ["modelscope"]


def test_candidates_with_url_placed_in_order():
    candidates = download.candidate_urls(hub_variant(), ["url", "modelscope"], environ={})

    assert [c.source for c in candidates] == ["url", "modelscope"]


def test_candidates_with_hf_endpoint_and_token():
    environ = {"HF_ENDPOINT": "https://mirror.example/", "HF_TOKEN": "hf_x"}

    candidates = download.candidate_urls(hub_variant(), ["huggingface", "hf-mirror", "modelscope"], environ=environ)

    assert [c.source for c in candidates] == ["huggingface", "modelscope", "url"]
    assert candidates[0].url == "https://mirror.example/owner/m-GGUF/resolve/abc/m-Q4_K_M.gguf"
    assert candidates[0].headers == (("Authorization", "Bearer hf_x"),)
    assert candidates[1].headers == ()
    assert candidates[2].headers == ()


def test_candidates_reject_unknown_source_name():
    with pytest.raises(SettingsError) as raised:
        download.candidate_urls(hub_variant(), ["github"], environ={})

    assert "github" in str(raised.value)


def test_source_order_setting_used_by_pull(server, payload, tmp_path, monkeypatch, isolated_home):
    url = server.serve("/files/model.gguf", payload)
    write_catalog(tmp_path, monkeypatch, [url_source(url)], sha256=sha256_of(payload))
    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "settings.toml").write_text('source_order = ["modelscope"]\n', encoding="utf-8")

    code, _out, err = run_models("pull", SPEC)

    assert code == 0, err
    assert len(server.requests) == 1

    code, _out, err = run_models("pull", SPEC, "--source", "modelscope")
    assert code == 0
    assert "already on the phone" in _out


def test_source_option_without_matching_source(server, payload, tmp_path, monkeypatch):
    url = server.serve("/files/model.gguf", payload)
    write_catalog(tmp_path, monkeypatch, [url_source(url)], sha256=None)

    code, _out, err = run_models("pull", SPEC, "--source", "modelscope")

    assert code == 2
    assert "no download source of that kind" in err
    assert server.requests == []


def test_list_shows_partial_download(server, payload, tmp_path, monkeypatch, isolated_home):
    url = server.serve("/files/model.gguf", payload, mode="drop-half")
    write_catalog(tmp_path, monkeypatch, [url_source(url)], sha256=sha256_of(payload))
    monkeypatch.setattr(download, "RETRY_DELAYS_S", ())
    assert run_models("pull", SPEC)[0] == 1

    code, out, _err = run_models("list")
    report = json.loads(run_models("list", "--json")[1])

    assert code == 0
    assert "partly downloaded (200 kB)" in out
    variant = next(m for m in report["models"] if m["id"] == MODEL_ID)["variants"][0]
    assert variant["partial_bytes"] == PAYLOAD_SIZE // 2
    assert variant["installed"] is False


def test_size_differing_from_catalog_rejected(server, payload, tmp_path, monkeypatch, isolated_home):
    url = server.serve("/files/model.gguf", payload)
    write_catalog(tmp_path, monkeypatch, [url_source(url)], sha256=sha256_of(payload), size=PAYLOAD_SIZE + 1)

    code, _out, err = run_models("pull", SPEC)

    assert code == 1
    assert f"has {PAYLOAD_SIZE} bytes, but the catalog expects {PAYLOAD_SIZE + 1}" in err
    assert not part_file(isolated_home).exists()
    assert not dest_path(isolated_home).exists()


@pytest.mark.parametrize("body", [b"", b"GG"])
def test_tiny_body_rejected(server, tmp_path, monkeypatch, isolated_home, body):
    url = server.serve("/files/model.gguf", body)
    write_catalog(tmp_path, monkeypatch, [url_source(url)], sha256=None, size=None)

    code, _out, err = run_models("pull", SPEC)

    assert code == 1
    assert f"sent {len(body)} bytes, which is not a GGUF model file" in err
    assert not dest_path(isolated_home).exists()
