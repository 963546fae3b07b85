"""`r1chat` with no -p: open the chat screen.

Textual reads its frame rate and animation level from the environment when
it is first imported, so `run()` sets r1chat's defaults before importing it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from r1chat import catalog as catalog_module
from r1chat import config

log = logging.getLogger(__name__)

# Frames per second: Textual's default is 60. A phone's CPU is better spent on
# decoding, and 20 updates a second still look smooth in a terminal.
DEFAULT_FPS = "20"


def _detach_stderr_handlers() -> list[logging.Handler]:
    """Remove log handlers that write to stderr, where Textual draws the screen.

    With R1CHAT_DEBUG=1 the command line logs to stderr; inside the chat
    screen those lines would be drawn over it, so they go to the log screen only.
    """
    logger = logging.getLogger("r1chat")
    removed = [
        handler
        for handler in logger.handlers
        if isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) is sys.stderr
    ]
    for handler in removed:
        logger.removeHandler(handler)
    return removed


def run(args: argparse.Namespace) -> int:
    """Open the chat screen with the options in `args`; return the exit code.

    Reads `args.model`, `threads`, `ctx`, `max_tokens`, `temperature`,
    `top_p`, `seed`, `think`, and `continue_last` when present.

    Raises:
        R1ChatError: no usable model, or the settings, catalog or history
            cannot be read; the CLI reports it.
    """
    os.environ.setdefault("TEXTUAL_FPS", DEFAULT_FPS)
    os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")

    from r1chat.history import History
    from r1chat.power.governor import make_governor
    from r1chat.session import choose_model
    from r1chat.tui.chat_app import ChatApp
    from r1chat.tui.session import ChatOptions, ChatSession

    settings = config.load_settings()
    catalog = catalog_module.load_catalog()
    notices: list[str] = []
    choice, fixed_variant = choose_model(args.model, settings, catalog, notices.append)
    options = ChatOptions.from_args(args, settings)

    history = History.open()
    try:
        conversation_id = None
        if getattr(args, "continue_last", False):
            last = history.last_conversation()
            conversation_id = last.id if last is not None else None
        session = ChatSession(options, choice, history, fixed_variant=fixed_variant)
        app = ChatApp(
            session,
            governor=make_governor(settings),
            conversation_id=conversation_id,
            notices=notices,
        )
        removed = _detach_stderr_handlers()
        try:
            app.run()
        finally:
            for handler in removed:
                logging.getLogger("r1chat").addHandler(handler)
    finally:
        history.close()

    if app.unexpected_error is not None:
        # The command line prints it as one line (a traceback with R1CHAT_DEBUG=1).
        raise app.unexpected_error
    return app.return_code or 0
