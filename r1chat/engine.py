"""Load a GGUF model through llama.cpp and stream tokens.

The decode loop calls llama.cpp's C API (through llama-cpp-python's ctypes
bindings) directly, with no per-token copy of the logits into Python, so
r1chat decodes nearly as fast as llama.cpp itself on a phone's CPU.
"""

from __future__ import annotations

import collections
import ctypes
import importlib
import logging
import os
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from r1chat.conversation import Message, render_r1
from r1chat.errors import EngineError, ModelFileError, PromptTooLong
from r1chat.locale import _

log = logging.getLogger(__name__)
llama_log = logging.getLogger("r1chat.llama_cpp")

GGUF_MAGIC = b"GGUF"
GGUF_VERSIONS = (2, 3)
# Sampler defaults of llama.cpp's own tools, applied before temperature.
DEFAULT_TOP_K = 40
DEFAULT_MIN_P = 0.05
RANDOM_SEED = 0xFFFFFFFF

_import_lock = threading.Lock()
# Last llama.cpp error lines, to explain a failed load.
_recent_errors: collections.deque[str] = collections.deque(maxlen=20)
_log_callback = None
_backend_ready = False


def import_llama_cpp():
    """Import and return the `llama_cpp` module, with its log routed to Python logging.

    Termux's Python reports `sys.platform == "android"`, which
    llama-cpp-python's library loader rejects as an unsupported platform.
    Android's shared libraries load like Linux ones, so the import runs with
    the platform presented as "linux", and only for that import.
    """
    global _backend_ready
    with _import_lock:
        module = sys.modules.get("llama_cpp")
        if module is None:
            if sys.platform == "android":
                sys.platform = "linux"
                try:
                    module = importlib.import_module("llama_cpp")
                finally:
                    sys.platform = "android"
            else:
                module = importlib.import_module("llama_cpp")
        if not _backend_ready:
            _route_llama_log(module)
            module.llama_backend_init()
            _backend_ready = True
    return module


def _route_llama_log(llama_cpp) -> None:
    """Send llama.cpp's log to the `r1chat.llama_cpp` logger instead of stderr.

    stderr is where Textual draws the chat screen, so llama.cpp must never
    write to it; redirecting the file descriptor would blank the screen.
    """
    global _log_callback
    # enum ggml_log_level in the vendored ggml.h: 0 none, 1 debug, 2 info,
    # 3 warn, 4 error, 5 continues the previous line. llama.cpp's info lines
    # are load details, so they go to debug.
    levels = {0: logging.DEBUG, 1: logging.DEBUG, 2: logging.DEBUG, 3: logging.WARNING, 4: logging.ERROR}
    state = {"level": logging.DEBUG, "line": ""}

    def on_log(level, text, _user_data):
        if level != 5:
            state["level"] = levels.get(level, logging.DEBUG)
        # A model load writes thousands of debug lines; skip them unless someone listens.
        if state["level"] < logging.WARNING and not llama_log.isEnabledFor(state["level"]):
            return
        state["line"] += (text or b"").decode("utf-8", errors="replace")
        if not state["line"].endswith("\n"):
            return
        line = state["line"].rstrip()
        state["line"] = ""
        if state["level"] >= logging.WARNING:
            _recent_errors.append(line)
        llama_log.log(state["level"], "%s", line)

    _log_callback = llama_cpp.llama_log_callback(on_log)
    llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))


def check_gguf(path: Path) -> None:
    """Reject a file that cannot be a GGUF model, naming the problem.

    Raises:
        ModelFileError: missing, a folder, empty, not GGUF (an HTML page,
            say) or an unsupported GGUF version.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ModelFileError(
            path, _("the file does not exist."), _("Check the path, or run `r1chat models list`.")
        ) from None
    except OSError as exc:
        raise ModelFileError(path, exc.strerror or str(exc)) from None
    if path.is_dir():
        raise ModelFileError(path, _("it is a folder, not a file."))
    if size == 0:
        raise ModelFileError(path, _("the file is empty (0 bytes)."))
    with path.open("rb") as handle:
        head = handle.read(512)
    if not head.startswith(GGUF_MAGIC):
        if b"<html" in head.lower() or b"<!doctype" in head.lower() or head.lstrip().startswith(b"<"):
            problem = _("it is an HTML page, not a GGUF model (a failed download?).")
        else:
            problem = _("it is not a GGUF model file (it does not start with 'GGUF').")
        raise ModelFileError(path, problem)
    if len(head) < 24:
        raise ModelFileError(path, _("the file is truncated ({size} bytes).").format(size=size))
    (version,) = struct.unpack_from("<I", head, 4)
    if version not in GGUF_VERSIONS:
        raise ModelFileError(
            path, _("unsupported GGUF version {version}.").format(version=version)
        )


@dataclass
class Sampling:
    temperature: float = 0.6
    top_p: float = 0.95
    top_k: int = DEFAULT_TOP_K
    min_p: float = DEFAULT_MIN_P
    seed: int | None = None
    max_tokens: int = 2048
    # Keep going past end-of-generation tokens; `r1chat bench` uses it to decode a fixed count.
    ignore_eos: bool = False


@dataclass
class StreamStats:
    """Figures of the last generation; times in seconds."""

    prompt_tokens: int = 0
    reused_tokens: int = 0
    completion_tokens: int = 0
    first_token_s: float = 0.0
    prefill_tokens_per_s: float = 0.0
    decode_tokens_per_s: float = 0.0
    finish_reason: str = "stop"
    threads: int = 0


@dataclass
class ModelInfo:
    path: Path
    name: str = ""
    architecture: str = ""
    n_ctx_train: int = 0
    n_vocab: int = 0
    size_bytes: int = 0
    chat_template: str | None = None
    extra: dict = field(default_factory=dict)


def default_threads() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


class Engine:
    """One loaded model with one context.

    Args:
        path: the GGUF file.
        n_ctx: context window in tokens (capped at the model's training length).
        n_batch: tokens per prompt-processing batch.
        n_threads: decode threads; None picks `default_threads()`.
        progress: called with the load fraction (0.0-1.0) while loading.

    Raises:
        ModelFileError: the file is not a loadable GGUF model.
        EngineError: llama.cpp could not create a context (out of memory).
    """

    def __init__(
        self,
        path: Path,
        *,
        n_ctx: int = 4096,
        n_batch: int = 512,
        n_threads: int | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> None:
        self._llama = import_llama_cpp()
        L = self._llama
        self.path = Path(path)
        check_gguf(self.path)
        self.n_threads = n_threads or default_threads()
        self._threads_request: int | None = None
        self._model = None
        self._ctx = None

        params = L.llama_model_default_params()
        params.n_gpu_layers = 0
        if progress is not None:
            def on_progress(fraction, _user_data):
                progress(float(fraction))
                return True

            self._progress_callback = L.llama_progress_callback(on_progress)
            params.progress_callback = self._progress_callback

        _recent_errors.clear()
        started = time.perf_counter()
        self._model = L.llama_model_load_from_file(os.fsencode(self.path), params)
        if not self._model:
            raise ModelFileError(self.path, self._describe_load_failure())
        self._vocab = L.llama_model_get_vocab(self._model)
        self.info = self._read_info()

        if n_ctx > self.info.n_ctx_train > 0:
            log.warning("context %d exceeds the model's training length %d; capping", n_ctx, self.info.n_ctx_train)
            n_ctx = self.info.n_ctx_train
        ctx_params = L.llama_context_default_params()
        ctx_params.n_ctx = n_ctx
        ctx_params.n_batch = n_batch
        ctx_params.n_ubatch = n_batch
        ctx_params.n_threads = self.n_threads
        ctx_params.n_threads_batch = self.n_threads
        self._ctx = L.llama_init_from_model(self._model, ctx_params)
        if not self._ctx:
            self.close()
            raise EngineError(
                _("could not allocate a {n_ctx}-token context: {reason}").format(
                    n_ctx=n_ctx, reason=_recent_errors[-1] if _recent_errors else "out of memory?"
                )
            )
        self.load_s = time.perf_counter() - started
        self.n_ctx = L.llama_n_ctx(self._ctx)
        # llama.cpp may lower the batch size (never above the context size);
        # a larger prompt chunk than it accepts aborts the process.
        self.n_batch = L.llama_n_batch(self._ctx)
        self._memory = L.llama_get_memory(self._ctx)
        self._cached: list[int] = []
        self._piece = ctypes.create_string_buffer(256)
        self.last_stats = StreamStats()
        log.debug("loaded %s in %.2f s (ctx %d, threads %d)", self.path, self.load_s, self.n_ctx, self.n_threads)

    def _describe_load_failure(self) -> str:
        text = " ".join(_recent_errors).lower()
        size = self.path.stat().st_size
        if "file bounds" in text or "incomplete" in text or "truncated" in text or "unexpected end" in text:
            return _("the file is truncated or incomplete ({size} bytes).").format(size=size)
        detail = _recent_errors[-1] if _recent_errors else _("unknown error")
        return _("the file is damaged or not a supported model ({detail}).").format(detail=detail)

    def _meta(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(1024)
        n = self._llama.llama_model_meta_val_str(self._model, key.encode(), buf, len(buf))
        if n < 0:
            return None
        if n >= len(buf):
            buf = ctypes.create_string_buffer(n + 1)
            self._llama.llama_model_meta_val_str(self._model, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", errors="replace")

    def _read_info(self) -> ModelInfo:
        L = self._llama
        template = L.llama_model_chat_template(self._model, None)
        return ModelInfo(
            path=self.path,
            name=self._meta("general.name") or self.path.stem,
            architecture=self._meta("general.architecture") or "",
            n_ctx_train=L.llama_model_n_ctx_train(self._model),
            n_vocab=L.llama_vocab_n_tokens(self._vocab),
            size_bytes=L.llama_model_size(self._model),
            chat_template=template.decode("utf-8", errors="replace") if template else None,
        )

    # Prompts ---------------------------------------------------------------

    def tokenize(self, text: str, *, special: bool) -> list[int]:
        """Tokenize `text`; `special` lets control-token text become control tokens."""
        L = self._llama
        data = text.encode("utf-8")
        capacity = len(data) + 8
        tokens = (L.llama_token * capacity)()
        n = L.llama_tokenize(self._vocab, data, len(data), tokens, capacity, False, special)
        if n < 0:
            capacity = -n
            tokens = (L.llama_token * capacity)()
            n = L.llama_tokenize(self._vocab, data, len(data), tokens, capacity, False, special)
        return list(tokens[:n])

    def prompt_tokens(self, messages: list[Message], r1_format: bool) -> list[int]:
        """Render `messages` (R1 format, or the model's own template) and tokenize."""
        if r1_format:
            tokens: list[int] = []
            for segment in render_r1(messages):
                tokens += self.tokenize(segment.text, special=segment.special)
            return tokens
        text = self.apply_template(messages)
        tokens = self.tokenize(text, special=True)
        bos = self._llama.llama_vocab_bos(self._vocab)
        if self._llama.llama_vocab_get_add_bos(self._vocab) and bos >= 0 and tokens[:1] != [bos]:
            tokens.insert(0, bos)
        return tokens

    def apply_template(self, messages: list[Message]) -> str:
        """Render messages with the GGUF's chat template and a generation prompt.

        llama.cpp recognises the common templates itself; any other template
        is rendered with Jinja2 in a sandbox.
        """
        L = self._llama
        template = self.info.chat_template
        encoded = [(m.role.encode(), m.content.encode("utf-8")) for m in messages]
        chat = (L.llama_chat_message * len(encoded))(*[L.llama_chat_message(r, c) for r, c in encoded])
        tmpl = template.encode("utf-8") if template else b"chatml"
        capacity = 2 * sum(len(c) for _, c in encoded) + 1024
        buf = ctypes.create_string_buffer(capacity)
        n = L.llama_chat_apply_template(tmpl, chat, len(encoded), True, buf, capacity)
        if n > capacity:
            buf = ctypes.create_string_buffer(n + 1)
            n = L.llama_chat_apply_template(tmpl, chat, len(encoded), True, buf, n + 1)
        if n >= 0:
            return buf.raw[:n].decode("utf-8", errors="replace")
        return self._render_jinja(template or "", messages)

    def _render_jinja(self, template: str, messages: list[Message]) -> str:
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message):
            raise EngineError(_("the model's chat template failed: {message}").format(message=message))

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        return env.from_string(template).render(
            messages=[{"role": m.role, "content": m.content} for m in messages],
            add_generation_prompt=True,
            bos_token=self.token_text(self._llama.llama_vocab_bos(self._vocab)),
            eos_token=self.token_text(self._llama.llama_vocab_eos(self._vocab)),
            raise_exception=raise_exception,
        )

    def token_text(self, token: int) -> str:
        if token < 0:
            return ""
        n = self._llama.llama_token_to_piece(self._vocab, token, self._piece, len(self._piece), 0, True)
        return ctypes.string_at(self._piece, max(n, 0)).decode("utf-8", errors="replace")

    # Generation ------------------------------------------------------------

    def set_threads(self, n_threads: int) -> None:
        """Ask for a new thread count; it applies between two decode steps."""
        self._threads_request = max(1, int(n_threads))

    def _apply_thread_request(self) -> None:
        n = self._threads_request
        self._threads_request = None
        if n is not None and n != self.n_threads:
            self._llama.llama_set_n_threads(self._ctx, n, n)
            log.info("decode threads %d -> %d", self.n_threads, n)
            self.n_threads = n

    def reset_cache(self) -> None:
        """Forget the cached prompt, so the next generation reads its whole prompt again."""
        self._cached = []
        self._llama.llama_memory_clear(self._memory, True)

    def _make_sampler(self, sampling: Sampling):
        L = self._llama
        chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
        if sampling.temperature <= 0:
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_greedy())
            return chain
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_top_k(sampling.top_k))
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_top_p(sampling.top_p, 1))
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_min_p(sampling.min_p, 1))
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_temp(sampling.temperature))
        seed = RANDOM_SEED if sampling.seed is None else sampling.seed & 0xFFFFFFFF
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_dist(seed))
        return chain

    def _prefill(self, tokens: list[int], cancel: threading.Event | None) -> int:
        """Feed the prompt, reusing the cached prefix.

        Returns how many tokens were reused, or -1 when `cancel` was set.
        """
        L = self._llama
        reuse = 0
        for old, new in zip(self._cached, tokens):
            if old != new:
                break
            reuse += 1
        # The last prompt token must be decoded again to get fresh logits.
        reuse = min(reuse, len(tokens) - 1)
        if not L.llama_memory_seq_rm(self._memory, 0, reuse, -1):
            L.llama_memory_clear(self._memory, True)
            reuse = 0
        self._cached = list(tokens[:reuse])
        for start in range(reuse, len(tokens), self.n_batch):
            if cancel is not None and cancel.is_set():
                return -1
            chunk = tokens[start:start + self.n_batch]
            array = (L.llama_token * len(chunk))(*chunk)
            rc = L.llama_decode(self._ctx, L.llama_batch_get_one(array, len(chunk)))
            if rc != 0:
                self._cached = []
                L.llama_memory_clear(self._memory, True)
                raise EngineError(_("llama_decode returned {rc} while reading the prompt").format(rc=rc))
            self._cached += chunk
        return reuse

    def generate(
        self,
        tokens: list[int],
        sampling: Sampling,
        cancel: threading.Event | None = None,
    ) -> Iterator[bytes]:
        """Stream the model's continuation of `tokens` as raw UTF-8 pieces.

        A piece may end inside a multi-byte character. Generation stops at an
        end-of-generation token ("stop"), at `sampling.max_tokens` or a full
        context ("length"), or when `cancel` is set ("interrupted");
        `last_stats.finish_reason` records which once the iterator is exhausted.

        Raises:
            PromptTooLong: `tokens` leave no room to answer in the context.
            EngineError: llama.cpp failed to decode.
        """
        L = self._llama
        if len(tokens) >= self.n_ctx:
            raise PromptTooLong(len(tokens), self.n_ctx)
        stats = StreamStats(prompt_tokens=len(tokens), threads=self.n_threads)
        self.last_stats = stats
        self._apply_thread_request()
        started = time.perf_counter()
        stats.reused_tokens = self._prefill(tokens, cancel)
        if stats.reused_tokens < 0:
            stats.reused_tokens = 0
            stats.finish_reason = "interrupted"
            return
        prefill_done = time.perf_counter()
        if prefill_done > started:
            stats.prefill_tokens_per_s = (len(tokens) - stats.reused_tokens) / (prefill_done - started)

        sampler = self._make_sampler(sampling)
        ctx, vocab, piece = self._ctx, self._vocab, self._piece
        sample, is_eog, to_piece = L.llama_sampler_sample, L.llama_vocab_is_eog, L.llama_token_to_piece
        decode, string_at = L.llama_decode, ctypes.string_at
        current = (L.llama_token * 1)()
        batch = L.llama_batch_get_one(current, 1)
        room = min(sampling.max_tokens, self.n_ctx - len(tokens))
        cached = self._cached
        stop_at_eog = not sampling.ignore_eos
        first_at = last_at = 0.0
        produced = 0
        stats.finish_reason = "length"
        try:
            while produced < room:
                token = sample(sampler, ctx, -1)
                if stop_at_eog and is_eog(vocab, token):
                    stats.finish_reason = "stop"
                    break
                n = to_piece(vocab, token, piece, 256, 0, False)
                produced += 1
                last_at = time.perf_counter()
                if produced == 1:
                    first_at = last_at
                    stats.first_token_s = first_at - started
                stats.completion_tokens = produced
                if n > 0:
                    yield string_at(piece, n)
                if cancel is not None and cancel.is_set():
                    stats.finish_reason = "interrupted"
                    break
                if produced >= room:
                    break
                if self._threads_request is not None:
                    self._apply_thread_request()
                    stats.threads = self.n_threads
                current[0] = token
                rc = decode(ctx, batch)
                if rc != 0:
                    raise EngineError(_("llama_decode returned {rc} while answering").format(rc=rc))
                cached.append(token)
        except GeneratorExit:
            stats.finish_reason = "interrupted"
            raise
        finally:
            L.llama_sampler_free(sampler)
            if produced > 1 and last_at > first_at:
                stats.decode_tokens_per_s = (produced - 1) / (last_at - first_at)

    def close(self) -> None:
        """Free the context and the model; the engine is unusable afterwards."""
        L = self._llama
        if self._ctx:
            L.llama_free(self._ctx)
            self._ctx = None
        if self._model:
            L.llama_model_free(self._model)
            self._model = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown may have torn down ctypes
            pass
