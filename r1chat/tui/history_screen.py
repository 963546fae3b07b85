"""The history screen: reopen, rename, delete and export saved conversations."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from r1chat.errors import R1ChatError
from r1chat.history import Conversation, History
from r1chat.locale import _
from r1chat.tui.session import export_conversation
from r1chat.tui.translated import TranslatedBindings

DATE_FORMAT = "%Y-%m-%d %H:%M"


@dataclass
class HistoryResult:
    """Result of the history screen: the conversation to open and the ids it deleted."""

    open_id: int | None = None
    deleted: set[int] = field(default_factory=set)


def conversation_label(conversation: Conversation) -> Content:
    """Return the two-line list entry of a conversation: its title, then date and size."""
    title = conversation.title or _("Untitled conversation")
    when = conversation.updated_at.astimezone().strftime(DATE_FORMAT)
    details = _("{time} · {count} messages").format(time=when, count=conversation.message_count)
    return Content.assemble((title, "bold"), "\n", (details, "dim"))


class HistoryScreen(TranslatedBindings, Screen[HistoryResult]):
    """Saved conversations, most recent first. Enter or a tap opens one."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("r", "rename", "Rename"),
        Binding("d,delete", "delete", "Delete"),
        Binding("e", "export", "Export"),
    ]

    def __init__(self, history: History, current_id: int | None = None) -> None:
        super().__init__()
        self.history = history
        self.current_id = current_id
        self.deleted: set[int] = set()
        self.conversations: list[Conversation] = []

    def compose(self) -> ComposeResult:
        yield Static(_("Conversations"), id="history-title", classes="screen-title")
        yield OptionList(id="conversations")
        yield Static("", id="history-empty")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.reload()
        self.query_one(OptionList).focus()

    def reload(self, highlight_id: int | None = None) -> None:
        """Read the conversations again and keep `highlight_id` (or the open one) highlighted."""
        try:
            self.conversations = self.history.conversations()
        except R1ChatError as error:
            self.conversations = []
            self.notify(f"{error} {error.hint or ''}".strip(), severity="error")
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options([Option(conversation_label(c), id=str(c.id)) for c in self.conversations])
        empty = self.query_one("#history-empty", Static)
        empty.update(_("No saved conversations yet.") if not self.conversations else "")
        empty.display = not self.conversations
        wanted = highlight_id if highlight_id is not None else self.current_id
        ids = [c.id for c in self.conversations]
        if wanted in ids:
            options.highlighted = ids.index(wanted)
        elif ids:
            options.highlighted = 0
        self.refresh_bindings()

    def update_language(self) -> None:
        super().update_language()
        self.query_one("#history-title", Static).update(_("Conversations"))
        self.reload(self.selected_id)

    @property
    def selected_id(self) -> int | None:
        conversation = self._selected()
        return conversation.id if conversation is not None else None

    def _selected(self) -> Conversation | None:
        options = self.query_one(OptionList)
        if options.highlighted is None or not self.conversations:
            return None
        return self.conversations[options.highlighted]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("rename", "delete", "export") and not self.conversations:
            return None
        return True

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(HistoryResult(open_id=int(event.option.id), deleted=self.deleted))

    def action_back(self) -> None:
        self.dismiss(HistoryResult(deleted=self.deleted))

    def action_rename(self) -> None:
        conversation = self._selected()
        if conversation is None:
            return

        def renamed(title: str | None) -> None:
            if title is None:
                return
            try:
                self.history.rename(conversation.id, title)
            except R1ChatError as error:
                self.notify(f"{error} {error.hint or ''}".strip(), severity="error")
            self.reload(conversation.id)

        self.app.push_screen(RenameScreen(conversation.title), renamed)

    def action_delete(self) -> None:
        conversation = self._selected()
        if conversation is None:
            return

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.history.delete(conversation.id)
            except R1ChatError as error:
                self.notify(f"{error} {error.hint or ''}".strip(), severity="error")
            else:
                self.deleted.add(conversation.id)
            self.reload()

        title = conversation.title or _("Untitled conversation")
        self.app.push_screen(ConfirmScreen(_("Delete “{title}”?").format(title=title)), confirmed)

    def action_export(self) -> None:
        conversation = self._selected()
        if conversation is None:
            return
        try:
            path = export_conversation(self.history, conversation.id)
        except R1ChatError as error:
            self.notify(f"{error} {error.hint or ''}".strip(), severity="error")
            return
        except OSError as error:
            self.notify(
                _("Cannot write the export file: {error}").format(error=error.strerror or error),
                severity="error",
            )
            return
        self.notify(_("Saved as Markdown: {path}").format(path=path), timeout=10)


class RenameScreen(TranslatedBindings, ModalScreen[str | None]):
    """Asks for a new title; Enter saves it, Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str) -> None:
        super().__init__()
        self.old_title = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(_("New title (leave it empty for the automatic one):"))
            yield Input(self.old_title, id="title")
            with Horizontal(classes="buttons"):
                yield Button(_("Save"), variant="primary", id="save", compact=True)
                yield Button(_("Cancel"), id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.dismiss(self.query_one(Input).value)
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(TranslatedBindings, ModalScreen[bool]):
    """A yes-or-no question; Y or the Delete button confirms, N or Esc cancels."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question)
            with Horizontal(classes="buttons"):
                yield Button(_("Delete"), variant="error", id="yes", compact=True)
                yield Button(_("Cancel"), id="no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
