"""Command line: parse arguments and dispatch.

Heavy modules (llama_cpp, textual) are imported only by the commands that
need them, so `r1chat --version` and the start of `-p` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from r1chat import __version__
from r1chat.errors import R1ChatError, UsageError, error_line
from r1chat.locale import _

# Subcommands with their own parser: name -> module with `main(argv) -> int`.
SUBCOMMANDS = {
    "models": "r1chat.models_cmd",
    "status": "r1chat.status_cmd",
    "bench": "r1chat.bench_cmd",
}
EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 1, 2, 130, 141
# The value of -p when it is followed by another option instead of a prompt.
PROMPT_AFTER_OPTIONS = object()

# argparse looks its own messages up through `argparse._`; route them through
# r1chat's catalog so that usage errors are translated too.
argparse._ = _


class ArgumentParser(argparse.ArgumentParser):
    """argparse with usage errors raised as UsageError, so they print like every other error."""

    def error(self, message: str):
        raise UsageError(message, _("Run `r1chat --help` for the options."))


def number_parser(kind: type, low: float, high: float | None = None):
    """Return an argparse type that reads a `kind` number between `low` and `high`."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            message = _("{value!r} is not a whole number") if kind is int else _("{value!r} is not a number")
            raise argparse.ArgumentTypeError(message.format(value=text)) from None
        if high is None and value < low:
            raise argparse.ArgumentTypeError(_("{value} must be at least {low}").format(value=value, low=low))
        if high is not None and not low <= value <= high:
            raise argparse.ArgumentTypeError(
                _("{value} must be between {low} and {high}").format(value=value, low=low, high=high)
            )
        return value

    return parse


positive_int = number_parser(int, 1)
probability = number_parser(float, 0.0, 1.0)
temperature = number_parser(float, 0.0, 2.0)
seed = number_parser(int, 0, 2**32 - 1)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="r1chat",
        description=_("Offline chat with DeepSeek-R1 on your phone. With no arguments, opens the chat screen."),
        epilog=_(
            "Other commands: `r1chat models list|pull|verify|rm|path|quantize`, "
            "`r1chat status`, `r1chat bench`. Each has --help."
        ),
    )
    parser.add_argument("--version", action="store_true", help=_("print the version and exit"))
    parser.add_argument(
        "-p", "--prompt", metavar="PROMPT", nargs="?", const=PROMPT_AFTER_OPTIONS,
        help=_('answer PROMPT once and exit; "-" reads the prompt from standard input, '
               "and text piped in with a PROMPT is appended to it"),
    )
    # `r1chat -p --json "question"`: a prompt may also follow the other options.
    parser.add_argument("words", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument(
        "-m", "--model", metavar="MODEL",
        help=_("catalog id, id:QUANT (e.g. deepseek-r1-1.5b:Q2_K) or a path to a .gguf file"),
    )
    parser.add_argument("--json", action="store_true", help=_("with -p: print one JSON object instead of the answer"))
    think = parser.add_mutually_exclusive_group()
    think.add_argument("--think", dest="think", action="store_true", default=None,
                       help=_("show the model's reasoning on stderr (default when stderr is a terminal)"))
    think.add_argument("--no-think", dest="think", action="store_false", help=_("hide the reasoning"))
    parser.add_argument("-n", "--max-tokens", type=positive_int, metavar="N",
                        help=_("stop after N generated tokens, reasoning included (default 2048)"))
    parser.add_argument("--temperature", type=temperature, metavar="F",
                        help=_("sampling temperature, 0 for greedy (default 0.6)"))
    parser.add_argument("--top-p", type=probability, metavar="F", help=_("nucleus sampling threshold (default 0.95)"))
    parser.add_argument("--seed", type=seed, metavar="N",
                        help=_("random seed; the same seed, prompt, model and threads give the same answer"))
    parser.add_argument("-t", "--threads", type=positive_int, metavar="N",
                        help=_("fixed number of CPU threads (bypasses the power governor)"))
    parser.add_argument("--ctx", type=positive_int, metavar="N", help=_("context window in tokens (default 4096)"))
    parser.add_argument("-c", "--continue", dest="continue_last", action="store_true",
                        help=_("continue the last conversation (with -p: add this turn to it)"))
    return parser


def configure_logging() -> None:
    """Log to stderr at debug level when R1CHAT_DEBUG=1; otherwise stay silent."""
    root = logging.getLogger("r1chat")
    if os.environ.get("R1CHAT_DEBUG") == "1":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
    else:
        root.addHandler(logging.NullHandler())
        root.propagate = False


def report_error(error: R1ChatError) -> None:
    print(error_line(str(error), error.hint), file=sys.stderr)


def resolve_prompt(args: argparse.Namespace) -> None:
    """Take the prompt from the words after the options when -p had no value of its own.

    Raises:
        UsageError: words without -p, or -p with neither a prompt nor piped input.
    """
    words = " ".join(args.words).strip()
    if args.prompt is PROMPT_AFTER_OPTIONS:
        if words:
            args.prompt = words
        elif not sys.stdin.isatty():
            args.prompt = "-"
        else:
            raise UsageError(_("-p needs a prompt."), _('For example `r1chat -p "Hello"`.'))
    elif words:
        if args.prompt is None:
            raise UsageError(
                _("Unknown command {word!r}.").format(word=args.words[0]),
                _('To ask a question, use `r1chat -p "..."`; `r1chat --help` lists the commands.'),
            )
        raise UsageError(
            _("Unexpected arguments after the prompt: {words}").format(words=words),
            _('Quote the whole prompt, for example `r1chat -p "two words"`.'),
        )


def dispatch(argv: list[str]) -> int:
    if not (argv and argv[0] in ("--version", "--help", "-h")):
        from r1chat.platform_check import check_platform

        check_platform()
    if argv and argv[0] in SUBCOMMANDS:
        module = importlib.import_module(SUBCOMMANDS[argv[0]])
        return module.main(argv[1:])

    args = build_parser().parse_args(argv)
    resolve_prompt(args)
    if args.version:
        print(f"r1chat {__version__}")
        return 0
    if args.prompt is not None:
        from r1chat import oneshot

        return oneshot.run(args)
    if args.json:
        raise UsageError(_("--json works only with -p."), _('Use `r1chat -p "..." --json`.'))

    from r1chat.tui import app

    return app.run(args)


def main(argv: list[str] | None = None) -> int:
    """Run r1chat with `argv` (default: the process arguments); return the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    configure_logging()
    debug = os.environ.get("R1CHAT_DEBUG") == "1"
    try:
        return dispatch(argv)
    except R1ChatError as error:
        if debug:
            logging.getLogger(__name__).exception("command failed")
        report_error(error)
        return error.exit_code
    except KeyboardInterrupt:
        print(_("Interrupted."), file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (`r1chat -p ... | head -1`), so exit without a message.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as error:  # noqa: BLE001 - the last guard before a user sees a traceback
        if debug:
            raise
        print(
            _("Error: unexpected {kind}: {error}. Run again with R1CHAT_DEBUG=1 for details.").format(
                kind=type(error).__name__, error=error
            ),
            file=sys.stderr,
        )
        return EXIT_FAILED
