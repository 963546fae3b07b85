"""Live language switching for screens: footer labels and widgets that hold text."""

from __future__ import annotations

from dataclasses import replace

from textual.binding import ActiveBinding

from r1chat.locale import _


def binding_label(description: str) -> str:
    """Translate a key binding's description; each one is listed here so the catalog check finds it."""
    labels = {
        "Stop": _("Stop"),
        "New": _("New"),
        "History": _("History"),
        "Settings": _("Settings"),
        "Log": _("Log"),
        "Back": _("Back"),
        "Rename": _("Rename"),
        "Delete": _("Delete"),
        "Export": _("Export"),
        "Cancel": _("Cancel"),
        "Yes": _("Yes"),
        "No": _("No"),
        "Quit": _("Quit"),
        "New line": _("New line"),
    }
    return labels.get(description, description)


class TranslatedBindings:
    """Screen mixin: the footer shows binding descriptions in the current language.

    Descriptions in `BINDINGS` are English source text, translated each time
    the footer is drawn, so after a language switch `update_language()` only has
    to refresh the footer and the widgets that hold text.
    """

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        translated = {}
        for key, active in super().active_bindings.items():  # type: ignore[misc]
            binding = active.binding
            if binding.description:
                binding = replace(binding, description=binding_label(binding.description))
            translated[key] = active._replace(binding=binding)
        return translated

    def update_language(self) -> None:
        """Translate this screen's text again after a language switch.

        Calls `update_language()` on every widget of the screen that has one.
        """
        for widget in self.query("*"):  # type: ignore[attr-defined]
            update = getattr(widget, "update_language", None)
            if update is not None:
                update()
        self.refresh_bindings()  # type: ignore[attr-defined]
