"""The settings screen: model and variant, language, power budget. Changes apply at once."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Select, Static

from r1chat import config, store
from r1chat.catalog import load_catalog
from r1chat.errors import R1ChatError
from r1chat.locale import _, current_language
from r1chat.tui.translated import TranslatedBindings

if TYPE_CHECKING:
    from r1chat.tui.chat_app import ChatApp

# Each language is named in itself, so a reader of either finds their own.
LANGUAGE_NAMES = {"en": "English", "zh_CN": "简体中文"}
# A phone draws about 10 W with every core busy; 30 W leaves room for tablets and laptops.
MAX_POWER_BUDGET_W = 30.0


def parse_power_budget(text: str) -> float:
    """Return the budget in watts from `text`.

    Raises:
        ValueError: not a number, or outside 0 < watts <= MAX_POWER_BUDGET_W;
            the message is translated.
    """
    try:
        watts = float(text.strip())
    except ValueError:
        raise ValueError(_("{value!r} is not a number of watts.").format(value=text)) from None
    if not math.isfinite(watts) or watts <= 0 or watts > MAX_POWER_BUDGET_W:
        raise ValueError(
            _("The power budget must be above 0 and at most {limit} W.").format(limit=f"{MAX_POWER_BUDGET_W:g}")
        )
    return watts


class SettingsScreen(TranslatedBindings, Screen):
    """Settings saved in `settings.toml`; each one applies as soon as it changes."""

    BINDINGS = [Binding("escape", "back", "Back")]

    @property
    def chat_app(self) -> ChatApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        session = self.chat_app.session
        budget = self._current_budget()
        with VerticalScroll(id="settings"):
            yield Static(_("Settings"), classes="screen-title")
            yield Static(_("Model"), classes="field-label")
            options, current = self._model_options(session.choice)
            yield Select(options, value=current, allow_blank=False, id="model", compact=True)
            yield Static(_("Language"), classes="field-label")
            yield Select(
                [(name, code) for code, name in LANGUAGE_NAMES.items()],
                value=current_language(),
                allow_blank=False,
                id="language",
                compact=True,
            )
            yield Static(_("Power budget (W)"), classes="field-label")
            yield Input(f"{budget:g}", id="power-budget", compact=True)
            yield Static("", id="budget-error", classes="error")
            yield Static(
                _("Changes apply at once and are saved in {path}.").format(path=config.settings_path()),
                classes="hint",
            )
        yield Footer(compact=True)

    def _current_budget(self) -> float:
        settings = getattr(self.chat_app.governor, "settings", None)
        if settings is not None:
            return settings.power_budget_w
        try:
            return config.load_settings().power_budget_w
        except R1ChatError:
            return config.Settings().power_budget_w

    def _model_options(self, choice: store.ModelChoice) -> tuple[list[tuple[str, str]], str]:
        """Return (label, spec) pairs of the installed variants, and the current spec."""
        current = choice.variant.spec if choice.variant else str(choice.path)
        options: list[tuple[str, str]] = []
        try:
            installed = store.installed_variants(load_catalog())
        except R1ChatError as error:
            self.notify(f"{error} {error.hint or ''}".strip(), severity="error")
            installed = []
        for variant, _path in installed:
            tier = _("low power") if variant.tier == "low" else _("normal")
            options.append((f"{variant.spec} ({tier})", variant.spec))
        if current not in [spec for _label, spec in options]:
            options.insert(0, (current, current))
        return options, current

    def on_mount(self) -> None:
        self.query_one("#model", Select).focus()
        self.query_one("#budget-error").display = False

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.value is Select.BLANK:
            return
        if event.select.id == "language" and event.value != current_language():
            self.chat_app.set_language(str(event.value))
        elif event.select.id == "model":
            choice = self.chat_app.session.choice
            current = choice.variant.spec if choice.variant else str(choice.path)
            if event.value != current:
                self.chat_app.switch_model(str(event.value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._apply_budget()

    def on_input_blurred(self, event: Input.Blurred) -> None:
        self._apply_budget()

    def _apply_budget(self) -> bool:
        """Save the power budget if it changed; False when the text is not a valid budget."""
        field = self.query_one("#power-budget", Input)
        error = self.query_one("#budget-error", Static)
        try:
            watts = parse_power_budget(field.value)
        except ValueError as problem:
            error.update(str(problem))
            error.display = True
            return False
        error.display = False
        if watts != self._current_budget():
            self.chat_app.set_power_budget(watts)
        return True

    def action_back(self) -> None:
        if self._apply_budget():
            self.dismiss()

    def update_language(self) -> None:
        # Every label changes, so the screen is built again, keeping the focus on the language.
        async def rebuild() -> None:
            await self.recompose()
            self.query_one("#budget-error").display = False
            self.query_one("#language", Select).focus()
            self.refresh_bindings()

        self.call_later(rebuild)
