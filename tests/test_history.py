"""The SQLite conversation history, on real database files in a temporary folder."""

from __future__ import annotations

import ast
import inspect
import os
import sqlite3
import string
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from r1chat import config, errors, history as history_module, locale, migrations
from r1chat.errors import ConversationNotFound, HistoryError
from r1chat.history import History, MessageStats, model_messages, title_from_prompt
from r1chat.migrations import MIGRATIONS, apply_migrations, applied_migrations

CHINESE = "用三句话解释量子纠缠。🙂"
EMOJI_ANSWER = "量子纠缠是两个粒子之间的关联 🔗\n\n```python\nprint('纠缠')\n```\n👍🏽 👨‍👩‍👧"


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "history" / "history.db"


@pytest.fixture
def history(db_path):
    with History.open(db_path) as opened:
        yield opened


def raw_rows(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


# Opening and files


def test_open_default_path_creates_folder(isolated_home):
    assert not isolated_home.exists()

    with History.open() as opened:
        assert opened.path == config.history_path()
        assert opened.path.parent == isolated_home

    assert config.history_path().is_file()


def test_open_uses_wal_and_foreign_keys(history):
    (mode,) = history._db.execute("PRAGMA journal_mode").fetchone()
    (foreign_keys,) = history._db.execute("PRAGMA foreign_keys").fetchone()
    assert mode == "wal"
    assert foreign_keys == 1


def test_new_file_is_private(db_path):
    History.open(db_path).close()

    assert db_path.stat().st_mode & 0o777 == 0o600


# Conversations and messages


def test_round_trip_chinese_and_emoji(db_path):
    with History.open(db_path) as writer:
        conversation = writer.new_conversation(model="deepseek-r1-1.5b:Q4_K_M")
        writer.add_message(conversation.id, "user", CHINESE)
        writer.add_message(
            conversation.id, "assistant", EMOJI_ANSWER, reasoning="先想一想 🤔", model="m:Q4"
        )

    with History.open(db_path) as reader:
        messages = reader.messages(conversation.id)
        reopened = reader.conversation(conversation.id)

    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[0].content == CHINESE
    assert messages[1].content == EMOJI_ANSWER
    assert messages[1].reasoning == "先想一想 🤔"
    assert messages[1].model == "m:Q4"
    assert all(m.complete for m in messages)
    assert reopened.title == CHINESE
    assert reopened.message_count == 2
    assert reopened.model == "m:Q4"


def test_reasoning_stored_apart_from_content(history, db_path):
    conversation = history.new_conversation()
    history.add_message(conversation.id, "user", "2+2?")
    saved = history.add_message(conversation.id, "assistant", "4", reasoning="2 plus 2 is 4.")

    stored = raw_rows(db_path, "SELECT content, reasoning FROM messages WHERE id = ?", (saved.id,))
    assert stored == [("4", "2 plus 2 is 4.")]
    assert history.messages(conversation.id)[1].reasoning == "2 plus 2 is 4."


def test_incomplete_answer_stored_and_marked(history):
    conversation = history.new_conversation()
    history.add_message(conversation.id, "user", "Write a long story.")
    history.add_message(
        conversation.id,
        "assistant",
        "Once upon a ti",
        reasoning="A story about",
        complete=False,
        finish_reason="interrupted",
    )

    answer = history.messages(conversation.id)[-1]
    assert answer.complete is False
    assert answer.finish_reason == "interrupted"
    assert answer.content == "Once upon a ti"
    assert "*Incomplete answer: it was stopped before the end.*" in history.export_markdown(
        conversation.id
    )


def test_stats_round_trip(history):
    conversation = history.new_conversation()
    stats = MessageStats(prompt_tokens=12, completion_tokens=340, first_token_s=0.82, tokens_per_s=9.5)
    saved = history.add_message(conversation.id, "assistant", "ok", stats=stats)

    assert saved.stats == stats
    assert history.messages(conversation.id)[0].stats == stats
    assert history.add_message(conversation.id, "user", "next").stats == MessageStats()


def test_messages_keep_saved_order(history):
    conversation = history.new_conversation()
    for i in range(20):
        history.add_message(conversation.id, "user" if i % 2 == 0 else "assistant", f"#{i}")

    assert [m.content for m in history.messages(conversation.id)] == [f"#{i}" for i in range(20)]


def test_invalid_role_saves_nothing(history):
    conversation = history.new_conversation()

    with pytest.raises(ValueError, match="role"):
        history.add_message(conversation.id, "tool", "x")  # type: ignore[arg-type]

    assert history.messages(conversation.id) == []


def test_unknown_conversation_raises(history):
    history.new_conversation()

    with pytest.raises(ConversationNotFound) as caught:
        history.add_message(999, "user", "hello")
    assert "999" in str(caught.value)
    with pytest.raises(ConversationNotFound):
        history.messages(999)
    with pytest.raises(ConversationNotFound):
        history.rename(999, "x")
    with pytest.raises(ConversationNotFound):
        history.delete(999)
    with pytest.raises(ConversationNotFound):
        history.export_markdown(999)


def test_conversations_newest_first(history):
    first = history.new_conversation("first")
    second = history.new_conversation("second")
    third = history.new_conversation("third")
    history.add_message(first.id, "user", "bump")

    listed = history.conversations()
    assert [c.id for c in listed] == [first.id, third.id, second.id]
    assert [c.id for c in history.conversations(limit=2)] == [first.id, third.id]
    assert history.last_conversation().id == first.id


def test_last_conversation_empty(history):
    assert history.last_conversation() is None
    assert history.conversations() == []


# Titles


def test_auto_title_from_first_user_line(history):
    conversation = history.new_conversation()
    history.add_message(conversation.id, "system", "Be brief.")
    history.add_message(conversation.id, "user", "\n   Translate   this text\nsecond line")
    history.add_message(conversation.id, "user", "a later prompt")

    assert history.conversation(conversation.id).title == "Translate this text"


def test_explicit_title_kept(history):
    conversation = history.new_conversation("My notes")
    history.add_message(conversation.id, "user", "a prompt")

    assert history.conversation(conversation.id).title == "My notes"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("short", "short"),
        ("x" * 40, "x" * 40),
        ("x" * 41, "x" * 39 + "…"),
        ("中" * 20, "中" * 20),
        ("中" * 21, "中" * 19 + "…"),
        ("ab" + "中" * 30, "ab" + "中" * 18 + "…"),
        ("", ""),
        ("  \n\t\n", ""),
    ],
)
def test_title_from_prompt_cuts_by_cells(text, expected):
    assert title_from_prompt(text) == expected


def test_title_keeps_combining_marks():
    title = title_from_prompt("e\u0301" * 50)

    assert title == "e\u0301" * 39 + "…"


def test_rename(history, db_path):
    conversation = history.new_conversation()
    history.add_message(conversation.id, "user", "原来的问题")

    renamed = history.rename(conversation.id, "  新名字 ✨ ")

    assert renamed.title == "新名字 ✨"
    assert raw_rows(db_path, "SELECT title FROM conversations") == [("新名字 ✨",)]


def test_rename_blank_restores_auto_title(history):
    conversation = history.new_conversation("Named")
    history.add_message(conversation.id, "user", "first prompt\nmore")

    assert history.rename(conversation.id, "  ").title == "first prompt"
    assert history.rename(history.new_conversation("x").id, "").title == ""


# Delete


def test_delete_cascades(history, db_path):
    doomed = history.new_conversation()
    kept = history.new_conversation()
    for conversation in (doomed, kept):
        history.add_message(conversation.id, "user", "q")
        history.add_message(conversation.id, "assistant", "a", reasoning="r")

    history.delete(doomed.id)

    assert raw_rows(db_path, "SELECT DISTINCT conversation_id FROM messages") == [(kept.id,)]
    assert [c.id for c in history.conversations()] == [kept.id]
    assert len(history.messages(kept.id)) == 2
    with pytest.raises(ConversationNotFound):
        history.messages(doomed.id)


def test_deleted_ids_not_reused(history):
    old = history.new_conversation()
    history.delete(old.id)

    assert history.new_conversation().id != old.id


# Turns and model input


def test_add_turn_new_conversation(history):
    turn = history.add_turn(
        None,
        "列出三种水果",
        "苹果、香蕉、橙子",
        reasoning="简单",
        finish_reason="stop",
        model="deepseek-r1-1.5b:Q4_K_M",
        stats=MessageStats(completion_tokens=7),
    )

    conversation = history.conversation(turn.user.conversation_id)
    assert turn.assistant.conversation_id == conversation.id
    assert conversation.title == "列出三种水果"
    assert conversation.model == "deepseek-r1-1.5b:Q4_K_M"
    assert [m.id for m in history.messages(conversation.id)] == [turn.user.id, turn.assistant.id]
    assert turn.assistant.stats.completion_tokens == 7
    assert turn.assistant.finish_reason == "stop"


def test_add_turn_continues_conversation(history):
    first = history.add_turn(None, "one", "1")
    history.new_conversation("other")

    latest = history.last_conversation()
    assert latest.title == "other"
    second = history.add_turn(
        first.user.conversation_id, "two", "2", complete=False, finish_reason="length"
    )

    messages = history.messages(first.user.conversation_id)
    assert [m.content for m in messages] == ["one", "1", "two", "2"]
    assert second.assistant.complete is False
    assert history.last_conversation().id == first.user.conversation_id


def test_add_turn_unknown_conversation_saves_nothing(history, db_path):
    with pytest.raises(ConversationNotFound):
        history.add_turn(42, "q", "a")

    assert raw_rows(db_path, "SELECT count(*) FROM messages") == [(0,)]


def test_model_messages_leave_out_reasoning(history):
    conversation = history.new_conversation()
    history.add_message(conversation.id, "system", "note")
    history.add_message(conversation.id, "user", "q1")
    history.add_message(conversation.id, "assistant", "a1", reasoning="SECRET THOUGHTS")
    history.add_message(conversation.id, "user", "q2")
    history.add_message(
        conversation.id, "assistant", "partial", reasoning="more", complete=False,
        finish_reason="interrupted",
    )

    sent = model_messages(history.messages(conversation.id))

    assert sent == [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "partial"},
    ]
    assert "SECRET" not in repr(sent)
    with_system = model_messages(history.messages(conversation.id), include_system=True)
    assert with_system[0] == {"role": "system", "content": "note"}


# Markdown export


def test_export_markdown(history):
    conversation = history.new_conversation()
    history.add_message(conversation.id, "user", CHINESE)
    history.add_message(
        conversation.id, "assistant", EMOJI_ANSWER, reasoning="思考 </details> 中", model="m:Q4"
    )
    history.add_message(conversation.id, "user", "继续")
    history.add_message(
        conversation.id, "assistant", "然后", complete=False, finish_reason="length"
    )

    text = history.export_markdown(conversation.id)
    started = history.conversation(conversation.id).created_at.astimezone()

    assert text.startswith(f"# {CHINESE}\n\n")
    assert f"Started {started:%Y-%m-%d %H:%M} · Model: m:Q4" in text
    assert text.count("## You\n") == 2
    assert "## Assistant (m:Q4)\n" in text
    assert (
        "<details>\n<summary>Thinking</summary>\n\n思考 &lt;/details&gt; 中\n\n</details>\n\n"
        + EMOJI_ANSWER
    ) in text
    assert text.count("<details>") == 1
    assert text.index(CHINESE + "\n\n## Assistant") < text.index("## You\n\n继续")
    assert text.rstrip().endswith("然后\n\n*Incomplete answer: it reached the token limit.*")


def test_export_markdown_in_chinese(history):
    conversation = history.new_conversation()
    history.add_message(conversation.id, "user", "你好")
    history.add_message(conversation.id, "assistant", "", reasoning="嗯", complete=False)
    locale.set_language("zh_CN")

    text = history.export_markdown(conversation.id)

    assert "## 你\n\n你好" in text
    assert "## 助手" in text
    assert "<summary>思考过程</summary>" in text
    assert text.rstrip().endswith("*回答不完整。*")


def test_export_untitled_empty(history):
    conversation = history.new_conversation()

    assert history.export_markdown(conversation.id).startswith("# Untitled conversation\n")


# Migrations


def test_migrations_recorded_in_order(history, db_path):
    names = [name for name, _ in raw_rows(db_path, "SELECT name, applied_at FROM _migrations")]

    assert names == [migration.__name__ for migration in MIGRATIONS]
    assert names[0] == "m001_initial"


def test_migrations_not_reapplied(db_path):
    History.open(db_path).close()
    before = raw_rows(db_path, "SELECT name, applied_at FROM _migrations ORDER BY rowid")

    with History.open(db_path) as reopened:
        assert apply_migrations(reopened._db, db_path) == []
        assert applied_migrations(reopened._db) == before
    assert raw_rows(db_path, "SELECT name, applied_at FROM _migrations ORDER BY rowid") == before


def test_old_database_upgraded_keeping_rows(db_path):
    db_path.parent.mkdir(parents=True)
    db = sqlite3.connect(db_path, isolation_level=None)
    assert apply_migrations(db, db_path, MIGRATIONS[:1]) == ["m001_initial"]
    db.execute(
        "INSERT INTO conversations (title, created_at, updated_at)"
        " VALUES ('old', '2025-01-01T00:00:00.000000+00:00', '2025-01-01T00:00:00.000000+00:00')"
    )
    db.execute(
        "INSERT INTO messages (conversation_id, role, content, created_at)"
        " VALUES (1, 'user', '旧消息', '2025-01-01T00:00:00.000000+00:00')"
    )
    db.close()

    with History.open(db_path) as upgraded:
        names = [name for name, _ in applied_migrations(upgraded._db)]
        [message] = upgraded.messages(1)
        added = upgraded.add_message(1, "assistant", "new", stats=MessageStats(tokens_per_s=3.0))

    assert names == ["m001_initial", "m002_message_stats"]
    assert message.content == "旧消息"
    assert message.stats == MessageStats()
    assert added.stats.tokens_per_s == 3.0


def test_failed_migration_rolled_back(tmp_path):
    def m002_broken(db):
        db.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("migration failed midway")

    path = tmp_path / "h.db"
    db = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(RuntimeError, match="midway"):
        apply_migrations(db, path, [migrations.m001_initial, m002_broken])

    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "half_done" not in tables
    assert "conversations" in tables
    assert [name for name, _ in applied_migrations(db)] == ["m001_initial"]
    db.close()


def test_future_database_rejected_untouched(db_path):
    History.open(db_path).close()
    db = sqlite3.connect(db_path)
    db.execute("INSERT INTO _migrations VALUES ('m999_from_the_future', '2030-01-01')")
    db.commit()
    db.close()
    before = db_path.read_bytes()

    with pytest.raises(HistoryError) as caught:
        History.open(db_path)

    assert str(db_path) in str(caught.value)
    assert "newer version of r1chat" in str(caught.value)
    assert "m999_from_the_future" in str(caught.value)
    assert "Upgrade r1chat" in caught.value.hint
    assert db_path.read_bytes() == before


# Damaged and foreign files


@pytest.mark.parametrize(
    "content",
    [b"these are my notes, not a database\n", b"\x00" * 4096, os.urandom(8192)],
    ids=["text", "zeros", "random"],
)
def test_non_sqlite_file_rejected_untouched(db_path, content):
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(content)

    with pytest.raises(HistoryError) as caught:
        History.open(db_path)

    assert str(db_path) in str(caught.value)
    assert "not an SQLite database" in str(caught.value)
    assert f"mv {db_path} {db_path}.bad" in caught.value.hint
    assert db_path.read_bytes() == content
    assert sorted(p.name for p in db_path.parent.iterdir()) == ["history.db"]


@pytest.mark.parametrize("offset", [100, None], ids=["first-page", "middle"])
def test_damaged_database_rejected_untouched(db_path, offset):
    with History.open(db_path) as filled:
        conversation = filled.new_conversation("big")
        for _ in range(100):
            filled.add_message(conversation.id, "user", "x" * 1000)
    data = bytearray(db_path.read_bytes())
    start = offset if offset is not None else len(data) // 2
    data[start : start + 3000] = b"\xa5" * 3000
    db_path.write_bytes(data)

    with pytest.raises(HistoryError) as caught:
        with History.open(db_path) as damaged:
            damaged.messages(conversation.id)

    assert "damaged" in str(caught.value)
    assert str(db_path) in str(caught.value)
    assert "mv " in caught.value.hint
    assert db_path.read_bytes() == bytes(data)


def test_foreign_sqlite_database_rejected_untouched(db_path):
    db_path.parent.mkdir(parents=True)
    db = sqlite3.connect(db_path)
    db.execute("CREATE TABLE contacts (name TEXT)")
    db.execute("INSERT INTO contacts VALUES ('Ada')")
    db.commit()
    db.close()
    before = db_path.read_bytes()

    with pytest.raises(HistoryError) as caught:
        History.open(db_path)

    assert "another program" in str(caught.value)
    assert "contacts" in str(caught.value)
    assert db_path.read_bytes() == before


def test_folder_at_history_path_rejected(db_path):
    db_path.mkdir(parents=True)

    with pytest.raises(HistoryError, match="folder"):
        History.open(db_path)


def test_leftover_wal_without_database_rejected(db_path):
    db_path.parent.mkdir(parents=True)
    wal = db_path.with_name("history.db-wal")
    wal.write_bytes(b"old log")

    with pytest.raises(HistoryError) as caught:
        History.open(db_path)

    assert str(wal) in str(caught.value)
    assert not db_path.exists()
    assert wal.read_bytes() == b"old log"


def test_locked_database_fails_clearly(history, db_path, monkeypatch):
    monkeypatch.setattr(history_module, "BUSY_TIMEOUT_S", 0.2)
    conversation = history.new_conversation()
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with History.open(db_path) as second:
            assert second.messages(conversation.id) == []
            with pytest.raises(HistoryError) as caught:
                second.add_message(conversation.id, "user", "blocked")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    assert "timed out after 0.2 s" in str(caught.value)
    assert "Close the other r1chat process" in caught.value.hint
    assert history.messages(conversation.id) == []


def test_writer_waits_for_short_lock(history, db_path):
    conversation = history.new_conversation()
    blocker = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, lambda: blocker.execute("COMMIT"))
    release.start()
    try:
        history.add_message(conversation.id, "user", "waited")
    finally:
        release.join()
        blocker.close()

    assert [m.content for m in history.messages(conversation.id)] == ["waited"]


# Concurrency


def test_threads_share_one_history(history):
    conversation = history.new_conversation()

    def write(tag):
        for i in range(25):
            history.add_message(conversation.id, "user", f"{tag}-{i}")

    threads = [threading.Thread(target=write, args=(tag,)) for tag in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    contents = [m.content for m in history.messages(conversation.id)]
    assert sorted(contents) == sorted(f"{tag}-{i}" for tag in "abcd" for i in range(25))


# Each worker opens the history, reports "ready" with its own conversation's id,
# and reads "go" and the other worker's conversation id from stdin. After its
# first message it waits until the other worker has written too, so the two
# really run at once. Then it interleaves 200 messages in its own conversation
# with 100 (as 50 prompt/answer turns) in the shared one.
WORKER = """
import sys
import time
from r1chat.history import History

path, tag, shared_id = sys.argv[1], sys.argv[2], int(sys.argv[3])
with History.open(path) as history:
    own_id = history.new_conversation(f"{tag} 自己的").id
    print("ready", own_id, flush=True)
    other_id = int(sys.stdin.readline().split()[1])
    own = turns = 0
    for step in range(250):
        if step % 5 == 4:
            history.add_turn(
                shared_id, f"{tag} 问 {turns} 🤔", f"{tag} 答 {turns} ✅", reasoning=f"{tag} 想 {turns}"
            )
            turns += 1
        else:
            history.add_message(own_id, "user", f"{tag} 消息 {own} 🚀")
            own += 1
        deadline = time.monotonic() + 30
        while step == 0 and not history.messages(other_id) and time.monotonic() < deadline:
            time.sleep(0.001)
        # A pause like the one between real messages, so that the other process
        # gets the lock between writes instead of waiting until this one ends.
        time.sleep(0.001)
print("done", own, turns, flush=True)
"""


def start_workers(path: Path, tags: list[str], shared_id: int) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(path), tag, str(shared_id)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        for tag in tags
    ]


def test_two_processes_lose_nothing(db_path):
    with History.open(db_path) as setup:
        shared_id = setup.new_conversation("shared").id

    workers = start_workers(db_path, ["A", "B"], shared_id)
    own_ids = {}
    for tag, worker in zip("AB", workers):
        word, own_id = worker.stdout.readline().split()
        assert word == "ready", worker.stderr.read()
        own_ids[tag] = int(own_id)
    for tag, worker in zip("AB", workers):
        other = own_ids["B" if tag == "A" else "A"]
        worker.stdin.write(f"go {other}\n")
        worker.stdin.flush()
    results = [worker.communicate(timeout=120) for worker in workers]

    for worker, (stdout, stderr) in zip(workers, results):
        assert worker.returncode == 0, stderr
        assert stdout.split() == ["done", "200", "50"]

    with History.open(db_path) as check:
        for tag in "AB":
            own = check.messages(own_ids[tag])
            assert [m.content for m in own] == [f"{tag} 消息 {i} 🚀" for i in range(200)]
        shared = check.messages(shared_id)
        total = raw_rows(db_path, "SELECT count(*) FROM messages")

    assert total == [(600,)]
    assert len(shared) == 200
    pairs = [(shared[i], shared[i + 1]) for i in range(0, len(shared), 2)]
    for tag in "AB":
        mine = [(q, a) for q, a in pairs if q.content.startswith(tag)]
        assert [(q.role, a.role) for q, a in mine] == [("user", "assistant")] * 50
        assert [q.content for q, _ in mine] == [f"{tag} 问 {i} 🤔" for i in range(50)]
        assert [a.content for _, a in mine] == [f"{tag} 答 {i} ✅" for i in range(50)]
        assert [a.reasoning for _, a in mine] == [f"{tag} 想 {i}" for i in range(50)]
    # The two processes really overlapped: neither wrote all of its turns first.
    tags_in_order = [q.content[0] for q, _ in pairs]
    assert tags_in_order != sorted(tags_in_order)
    assert tags_in_order != sorted(tags_in_order, reverse=True)


OPENER = """
import sys, time
from r1chat.history import History
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
History.open(sys.argv[1]).close()
"""


def test_processes_open_new_file_at_once(db_path):
    start = time.time() + 1.0
    openers = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, str(db_path), str(start)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for opener in openers:
        _, stderr = opener.communicate(timeout=60)
        assert opener.returncode == 0, stderr

    names = [name for (name,) in raw_rows(db_path, "SELECT name FROM _migrations ORDER BY rowid")]
    assert names == [migration.__name__ for migration in MIGRATIONS]
    assert raw_rows(db_path, "PRAGMA journal_mode") == [("wal",)]


# Translations


def translatable_strings(node: ast.AST) -> set[str]:
    return {
        call.args[0].value
        for call in ast.walk(node)
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id == "_"
        and call.args
        and isinstance(call.args[0], ast.Constant)
    }


def test_history_strings_translated():
    sources = [inspect.getsource(history_module), inspect.getsource(migrations)]
    sources += [inspect.getsource(errors.HistoryError), inspect.getsource(errors.ConversationNotFound)]
    strings = set().union(*(translatable_strings(ast.parse(source)) for source in sources))
    translations = locale.load_translations("zh_CN")

    assert len(strings) > 20
    assert sorted(strings - translations.keys()) == []
    for english in strings:
        assert placeholders(translations[english]) == placeholders(english), english


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
