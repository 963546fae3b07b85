"""The Textual app: owns the model session, the power governor, the wake lock and the log."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from textual import work
from textual.app import App
from textual.binding import Binding

from r1chat import config, locale, store
from r1chat.catalog import Variant, load_catalog
from r1chat.engine import StreamStats
from r1chat.errors import R1ChatError
from r1chat.locale import _
from r1chat.power.governor import TIER_NORMAL
from r1chat.session import install_hint, tier_label
from r1chat.tui.chat_screen import ChatScreen, unexpected_error
from r1chat.tui.log_buffer import LogBuffer
from r1chat.tui.session import ChatSession
from r1chat.tui.status_bar import StatusInfo
from r1chat.tui.wakelock import WakeLock

log = logging.getLogger(__name__)

# Seconds between sensor readings while an answer is generated, so that the
# thread count follows the temperature, and while idle, for the status bar.
REPLAN_INTERVAL_S = 5.0
IDLE_SENSOR_INTERVAL_S = 30.0
# Seconds a thread may hold the GIL while another waits for it (Python's
# default is 0.005). Decoding needs the GIL between llama.cpp calls, so a
# shorter slice keeps screen updates from delaying tokens.
GIL_SWITCH_INTERVAL_S = 0.001
# Seconds to wait for an answer to stop before the model is freed at exit.
CLOSE_TIMEOUT_S = 5.0
# Start-up notices (the starter model in use) stay this long; on a 40x20 screen
# a toast covers the input box while it shows.
NOTICE_TIMEOUT_S = 6.0
LOAD_WAIT_STEP_S = 0.1


class PowerGovernor(Protocol):
    """The part of `r1chat.power.governor.Governor` that the app calls."""

    def plan(self) -> Any: ...

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[Any], None]: ...

    def unsubscribe(self, callback: Callable[[Any], None]) -> None: ...

    def estimate_watts(self, threads: int) -> float: ...


class ChatApp(App):
    """r1chat's chat screen and the screens it opens.

    Args:
        session: the model and conversation state.
        governor: picks tier and threads from sensor readings; None leaves
            the thread count to the engine and shows no battery.
        wake_lock: held while an answer is generated; `WakeLock()` by default.
        conversation_id: a saved conversation to reopen (`r1chat --continue`).
        notices: messages to show once the screen is up, such as the starter model notice.
        sensor_interval_s: seconds between sensor readings while idle.
    """

    CSS_PATH = "app.tcss"
    TITLE = "r1chat"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", priority=True)]

    def __init__(
        self,
        session: ChatSession,
        *,
        governor: PowerGovernor | None = None,
        wake_lock: WakeLock | None = None,
        conversation_id: int | None = None,
        notices: list[str] | None = None,
        sensor_interval_s: float = IDLE_SENSOR_INTERVAL_S,
    ) -> None:
        super().__init__()
        if "TEXTUAL_ANIMATIONS" not in os.environ:
            # Animations cost CPU that a phone needs for decoding.
            self.animation_level = "none"
        self.session = session
        self.governor = governor
        self.wake_lock = wake_lock or WakeLock()
        self.conversation_id = conversation_id
        self.notices = list(notices or [])
        self.sensor_interval_s = sensor_interval_s
        self.log_buffer = LogBuffer()
        self.chat_screen = ChatScreen()

        self.engine_ready = threading.Event()
        self.load_error: R1ChatError | None = None
        self.loading = False
        self.loading_label = session.model_label
        self.load_fraction = 0.0
        self._load_number = 0
        self.last_stats: StreamStats | None = None
        self.plan: Any = None
        self.closing = False
        self.unexpected_error: BaseException | None = None
        self._missing_variants: set[str] = set()
        self._last_power_refresh = 0.0
        self._log_level = logging.NOTSET
        self._switch_interval = sys.getswitchinterval()

    def get_default_screen(self) -> ChatScreen:
        return self.chat_screen

    def on_mount(self) -> None:
        self._attach_log()
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)

    async def start_session(self) -> None:
        """Reopen the conversation, start loading the model and reading sensors.

        The chat screen calls this once its widgets exist.
        """
        log.info("chat screen started with %s", self.session.model_label)
        if self.conversation_id is not None:
            try:
                await self.chat_screen.open_conversation(self.conversation_id)
            except R1ChatError as error:
                self.notify(f"{error} {error.hint or ''}".strip(), severity="error")
        self.load_model()
        if self.governor is not None:
            self.governor.subscribe(self._plan_changed)
            self.set_interval(min(REPLAN_INTERVAL_S, self.sensor_interval_s), self._tick_power)
            self.refresh_power()
        for notice in self.notices:
            self.notify(notice, timeout=NOTICE_TIMEOUT_S)
        self.update_status()

    def on_unmount(self) -> None:
        self.closing = True
        self.chat_screen.action_stop()
        if self.governor is not None:
            self.governor.unsubscribe(self._plan_changed)
        self.wake_lock.release()
        self.session.close(CLOSE_TIMEOUT_S)
        self._detach_log()
        sys.setswitchinterval(self._switch_interval)

    def call_ui(self, callback: Callable[..., Any], *args: Any) -> Any:
        """Run `callback` on the app's thread from a worker thread; skipped once the app closes."""
        if self.closing:
            return None
        try:
            return self.call_from_thread(callback, *args)
        except RuntimeError as error:
            # The app stopped between the check and the call.
            log.debug("screen update skipped: %s", error)
            return None

    def action_help_quit(self) -> None:
        self.notify(_("Press Ctrl+Q to quit."))

    # Logging -------------------------------------------------------------------

    def _attach_log(self) -> None:
        logger = logging.getLogger("r1chat")
        self._log_level = logger.level
        logger.setLevel(logging.DEBUG)
        logger.addHandler(self.log_buffer)

    def _detach_log(self) -> None:
        logger = logging.getLogger("r1chat")
        logger.removeHandler(self.log_buffer)
        logger.setLevel(self._log_level)

    def _handle_exception(self, error: Exception) -> None:
        # Textual prints a full traceback at exit; without R1CHAT_DEBUG=1, `run()`
        # prints one line instead, like every other r1chat command.
        # NOTE: this clears `_exit_renderables`, a private list of Textual 8.
        super()._handle_exception(error)
        if os.environ.get("R1CHAT_DEBUG") != "1":
            log.error("unexpected error", exc_info=error)
            self.unexpected_error = error
            self._exit_renderables.clear()

    # The model -----------------------------------------------------------------

    def load_model(self, choice: store.ModelChoice | None = None) -> None:
        """Load `choice` (default: the session's model) in a worker thread, showing progress."""
        choice = choice or self.session.choice
        self._load_number += 1
        self._begin_loading(choice)
        self._load_worker(choice, self._load_number)

    def _begin_loading(self, choice: store.ModelChoice) -> None:
        self.engine_ready.clear()
        self.load_error = None
        self.loading = True
        self.loading_label = choice.label
        self.load_fraction = 0.0
        self.chat_screen.show_loading()
        self.update_status()

    def _set_load_fraction(self, fraction: float) -> None:
        # Called by llama.cpp on the loading thread; the screen polls the value.
        self.load_fraction = fraction

    @work(thread=True, group="load", exit_on_error=False)
    def _load_worker(self, choice: store.ModelChoice, number: int) -> None:
        try:
            self.session.load(choice, progress=self._set_load_fraction)
        except R1ChatError as error:
            log.error("cannot load %s: %s", choice.label, error)
            self.call_ui(self._end_loading, number, error)
            return
        except Exception as error:  # noqa: BLE001 - the screen must leave the loading state
            log.exception("loading %s failed unexpectedly", choice.label)
            self.call_ui(self._end_loading, number, unexpected_error(error))
            return
        self.call_ui(self._end_loading, number, None)

    def _end_loading(self, number: int, error: R1ChatError | None) -> None:
        if number != self._load_number:
            return
        self.loading = False
        self.load_error = error
        self.engine_ready.set()
        self.chat_screen.hide_loading()
        self.update_status()
        if error is not None:
            self.notify(f"{error} {error.hint or ''}".strip(), title=_("Cannot load the model"), severity="error", timeout=30)

    def wait_for_engine(self, cancel: threading.Event) -> bool:
        """Block until the model is loaded; False when loading failed or `cancel` was set first."""
        while not self.engine_ready.wait(LOAD_WAIT_STEP_S):
            if cancel.is_set():
                return False
        return self.load_error is None and self.session.engine is not None

    def switch_model(self, spec: str) -> None:
        """Load the model `spec` names (`ID:QUANT` or a path) and make it the default.

        The answer in progress, if any, is stopped first.
        """
        try:
            choice = store.resolve_model(spec, load_catalog())
        except R1ChatError as error:
            self.notify(f"{error} {error.hint or ''}".strip(), severity="error")
            return
        self._save_setting("default_model", spec)
        self.chat_screen.action_stop()
        self.load_model(choice)

    def record_stats(self, stats: StreamStats) -> None:
        self.last_stats = stats
        self.update_status()

    # Power -------------------------------------------------------------------------

    def _tick_power(self) -> None:
        idle_for = time.monotonic() - self._last_power_refresh
        if self.chat_screen.generating or idle_for >= self.sensor_interval_s:
            self.refresh_power()

    def refresh_power(self) -> None:
        """Read the sensors and re-plan in a worker thread, then update the status bar."""
        if self.governor is not None and not self.closing:
            self._last_power_refresh = time.monotonic()
            self._power_worker()

    @work(thread=True, exclusive=True, group="power", exit_on_error=False)
    def _power_worker(self) -> None:
        try:
            plan = self.governor.plan()
        except Exception:  # noqa: BLE001 - the status bar keeps its last reading
            log.warning("power plan failed", exc_info=True)
            return
        if self.chat_screen.generating:
            # The engine applies a new thread count between two decode steps.
            self.session.set_threads(plan.threads)
        self.call_ui(self._show_plan, plan)

    def apply_power_plan(self, cancel: threading.Event, generating: bool = True) -> None:
        """Consult the governor before an answer: swap the model's tier, set threads, pause if hot.

        Runs on the answer's worker thread.

        Raises:
            ModelFileError, EngineError: neither the other tier's model nor the
                current one could be loaded.
        """
        if self.governor is None:
            return
        from r1chat.power.governor import apply_threads_and_affinity

        plan = self.governor.plan()
        self.call_ui(self._show_plan, plan)
        variant = self.session.tier_variant(plan.tier)
        if variant is not None:
            swap = self.session.installed_choice(variant)
            if swap is not None:
                self._swap_model(swap)
            elif variant.spec not in self._missing_variants:
                self._missing_variants.add(variant.spec)
                self.call_ui(self._warn_missing_variant, variant)
        if self.session.options.threads is None and self.session.engine is not None:
            apply_threads_and_affinity(plan, self.session.set_threads)
        if plan.pause_s > 0:
            self.call_ui(
                self.notify,
                _("Too hot: waiting {seconds} s before answering.").format(seconds=f"{plan.pause_s:g}"),
            )
            cancel.wait(plan.pause_s)

    def _warn_missing_variant(self, variant: Variant) -> None:
        self.notify(
            _("The governor asks for {spec}, which is not on this phone. {hint}").format(
                spec=variant.spec, hint=install_hint(self.session.choice.entry, variant)
            ),
            title=_("Power"),
            severity="warning",
            timeout=10,
        )

    def _swap_model(self, choice: store.ModelChoice) -> None:
        previous = self.session.choice
        self._load_number += 1
        number = self._load_number
        self.call_ui(
            self.notify,
            _("Switching to {model} ({tier}).").format(
                model=choice.label, tier=tier_label(choice.variant.tier if choice.variant else TIER_NORMAL)
            ),
        )
        self.call_ui(self._begin_loading, choice)
        try:
            self.session.load(choice, progress=self._set_load_fraction)
        except R1ChatError as error:
            log.warning("cannot load %s, keeping %s: %s", choice.label, previous.label, error)
            self.call_ui(
                self.notify,
                _("Cannot load {model}; keeping {previous}.").format(model=choice.label, previous=previous.label),
            )
            try:
                self.session.load(previous, progress=self._set_load_fraction)
            except R1ChatError as second_error:
                self.call_ui(self._end_loading, number, second_error)
                raise second_error from error
        self.call_ui(self._end_loading, number, None)

    def _plan_changed(self, event: Any) -> None:
        # The governor calls this on the thread that asked for the plan.
        self.call_ui(self._announce_plan, event)

    def _announce_plan(self, event: Any) -> None:
        plan, previous = event.plan, event.previous
        worse = (
            (plan.tier == "low" and previous.tier != "low")
            or plan.threads < previous.threads
            or plan.pause_s > previous.pause_s
        )
        self.notify(plan.message, title=_("Power"), severity="warning" if worse else "information")
        self._show_plan(plan)

    def _show_plan(self, plan: Any) -> None:
        self.plan = plan
        self.update_status()

    def update_status(self) -> None:
        if not self.chat_screen.is_mounted:
            return
        self.chat_screen.status_bar.info = self.status_info()

    def status_info(self) -> StatusInfo:
        session = self.session
        stats = self.last_stats
        reading = self.plan.reading if self.plan is not None else None
        threads: int | None = session.options.threads
        if threads is None and self.plan is not None:
            threads = self.plan.threads
        if threads is None and session.engine is not None:
            threads = session.engine.n_threads
        watts = None
        if self.governor is not None and threads is not None:
            watts = self.governor.estimate_watts(threads)
        temperature = None
        if reading is not None:
            temperature = reading.battery_temp_c if reading.battery_temp_c is not None else reading.cpu_temp_c
        return StatusInfo(
            model=self.loading_label if self.loading else session.model_label,
            tier=session.tier,
            loading=self.loading,
            tokens_per_s=stats.decode_tokens_per_s if stats and stats.decode_tokens_per_s else None,
            first_token_s=stats.first_token_s if stats and stats.first_token_s else None,
            battery_percent=reading.battery_percent if reading is not None else None,
            charging=reading.charging if reading is not None else None,
            temperature_c=temperature,
            threads=threads,
            watts=watts,
        )

    # Settings ----------------------------------------------------------------------

    def set_language(self, language: str) -> None:
        """Switch every screen to `language` ("en" or "zh_CN") and save it."""
        locale.set_language(language)
        self._save_setting("language", language)
        for screen in self.screen_stack:
            update = getattr(screen, "update_language", None)
            if update is not None:
                update()
        self.update_status()

    def set_power_budget(self, watts: float) -> None:
        settings = getattr(self.governor, "settings", None)
        if settings is not None:
            settings.power_budget_w = watts
        self._save_setting("power_budget_w", watts)
        self.refresh_power()

    def _save_setting(self, key: str, value: object) -> None:
        try:
            config.save_setting(key, value)
        except OSError as error:
            self.notify(
                _("Cannot save the setting to {path}: {error}").format(path=config.settings_path(), error=error),
                severity="error",
            )
