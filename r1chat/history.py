"""The conversation history: one SQLite file of conversations and their messages.

Every write is one short `BEGIN IMMEDIATE` transaction, and the database runs in
WAL mode with a busy timeout, so two r1chat processes can write to the same file:
the second waits for the first instead of failing. A message is saved once it is
complete, or once it is stopped, when it is saved with `complete=False`.
Reasoning is stored for display and export, and `model_messages` leaves it out
of what is sent back to a model.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Literal, get_args

from r1chat import config
from r1chat.errors import ConversationNotFound, HistoryError
from r1chat.locale import _
from r1chat.migrations import apply_migrations, move_aside_hint, write_transaction

log = logging.getLogger(__name__)

Role = Literal["user", "assistant", "system"]
ROLES: tuple[str, ...] = get_args(Role)

# Seconds a write waits for another process's transaction before it fails.
BUSY_TIMEOUT_S = 10.0
# Terminal cells of an automatic title: a CJK character takes two.
TITLE_WIDTH = 40

SQLITE_HEADER = b"SQLite format 3\x00"


@dataclass(frozen=True)
class MessageStats:
    """Speed and token counts of one answer, each None when it was not measured."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    first_token_s: float | None = None
    tokens_per_s: float | None = None


@dataclass(frozen=True)
class Conversation:
    id: int
    # "" until the first user message gives it an automatic title.
    title: str
    # Model of the latest answer, or the one given at creation.
    model: str
    created_at: datetime
    # Time of the latest message, which orders the list of conversations.
    updated_at: datetime
    message_count: int


@dataclass(frozen=True)
class Message:
    id: int
    conversation_id: int
    role: Role
    # The answer text, without reasoning.
    content: str
    reasoning: str
    # False for an answer that was stopped or interrupted before its end.
    complete: bool
    # "stop", "length", "interrupted" or None.
    finish_reason: str | None
    model: str
    created_at: datetime
    stats: MessageStats


@dataclass(frozen=True)
class Turn:
    """A user message and the answer to it, saved together."""

    user: Message
    assistant: Message


class History:
    """The conversation history in one SQLite file.

    Open it with `History.open()`. One `History` may be shared by threads,
    because a lock serializes its calls. Every method that reads or writes the
    database raises HistoryError when the file is damaged, unreadable or stays
    locked by another process for longer than `BUSY_TIMEOUT_S`.
    """

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self._lock = threading.Lock()
        self.path = path

    @classmethod
    def open(cls, path: Path | None = None) -> History:
        """Open the history at `path` (default: `config.history_path()`).

        Creates the file and its folder when they do not exist, and applies the
        migrations the file lacks.

        Raises:
            HistoryError: the file is not an SQLite database, is damaged, belongs to
                another program, was written by a newer r1chat, or cannot be opened.
                An existing file is left unchanged in each of these cases.
        """
        path = Path(path) if path is not None else config.history_path()
        _check_header(path)
        _check_leftover_wal(path)
        try:
            config.ensure_dir(path.parent)
            _create_private_file(path)
        except OSError as exc:
            raise HistoryError(
                path, exc.strerror or str(exc), _("Check that the folder is writable.")
            ) from exc

        with _translated_errors(path):
            db = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        try:
            with _translated_errors(path):
                db.execute("PRAGMA foreign_keys = ON")
                # Migrations run first: they reject a file of another program or of a
                # newer r1chat before the journal mode change writes to it.
                applied = apply_migrations(db, path)
                _use_wal(db, path)
        except BaseException:
            db.close()
            raise
        log.debug("opened history %s (migrations applied now: %s)", path, applied or "none")
        return cls(db, path)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def new_conversation(self, title: str = "", model: str = "") -> Conversation:
        """Create an empty conversation. An empty title is filled from the first user message."""
        now = _now()
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO conversations (title, model, created_at, updated_at)"
                " VALUES (?, ?, ?, ?)",
                (title.strip(), model, now, now),
            )
            return self._conversation(db, _row_id(cursor))

    def conversation(self, conversation_id: int) -> Conversation:
        """Return one conversation.

        Raises:
            ConversationNotFound: no conversation has that id.
        """
        with self._read() as db:
            return self._conversation(db, conversation_id)

    def conversations(self, limit: int | None = None) -> list[Conversation]:
        """Return the conversations, most recently updated first."""
        with self._read() as db:
            rows = db.execute(
                _SELECT_CONVERSATIONS + " ORDER BY c.updated_at DESC, c.id DESC LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
        return [_conversation_from_row(row) for row in rows]

    def last_conversation(self) -> Conversation | None:
        """Return the most recently updated conversation, or None when there is none."""
        latest = self.conversations(limit=1)
        return latest[0] if latest else None

    def messages(self, conversation_id: int) -> list[Message]:
        """Return the messages of a conversation in the order they were saved.

        Raises:
            ConversationNotFound: no conversation has that id.
        """
        with self._read() as db:
            self._conversation(db, conversation_id)
            rows = db.execute(
                _SELECT_MESSAGES + " WHERE conversation_id = ? ORDER BY id", (conversation_id,)
            ).fetchall()
        return [_message_from_row(row) for row in rows]

    def add_message(
        self,
        conversation_id: int,
        role: Role,
        content: str,
        *,
        reasoning: str = "",
        complete: bool = True,
        finish_reason: str | None = None,
        model: str = "",
        stats: MessageStats | None = None,
    ) -> Message:
        """Save one message in its own transaction and return it as stored.

        The first user message of an untitled conversation gives it its title, and
        an assistant message with a model sets the conversation's model.

        Raises:
            ConversationNotFound: no conversation has that id.
            ValueError: `role` is not "user", "assistant" or "system".
        """
        with self._write() as db:
            return self._insert_message(
                db, conversation_id, role, content, reasoning, complete, finish_reason, model,
                stats or MessageStats(),
            )

    def add_turn(
        self,
        conversation_id: int | None,
        user_text: str,
        answer: str,
        *,
        reasoning: str = "",
        complete: bool = True,
        finish_reason: str | None = None,
        model: str = "",
        stats: MessageStats | None = None,
    ) -> Turn:
        """Save a prompt and its answer in one transaction, for `r1chat -p --continue`.

        With `conversation_id=None`, a new conversation is created for the turn.
        Saving both messages at once keeps them adjacent when another process
        writes to the same conversation.

        Raises:
            ConversationNotFound: no conversation has that id.
        """
        with self._write() as db:
            if conversation_id is None:
                now = _now()
                cursor = db.execute(
                    "INSERT INTO conversations (title, model, created_at, updated_at)"
                    " VALUES ('', ?, ?, ?)",
                    (model, now, now),
                )
                conversation_id = _row_id(cursor)
            user = self._insert_message(
                db, conversation_id, "user", user_text, "", True, None, "", MessageStats()
            )
            assistant = self._insert_message(
                db, conversation_id, "assistant", answer, reasoning, complete, finish_reason,
                model, stats or MessageStats(),
            )
        return Turn(user, assistant)

    def rename(self, conversation_id: int, title: str) -> Conversation:
        """Set a conversation's title. A blank title brings back the automatic one.

        Raises:
            ConversationNotFound: no conversation has that id.
        """
        with self._write() as db:
            self._conversation(db, conversation_id)
            title = title.strip()
            if not title:
                first_prompt = db.execute(
                    "SELECT content FROM messages WHERE conversation_id = ? AND role = 'user'"
                    " ORDER BY id LIMIT 1",
                    (conversation_id,),
                ).fetchone()
                title = title_from_prompt(first_prompt[0]) if first_prompt else ""
            db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id))
            return self._conversation(db, conversation_id)

    def delete(self, conversation_id: int) -> None:
        """Delete a conversation and all of its messages.

        Raises:
            ConversationNotFound: no conversation has that id.
        """
        with self._write() as db:
            cursor = db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
            if cursor.rowcount == 0:
                raise ConversationNotFound(conversation_id)
        log.debug("deleted conversation %d from %s", conversation_id, self.path)

    def export_markdown(self, conversation_id: int) -> str:
        """Return the conversation as a Markdown document.

        Reasoning goes in a collapsible `<details>` block before its answer, and an
        incomplete answer ends with a note that says why it stopped.

        Raises:
            ConversationNotFound: no conversation has that id.
        """
        with self._read() as db:
            conversation = self._conversation(db, conversation_id)
            rows = db.execute(
                _SELECT_MESSAGES + " WHERE conversation_id = ? ORDER BY id", (conversation_id,)
            ).fetchall()
        return render_markdown(conversation, [_message_from_row(row) for row in rows])

    def _insert_message(
        self,
        db: sqlite3.Connection,
        conversation_id: int,
        role: str,
        content: str,
        reasoning: str,
        complete: bool,
        finish_reason: str | None,
        model: str,
        stats: MessageStats,
    ) -> Message:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        self._conversation(db, conversation_id)
        now = _now()
        cursor = db.execute(
            "INSERT INTO messages (conversation_id, role, content, reasoning, complete,"
            " finish_reason, model, created_at, prompt_tokens, completion_tokens,"
            " first_token_s, tokens_per_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                conversation_id, role, content, reasoning, int(complete), finish_reason, model,
                now, stats.prompt_tokens, stats.completion_tokens, stats.first_token_s,
                stats.tokens_per_s,
            ),
        )
        db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id))
        if role == "user":
            db.execute(
                "UPDATE conversations SET title = ? WHERE id = ? AND title = ''",
                (title_from_prompt(content), conversation_id),
            )
        if role == "assistant" and model:
            db.execute("UPDATE conversations SET model = ? WHERE id = ?", (model, conversation_id))
        row = db.execute(_SELECT_MESSAGES + " WHERE id = ?", (_row_id(cursor),)).fetchone()
        return _message_from_row(row)

    @staticmethod
    def _conversation(db: sqlite3.Connection, conversation_id: int) -> Conversation:
        row = db.execute(_SELECT_CONVERSATIONS + " WHERE c.id = ?", (conversation_id,)).fetchone()
        if row is None:
            raise ConversationNotFound(conversation_id)
        return _conversation_from_row(row)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, _translated_errors(self.path), write_transaction(self._db):
            yield self._db

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        # One read transaction, so that several SELECTs see the same snapshot.
        with self._lock, _translated_errors(self.path):
            self._db.execute("BEGIN")
            try:
                yield self._db
            finally:
                if self._db.in_transaction:
                    self._db.execute("COMMIT")


def model_messages(
    messages: Iterable[Message], *, include_system: bool = False
) -> list[dict[str, str]]:
    """Return the chat messages to send to a model: role and content, never reasoning.

    An incomplete answer is included as far as it was written. System messages
    are left out unless `include_system` is set.
    """
    roles = ("system", "user", "assistant") if include_system else ("user", "assistant")
    return [
        {"role": message.role, "content": message.content}
        for message in messages
        if message.role in roles
    ]


def title_from_prompt(text: str, max_width: int = TITLE_WIDTH) -> str:
    """Return the first non-blank line of `text`, cut to `max_width` terminal cells.

    Runs of whitespace become one space, and a cut line ends with "…".
    """
    line = next((" ".join(line.split()) for line in text.splitlines() if line.strip()), "")
    if _cell_width(line) <= max_width:
        return line
    kept: list[str] = []
    width = 0
    for char in line:
        char_width = _char_width(char)
        if width + char_width > max_width - 1:
            break
        kept.append(char)
        width += char_width
    return "".join(kept).rstrip(" \u200d") + "…"


def render_markdown(conversation: Conversation, messages: Iterable[Message]) -> str:
    """Return a conversation and its messages as a Markdown document."""
    title = conversation.title or _("Untitled conversation")
    started = conversation.created_at.astimezone().strftime("%Y-%m-%d %H:%M")
    parts = [f"# {title}", _("Started {time}").format(time=started)]
    if conversation.model:
        parts[-1] += " · " + _("Model: {model}").format(model=conversation.model)

    for message in messages:
        heading = _role_label(message.role)
        if message.role == "assistant" and message.model:
            heading += f" ({message.model})"
        parts.append(f"## {heading}")
        if message.reasoning:
            # A literal closing tag inside the reasoning would end the block early.
            reasoning = message.reasoning.strip().replace("</details>", "&lt;/details&gt;")
            parts.append(
                f"<details>\n<summary>{_('Thinking')}</summary>\n\n{reasoning}\n\n</details>"
            )
        if message.content.strip():
            parts.append(message.content.strip())
        if not message.complete:
            parts.append(f"*{_incomplete_note(message.finish_reason)}*")
    return "\n\n".join(parts) + "\n"


def _role_label(role: str) -> str:
    labels = {"user": _("You"), "assistant": _("Assistant"), "system": _("System")}
    return labels[role]


def _incomplete_note(finish_reason: str | None) -> str:
    if finish_reason == "interrupted":
        return _("Incomplete answer: it was stopped before the end.")
    if finish_reason == "length":
        return _("Incomplete answer: it reached the token limit.")
    return _("Incomplete answer.")


def _check_header(path: Path) -> None:
    """Raise HistoryError unless `path` is missing, empty or starts like an SQLite file."""
    if path.is_dir():
        raise HistoryError(path, _("it is a folder, not a file"), move_aside_hint(path))
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise HistoryError(
            path, exc.strerror or str(exc), _("Check the file's permissions.")
        ) from exc
    if header and header != SQLITE_HEADER:
        raise HistoryError(path, _("it is not an SQLite database"), move_aside_hint(path))


def _check_leftover_wal(path: Path) -> None:
    """Raise HistoryError when a write-ahead log exists without its database.

    SQLite would replay the old log's pages into the new, empty database.
    """
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and (not path.exists() or path.stat().st_size == 0):
        raise HistoryError(
            wal,
            _("it is a write-ahead log left without its database"),
            move_aside_hint(wal),
        )


def _create_private_file(path: Path) -> None:
    """Create an empty history file readable by its owner only, unless it exists.

    SQLite gives its -wal and -shm files the mode of the database file, so they
    stay private too. An empty file is a valid empty database to SQLite.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _use_wal(db: sqlite3.Connection, path: Path) -> None:
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            (mode,) = db.execute("PRAGMA journal_mode = WAL").fetchone()
            break
        except sqlite3.OperationalError as exc:
            # The switch needs an exclusive lock, and SQLite (seen with 3.40) reports a
            # busy file here at once, without waiting in the busy handler.
            busy = getattr(exc, "sqlite_errorname", "").startswith("SQLITE_BUSY")
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    if mode.lower() != "wal":
        # NOTE: SQLite keeps the old mode when it cannot switch, for example where the
        # file system lacks the shared memory WAL needs. This path is untested.
        log.warning("history %s runs in %s journal mode, not WAL", path, mode)


@contextmanager
def _translated_errors(path: Path) -> Iterator[None]:
    """Turn SQLite failures a user can act on into HistoryError; re-raise bugs unchanged."""
    try:
        yield
    except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
        raise
    except sqlite3.DatabaseError as exc:
        raise _history_error(path, exc) from exc


def _history_error(path: Path, exc: sqlite3.DatabaseError) -> HistoryError:
    name = getattr(exc, "sqlite_errorname", "")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return HistoryError(
            path,
            _("timed out after {seconds:g} s waiting for another process's write lock").format(
                seconds=BUSY_TIMEOUT_S
            ),
            _("Close the other r1chat process, or wait until its answer ends, and try again."),
        )
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return HistoryError(
            path, _("the file is damaged ({detail})").format(detail=exc), move_aside_hint(path)
        )
    if name.startswith("SQLITE_FULL"):
        return HistoryError(path, _("the disk is full"), _("Free some storage and try again."))
    return HistoryError(path, str(exc), _("Check that the file and its folder are writable."))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _row_id(cursor: sqlite3.Cursor) -> int:
    if cursor.lastrowid is None:
        raise RuntimeError("INSERT returned no row id")
    return cursor.lastrowid


def _char_width(char: str) -> int:
    if unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _cell_width(text: str) -> int:
    return sum(_char_width(char) for char in text)


_SELECT_CONVERSATIONS = (
    "SELECT c.id, c.title, c.model, c.created_at, c.updated_at,"
    " (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)"
    " FROM conversations c"
)

_SELECT_MESSAGES = (
    "SELECT id, conversation_id, role, content, reasoning, complete, finish_reason, model,"
    " created_at, prompt_tokens, completion_tokens, first_token_s, tokens_per_s FROM messages"
)


def _conversation_from_row(row: tuple) -> Conversation:
    id_, title, model, created_at, updated_at, message_count = row
    return Conversation(
        id=id_,
        title=title,
        model=model,
        created_at=datetime.fromisoformat(created_at),
        updated_at=datetime.fromisoformat(updated_at),
        message_count=message_count,
    )


def _message_from_row(row: tuple) -> Message:
    (
        id_, conversation_id, role, content, reasoning, complete, finish_reason, model,
        created_at, prompt_tokens, completion_tokens, first_token_s, tokens_per_s,
    ) = row
    return Message(
        id=id_,
        conversation_id=conversation_id,
        role=role,
        content=content,
        reasoning=reasoning,
        complete=bool(complete),
        finish_reason=finish_reason,
        model=model,
        created_at=datetime.fromisoformat(created_at),
        stats=MessageStats(prompt_tokens, completion_tokens, first_token_s, tokens_per_s),
    )
