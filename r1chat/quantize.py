"""Derive a lower-bit copy of an installed model with llama.cpp's quantizer.

The low-battery tier of a model can then be made on the phone instead of
downloaded a second time. The quantizer runs in a child process
(`python -m r1chat.quantize --worker ...`) for two reasons. First, a C call
cannot be interrupted from Python, so Ctrl-C stops the child instead of
waiting minutes for it. Second, llama.cpp's log can be read there without
touching the log callback of the parent, where a model may be loaded. The
child reports progress as JSON lines on its stdout, one per tensor, parsed
from the quantizer's `[  12/ 272] blk.1.attn_q.weight ...` log lines.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import r1chat
from r1chat import config, store
from r1chat.catalog import Catalog, Variant
from r1chat.errors import (
    ModelFileError,
    ModelNotFound,
    ModelNotInstalled,
    QuantizeError,
    UsageError,
)
from r1chat.locale import _
from r1chat.progress import Progress, format_bytes

log = logging.getLogger(__name__)

FTYPE_PREFIX = "LLAMA_FTYPE_MOSTLY_"
# ggml_log_level values from ggml.h (llama.cpp bundled with llama-cpp-python 0.3.x).
GGML_LOG_LEVEL_ERROR = 4
_TENSOR_LINE = re.compile(r"\[\s*(\d+)/\s*(\d+)\]")
_FAILED_LINE = re.compile(r"failed to quantize:\s*(.+)")
# Types tried on the starter model (SmolLM2-135M Q4_1, 98.4 MB) with
# llama-cpp-python 0.3.36: Q3_K_S gives 88.2 MB and IQ4_NL 92.1 MB, and both
# still answer a short prompt. Its 576-wide tensors are not a multiple of the
# 256-wide k-quant blocks, so most tensors fall back to a 32-wide type.
SUGGESTED_TYPES = ("Q3_K_S", "IQ4_NL", "Q4_0", "Q2_K")


@dataclass(frozen=True)
class QuantizeResult:
    variant: Variant
    path: Path
    sha256: str
    source_size: int
    size: int


def needs_importance_matrix(quant: str) -> bool:
    """Return whether llama.cpp rejects `quant` without an importance matrix.

    llama.cpp bails out on IQ1_*, IQ2_* and Q2_K_S tensors quantized without
    one, because the result would be unusable.
    """
    quant = quant.upper()
    return quant.startswith(("IQ1_", "IQ2_")) or quant == "Q2_K_S"


def quantize_types(llama_cpp) -> list[str]:
    """Return the type names the installed llama.cpp can quantize to without an importance matrix."""
    names = [name[len(FTYPE_PREFIX):] for name in dir(llama_cpp) if name.startswith(FTYPE_PREFIX)]
    return sorted(name for name in names if not needs_importance_matrix(name) and name not in ("F16", "BF16"))


def ftype_of(quant: str, model_id: str = "ID") -> int:
    """Return llama.cpp's LLAMA_FTYPE_MOSTLY_* number for `quant`.

    Raises:
        UsageError: the type needs an importance matrix or is unknown.
    """
    quant = quant.upper()
    if needs_importance_matrix(quant):
        raise UsageError(
            _("{quant} needs an importance matrix, which r1chat cannot compute on the phone.").format(quant=quant),
            _("Download a ready-made low-bit file with `r1chat models pull {model} --low`, or pick {types}.").format(
                model=model_id, types=", ".join(SUGGESTED_TYPES)
            ),
        )
    from r1chat.engine import import_llama_cpp

    llama_cpp = import_llama_cpp()
    value = getattr(llama_cpp, FTYPE_PREFIX + quant, None)
    if value is None or quant in ("F16", "BF16"):
        raise UsageError(
            _("Unknown quantization type {quant}.").format(quant=quant),
            _("Known types: {types}.").format(types=", ".join(quantize_types(llama_cpp))),
        )
    return int(value)


# The command --------------------------------------------------------------------


def quantize_model(
    catalog: Catalog,
    spec: str,
    quant: str,
    *,
    threads: int | None = None,
    stream: TextIO | None = None,
) -> QuantizeResult:
    """Make the `quant` variant of model `spec` (`ID` or `ID:SOURCE_QUANT`) from an installed one.

    The target must be a variant of the model in the catalog, so that it can be
    listed and picked afterwards. The source is SOURCE_QUANT when given, else the
    variant the catalog derives the target from, else an installed normal-tier
    variant. The result is recorded in the manifest with its own sha256.

    Raises:
        ModelNotFound: unknown model or variant.
        ModelNotInstalled: the source variant is not on the phone.
        ModelFileError: the source failed its sha256 check.
        UsageError: the type is unknown, needs an importance matrix, or the
            variant is not one that can be derived.
        QuantizeError: llama.cpp failed.
        NotEnoughSpace, AnotherInstanceRunning: as in downloads.
    """
    from r1chat.download import check_free_space, model_file_lock

    stream = stream if stream is not None else sys.stderr
    quant = quant.upper()
    model_id, _sep, source_quant = spec.partition(":")
    entry = catalog.get(model_id)
    if entry is None:
        raise ModelNotFound(spec)
    ftype = ftype_of(quant, entry.id)
    target = _target_variant(entry, quant)
    source = _source_variant(entry, target, source_quant)

    source_path = store.installed_path(source)
    if source_path is None:
        raise ModelNotInstalled(entry.id, source.quant)
    if store.verification_state(source, source_path) == "mismatch":
        raise ModelFileError(
            source_path,
            _("it failed its sha256 check"),
            _("Run `r1chat models pull {spec}` to download it again.").format(spec=source.spec),
        )

    dest = store.variant_path(target)
    source_size = source_path.stat().st_size
    # A lower-bit copy is smaller than its source; requantizing upwards is rare.
    check_free_space(config.ensure_dir(dest.parent), source_size)
    stream.write(
        _("Making {target} from {source} ({size})").format(
            target=target.spec, source=source.spec, size=format_bytes(source_size)
        )
        + "\n"
    )
    with model_file_lock(dest):
        quantize_file(source_path, dest, ftype, label=target.spec, threads=threads, stream=stream)
        progress = Progress(dest.stat().st_size, _("sha256"), stream)
        sha256 = store.sha256_file(dest, progress.update)
        progress.close()
        store.record_file(dest, sha256, good=True)
    return QuantizeResult(target, dest, sha256, source_size, dest.stat().st_size)


def _target_variant(entry, quant: str) -> Variant:
    target = entry.variant(quant)
    if target is None:
        raise UsageError(
            _("{model} has no {quant} variant in the catalog, so a file made for it could not be picked later.").format(
                model=entry.id, quant=quant
            ),
            _("Pick one of {quants}, or add a {quant} variant with `derive = {{ from = \"QUANT\" }}` to {path}.").format(
                quants=", ".join(v.quant for v in entry.variants if _derivable(v)) or "-",
                quant=quant,
                path=config.user_catalog_path(),
            ),
        )
    if target.bundled:
        raise UsageError(
            _("{spec} ships inside the Python package {package}; it is not made on the phone.").format(
                spec=target.spec, package=target.bundled
            )
        )
    if target.sha256 and target.derive_from is None:
        raise UsageError(
            _("{spec} is a published file with a known sha256; a copy made on the phone would not match it.").format(
                spec=target.spec
            ),
            _("Run `r1chat models pull {spec}` to download it.").format(spec=target.spec),
        )
    return target


def _derivable(variant: Variant) -> bool:
    """Return whether a file made on the phone may stand for `variant`."""
    return not variant.bundled and (variant.derive_from is not None or variant.sha256 is None)


def _source_variant(entry, target: Variant, source_quant: str) -> Variant:
    if source_quant:
        source = entry.variant(source_quant)
        if source is None:
            raise ModelNotFound(f"{entry.id}:{source_quant}")
    elif target.derive_from:
        source = entry.variant(target.derive_from)
    else:
        installed = [v for v in entry.variants if v is not target and store.installed_path(v)]
        installed.sort(key=lambda v: v.tier != "normal")
        if not installed:
            normal = entry.tier_variant("normal") or entry.variants[0]
            raise ModelNotInstalled(entry.id, normal.quant)
        source = installed[0]
    if source.quant == target.quant:
        raise UsageError(_("{spec} cannot be made from itself.").format(spec=target.spec))
    return source


# Running the quantizer in a child process -------------------------------------------


def quantize_file(
    source: Path,
    dest: Path,
    ftype: int,
    *,
    label: str,
    threads: int | None = None,
    stream: TextIO | None = None,
) -> None:
    """Quantize `source` into `dest` (written as `<dest>.tmp`, then renamed) with progress on `stream`.

    Raises:
        QuantizeError: llama.cpp failed; the temporary file is removed.
        KeyboardInterrupt: after stopping the child and removing the temporary file.
    """
    stream = stream if stream is not None else sys.stderr
    tmp = dest.with_name(dest.name + ".tmp")
    command = [
        sys.executable, "-m", "r1chat.quantize", "--worker",
        os.fspath(source), os.fspath(tmp), str(ftype), str(threads or 0),
    ]
    env = dict(os.environ)
    package_root = str(Path(r1chat.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))

    error_lines: list[str] = []
    progress: Progress | None = None
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as child_stderr:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=child_stderr, stdin=subprocess.DEVNULL,
            text=True, encoding="utf-8", env=env,
        )
        try:
            for line in process.stdout:
                message = _parse_message(line)
                if "tensor" in message:
                    if progress is None:
                        progress = Progress(message["of"], label, stream, unit=_("tensors"))
                    progress.update(message["tensor"])
                elif "log" in message:
                    text = message.get("text", "").rstrip()
                    log.debug("llama.cpp: %s", text)
                    if message["log"] == GGML_LOG_LEVEL_ERROR and text.strip():
                        error_lines.append(text.strip())
            returncode = process.wait()
        except BaseException:
            process.kill()
            process.wait()
            tmp.unlink(missing_ok=True)
            raise
        finally:
            if progress is not None:
                progress.close()
            process.stdout.close()
        child_stderr.seek(0)
        stderr_text = child_stderr.read()

    if returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise QuantizeError(_failure_detail(error_lines, stderr_text, returncode))
    os.replace(tmp, dest)


def _parse_message(line: str) -> dict:
    try:
        message = json.loads(line)
    except ValueError:
        log.debug("quantize worker: %s", line.rstrip())
        return {}
    return message if isinstance(message, dict) else {}


def _failure_detail(error_lines: list[str], stderr_text: str, returncode: int) -> str:
    for line in error_lines:
        match = _FAILED_LINE.search(line)
        if match:
            return match.group(1).strip()
    meaningful = [line for line in error_lines if line.strip("= \n")]
    if meaningful:
        return meaningful[-1]
    tail = stderr_text.strip().splitlines()[-1:] if stderr_text.strip() else []
    if tail:
        return tail[0]
    return _("the quantizer exited with code {code}").format(code=returncode)


def _run_worker(argv: list[str]) -> int:
    """Quantize in this process and report JSON lines on stdout (the child side)."""
    from r1chat.engine import import_llama_cpp

    source, dest, ftype, threads = argv
    llama_cpp = import_llama_cpp()
    lock = threading.Lock()

    def emit(message: dict) -> None:
        with lock:
            sys.stdout.write(json.dumps(message) + "\n")
            sys.stdout.flush()

    @llama_cpp.llama_log_callback
    def on_log(level: int, text: bytes, user_data) -> None:
        decoded = text.decode("utf-8", "replace")
        match = _TENSOR_LINE.match(decoded)
        if match:
            emit({"tensor": int(match.group(1)), "of": int(match.group(2))})
        elif decoded.strip():
            emit({"log": level, "text": decoded})

    llama_cpp.llama_log_set(on_log, ctypes.c_void_p(0))
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = int(ftype)
    params.allow_requantize = True
    params.nthread = int(threads)
    result = llama_cpp.llama_model_quantize(
        os.fsencode(source), os.fsencode(dest), ctypes.byref(params)
    )
    emit({"result": result})
    return 0 if result == 0 else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"] and len(sys.argv) == 6:
        sys.exit(_run_worker(sys.argv[2:]))
    sys.stderr.write("usage: python -m r1chat.quantize --worker SOURCE DEST FTYPE THREADS\n")
    sys.exit(2)
