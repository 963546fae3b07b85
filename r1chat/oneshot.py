"""`r1chat -p`: answer one prompt and exit.

stdout carries only the answer (streamed) or one JSON object; reasoning,
progress and notices go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys

from r1chat import config
from r1chat.conversation import Message
from r1chat.errors import UsageError
from r1chat.locale import _

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DIM, RESET = "\x1b[2m", "\x1b[0m"


def read_prompt(prompt: str, stdin=None) -> str:
    """Combine the -p argument with standard input.

    `-p -` reads the whole prompt from stdin; with any other prompt, text
    piped into stdin is appended to it as context.

    Raises:
        UsageError: the resulting prompt is empty.
    """
    stdin = stdin if stdin is not None else sys.stdin
    piped = ""
    if prompt == "-" or (stdin is not None and not stdin.isatty()):
        piped = stdin.read() if stdin is not None else ""
    if prompt == "-":
        if not piped.strip():
            raise UsageError(
                _("No prompt: `-p -` reads the prompt from standard input, which was empty."),
                _('Pipe text in, for example `echo "Hello" | r1chat -p -`.'),
            )
        return piped.strip()
    if not prompt.strip():
        raise UsageError(_("The prompt is empty."), _('Give one, for example `r1chat -p "Hello"`.'))
    if piped.strip():
        return f"{prompt.strip()}\n\n{piped.strip()}"
    return prompt.strip()


class StderrWriter:
    """Writes reasoning and notices to stderr, dimmed when stderr is a terminal."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.color = self.stream.isatty()
        self._dimmed = False
        self._at_line_start = True

    def reasoning(self, text: str) -> None:
        if self.color and not self._dimmed:
            self.stream.write(DIM)
            self._dimmed = True
        self._write(text)

    def notice(self, text: str) -> None:
        self.end_reasoning()
        if not self._at_line_start:
            self._write("\n")
        self._write(text + "\n")

    def end_reasoning(self) -> None:
        if self._dimmed:
            self.stream.write(RESET)
            self._dimmed = False
        if not self._at_line_start:
            self._write("\n")

    def _write(self, text: str) -> None:
        if not text:
            return
        self.stream.write(text)
        self.stream.flush()
        self._at_line_start = text.endswith("\n")


def load_progress_bar(label: str):
    """Return a progress bar for model loading, or None when stderr is not a terminal."""
    if not sys.stderr.isatty():
        return None
    from r1chat.progress import Progress

    return Progress(100, label, sys.stderr, unit="%")


def run(args: argparse.Namespace) -> int:
    """Answer `args.prompt` once; return the exit code.

    Raises:
        R1ChatError: a model, file or prompt problem; the CLI reports it.
    """
    notices = StderrWriter()
    prompt = read_prompt(args.prompt)
    settings = config.load_settings()
    show_reasoning = args.think if args.think is not None else sys.stderr.isatty()

    from r1chat.session import ChatSession, sampling_from_args

    progress_bars = []

    def load_progress(label: str):
        bar = load_progress_bar(_("Loading {model}").format(model=label))
        if bar is None:
            return None
        progress_bars.append(bar)
        return lambda fraction: bar.update(int(fraction * 100))

    session = ChatSession(
        settings,
        model_spec=args.model,
        fixed_threads=args.threads,
        n_ctx=args.ctx,
        notify=notices.notice,
        load_progress=load_progress,
    )
    try:
        session.prepare()
    finally:
        for bar in progress_bars:
            bar.close()

    sampling = sampling_from_args(args, settings)
    stdout = sys.stdout
    answer_started = False

    def on_answer(text: str) -> None:
        nonlocal answer_started
        if not answer_started:
            notices.end_reasoning()
            answer_started = True
        if not args.json:
            stdout.write(text)
            stdout.flush()

    def on_reasoning(text: str) -> None:
        if show_reasoning:
            notices.reasoning(text)

    conversation_id = None
    if args.continue_last:
        conversation_id, session.messages = load_last_conversation()

    try:
        result = session.ask(prompt, sampling, on_reasoning=on_reasoning, on_answer=on_answer)
    finally:
        notices.end_reasoning()
    if session.dropped_messages:
        notices.notice(
            _("{count} earlier messages were left out so that the conversation fits in the context window.").format(
                count=session.dropped_messages
            )
        )
    save_turn(conversation_id, prompt, result, session, notices)

    if args.json:
        stdout.write(json.dumps(_json_report(result, session), ensure_ascii=False) + "\n")
    elif answer_started:
        stdout.write("\n")
    stdout.flush()
    session.close()

    if result.finish_reason == "interrupted":
        if args.json:
            notices.notice(_("Interrupted; the JSON output holds the incomplete answer."))
        else:
            notices.notice(_("Interrupted; the answer above is incomplete."))
        return EXIT_INTERRUPTED
    if result.finish_reason == "length" and not result.answer:
        notices.notice(
            _(
                "The token limit ({limit}) ran out while the model was still reasoning, so there "
                "is no answer. Raise it with --max-tokens."
            ).format(limit=result.stats.completion_tokens)
        )
        return EXIT_FAILED
    if result.finish_reason == "length":
        notices.notice(_("The answer was cut off at the token limit; raise it with --max-tokens."))
    return EXIT_OK


def load_last_conversation():
    """Return the id and model messages of the last saved conversation, or (None, [])."""
    from r1chat.history import History, model_messages

    with History.open() as history:
        conversation = history.last_conversation()
        if conversation is None:
            return None, []
        sent = model_messages(history.messages(conversation.id))
    return conversation.id, [Message(m["role"], m["content"]) for m in sent]


def save_turn(conversation_id, prompt: str, result, session, notices: StderrWriter) -> None:
    """Save the prompt and answer to the history; a failure is a notice, since the answer is out."""
    from r1chat.errors import R1ChatError
    from r1chat.history import History, MessageStats

    stats = result.stats
    try:
        with History.open() as history:
            history.add_turn(
                conversation_id,
                prompt,
                result.answer,
                reasoning=result.reasoning,
                complete=result.finish_reason == "stop",
                finish_reason=result.finish_reason,
                model=session.choice.label,
                stats=MessageStats(
                    prompt_tokens=stats.prompt_tokens,
                    completion_tokens=stats.completion_tokens,
                    first_token_s=stats.first_token_s,
                    tokens_per_s=stats.decode_tokens_per_s,
                ),
            )
    except R1ChatError as error:
        notices.notice(_("The answer was not saved to the history: {error}").format(error=error))


def _json_report(result, session) -> dict:
    stats = result.stats
    choice = session.choice
    return {
        "answer": result.answer,
        "reasoning": result.reasoning,
        "model": choice.variant.model_id if choice.variant else str(choice.path),
        "quant": choice.variant.quant if choice.variant else None,
        "finish_reason": result.finish_reason,
        "usage": {
            "prompt_tokens": stats.prompt_tokens,
            "completion_tokens": stats.completion_tokens,
        },
        "timings": {
            "load_s": round(session.engine.load_s, 3) if session.engine else None,
            "first_token_s": round(stats.first_token_s, 3),
            "prefill_tokens_per_s": round(stats.prefill_tokens_per_s, 1),
            "decode_tokens_per_s": round(stats.decode_tokens_per_s, 1),
        },
        "power": session.power_report().to_json(),
    }
