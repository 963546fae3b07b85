"""Markdown that streams in at constant cost per batch, rendered by Rich in a few chunks.

Textual 8's own Markdown widget makes several widgets per block, and
mounting them costs milliseconds each: on a 2-core desktop CPU a 20 KB
answer (650 blocks) took 10 s to show. Here a chunk of finished blocks is
one Static, rendered once with `rich.markdown.Markdown`, and only the last,
still open block is rendered again as text arrives.
"""

from __future__ import annotations

from markdown_it import MarkdownIt
from rich.markdown import Markdown as RichMarkdown
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

# Characters of finished blocks per chunk. Rendering a chunk again (as it
# grows, or after a resize) takes about 12 ms for 2,000 characters of mixed
# Markdown with code on a desktop CPU, and a 60 KB answer is about 30 widgets.
CHUNK_CHARS = 2000
CODE_THEME = "monokai"


def _parser() -> MarkdownIt:
    # The parser Rich's Markdown uses, so block boundaries agree with what it draws.
    return MarkdownIt().enable("strikethrough").enable("table")


def block_starts(text: str, parser: MarkdownIt | None = None) -> list[int]:
    """Return the character offsets at which the top-level Markdown blocks of `text` start."""
    tokens = (parser or _parser()).parse(text)
    line_offsets = [0]
    for line in text.splitlines(keepends=True):
        line_offsets.append(line_offsets[-1] + len(line))
    starts = []
    for token in tokens:
        if token.level == 0 and token.map is not None and token.nesting >= 0:
            line = token.map[0]
            offset = line_offsets[min(line, len(line_offsets) - 1)]
            if not starts or offset > starts[-1]:
                starts.append(offset)
    return starts


def split_chunks(text: str, chunk_chars: int = CHUNK_CHARS) -> list[str]:
    """Split `text` at block boundaries into pieces of about `chunk_chars` characters."""
    starts = block_starts(text)
    chunks = []
    begin = 0
    for start in starts:
        if start - begin >= chunk_chars:
            chunks.append(text[begin:start])
            begin = start
    chunks.append(text[begin:])
    return [chunk for chunk in chunks if chunk]


def render_markdown(text: str) -> RichMarkdown:
    return RichMarkdown(text, code_theme=CODE_THEME, hyperlinks=False)


class MarkdownChunk(Static):
    """A run of finished Markdown blocks (or the open block at the end)."""

    DEFAULT_CSS = """
    MarkdownChunk {
        height: auto;
    }
    """

    def __init__(self, source: str = "", *, classes: str | None = None) -> None:
        super().__init__(render_markdown(source) if source else "", classes=classes)
        self.source = source

    def set_source(self, source: str) -> None:
        self.source = source
        self.update(render_markdown(source) if source else "")


class MarkdownView(Vertical):
    """A Markdown document that grows with `append` and is rendered in full by `update`.

    `append` parses only the text after the last finished block, moves the
    blocks that it finds finished into the last chunk (or a new one once that
    holds `CHUNK_CHARS`), and renders the one block still open, so a batch
    costs about the same at any answer length.
    `full_renders` counts the calls of `update` with text, for tests.
    """

    DEFAULT_CSS = """
    MarkdownView {
        height: auto;
    }
    """

    def __init__(self, text: str = "", *, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self.source = text
        self._finished_chars = 0
        self._parser = _parser()
        self._tail = MarkdownChunk(classes="tail")
        self.full_renders = 0

    def compose(self) -> ComposeResult:
        chunks = split_chunks(self.source) if self.source else []
        self._finished_chars = len(self.source)
        if self.source:
            self.full_renders += 1
        for chunk in chunks:
            yield MarkdownChunk(chunk)
        self._tail.display = False
        yield self._tail

    async def append(self, text: str) -> None:
        """Add `text` at the end of the document."""
        if not text:
            return
        self.source += text
        open_text = self.source[self._finished_chars:]
        starts = block_starts(open_text, self._parser)
        finished = starts[-1] if starts else 0
        if finished > 0:
            await self._add_finished(open_text[:finished])
            self._finished_chars += finished
            open_text = open_text[finished:]
        self._tail.set_source(open_text)
        self._tail.display = bool(open_text.strip())

    async def _add_finished(self, text: str) -> None:
        chunks = self.query(MarkdownChunk).exclude(".tail")
        last = chunks.last(MarkdownChunk) if chunks else None
        if last is not None and len(last.source) + len(text) <= CHUNK_CHARS:
            last.set_source(last.source + text)
        else:
            await self.mount(MarkdownChunk(text), before=self._tail)

    async def update(self, text: str) -> None:
        """Replace the document with `text`, rendered in full once."""
        self.source = text
        self._finished_chars = len(text)
        if text:
            self.full_renders += 1
        with self.app.batch_update():
            await self.query(MarkdownChunk).exclude(".tail").remove()
            await self.mount_all([MarkdownChunk(chunk) for chunk in split_chunks(text)], before=self._tail)
            self._tail.set_source("")
            self._tail.display = False
