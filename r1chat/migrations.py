"""Numbered schema migrations of the history database.

Each migration is a function `mNNN_description(db)` in `MIGRATIONS`, applied in
list order, each in its own write transaction. The `_migrations` table records
the name and time of every applied migration, so reopening a database applies
only the new ones. A database that records a name this code does not have was
written by a newer r1chat and is rejected rather than changed.
"""

from __future__ import annotations

import logging
import shlex
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from r1chat.errors import HistoryError
from r1chat.locale import _

log = logging.getLogger(__name__)

Migration = Callable[[sqlite3.Connection], None]

MIGRATIONS_TABLE = "_migrations"


def m001_initial(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            title TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id INTEGER NOT NULL
                REFERENCES conversations (id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
            content TEXT NOT NULL,
            reasoning TEXT NOT NULL DEFAULT '',
            complete INTEGER NOT NULL DEFAULT 1 CHECK (complete IN (0, 1)),
            finish_reason TEXT,
            model TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX messages_by_conversation ON messages (conversation_id, id)")
    db.execute("CREATE INDEX conversations_by_update ON conversations (updated_at)")


def m002_message_stats(db: sqlite3.Connection) -> None:
    """Add the optional speed and token counts of an answer."""
    db.execute("ALTER TABLE messages ADD COLUMN prompt_tokens INTEGER")
    db.execute("ALTER TABLE messages ADD COLUMN completion_tokens INTEGER")
    db.execute("ALTER TABLE messages ADD COLUMN first_token_s REAL")
    db.execute("ALTER TABLE messages ADD COLUMN tokens_per_s REAL")


MIGRATIONS: tuple[Migration, ...] = (m001_initial, m002_message_stats)


@contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run the block in one `BEGIN IMMEDIATE` transaction: commit on success, else roll back.

    IMMEDIATE takes the write lock at the start, so a second process waits in the
    busy handler there instead of failing when its read snapshot turns stale at
    the first write. The connection must be in autocommit mode
    (`isolation_level=None`), so that the sqlite3 module opens no transactions itself.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        # SQLite may have rolled back already, after SQLITE_FULL or SQLITE_IOERR for example.
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def apply_migrations(
    db: sqlite3.Connection, path: Path, migrations: Sequence[Migration] = MIGRATIONS
) -> list[str]:
    """Apply the migrations that `db` has not recorded yet, in order.

    Safe to run from several processes at once, because each migration checks
    again, inside its own write transaction, whether another process applied it
    first. Returns the names applied by this call.

    Raises:
        HistoryError: the database records a migration that `migrations` does not
            contain (a newer r1chat wrote it), or it contains tables but no
            `_migrations` table (it belongs to another program).
    """
    known = [migration.__name__ for migration in migrations]
    # A read first, because an up-to-date database, the usual case, needs no
    # write lock and so does not wait for another process's write.
    db.execute("BEGIN")
    try:
        has_table = _check_tables(db, path)
        applied = _applied_names(db) if has_table else set()
    finally:
        db.execute("COMMIT")
    if not has_table:
        with write_transaction(db):
            if not _check_tables(db, path):
                db.execute(
                    f"CREATE TABLE {MIGRATIONS_TABLE}"
                    " (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
                )
            applied = _applied_names(db)

    unknown = sorted(applied - set(known))
    if unknown:
        raise HistoryError(
            path,
            _("it was written by a newer version of r1chat (unknown migrations: {names})").format(
                names=", ".join(unknown)
            ),
            _("Upgrade r1chat, or move the file aside to start a new history."),
        )

    applied_now: list[str] = []
    for migration in migrations:
        name = migration.__name__
        if name in applied:
            continue
        with write_transaction(db):
            if name in _applied_names(db):
                continue
            migration(db)
            db.execute(
                f"INSERT INTO {MIGRATIONS_TABLE} (name, applied_at) VALUES (?, ?)",
                (name, datetime.now(timezone.utc).isoformat(timespec="microseconds")),
            )
        log.debug("applied migration %s to %s", name, path)
        applied_now.append(name)
    return applied_now


def applied_migrations(db: sqlite3.Connection) -> list[tuple[str, str]]:
    """Return (name, applied_at) of every recorded migration, oldest first."""
    rows = db.execute(f"SELECT name, applied_at FROM {MIGRATIONS_TABLE} ORDER BY rowid")
    return [(name, applied_at) for name, applied_at in rows]


def move_aside_hint(path: Path) -> str:
    """Return the next step for a history file r1chat must not change: rename it."""
    aside = path.with_name(path.name + ".bad")
    return _(
        "Move the file aside with `mv {path} {aside}`, and r1chat starts a new, empty history."
    ).format(path=shlex.quote(str(path)), aside=shlex.quote(str(aside)))


def _check_tables(db: sqlite3.Connection, path: Path) -> bool:
    """Return whether `_migrations` exists; raise HistoryError if other tables exist without it."""
    tables = {
        name
        for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    if MIGRATIONS_TABLE in tables:
        return True
    if tables:
        raise HistoryError(
            path,
            _("it is an SQLite database of another program (tables: {tables})").format(
                tables=", ".join(sorted(tables))
            ),
            move_aside_hint(path),
        )
    return False


def _applied_names(db: sqlite3.Connection) -> set[str]:
    return {name for (name,) in db.execute(f"SELECT name FROM {MIGRATIONS_TABLE}")}
