"""A chat session: the model choice, the loaded engine, the governor, and the messages.

Both `r1chat -p` and the chat screen run turns through a ChatSession. Between
turns it asks the governor for a plan; when the tier changes it frees the old
model and loads the other variant, and the next turn re-reads the whole
conversation on the new model. During a turn a watcher thread re-plans every
few seconds and hands new thread counts to the engine, which applies them
between decode steps.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from r1chat import store
from r1chat.catalog import Catalog, ModelEntry, Variant, load_catalog
from r1chat.config import Settings
from r1chat.conversation import R1_TEMPERATURE, R1_TOP_P, Message, fit_with_answer_room
from r1chat.engine import Engine, Sampling
from r1chat.locale import _
from r1chat.power.governor import (
    TIER_LOW,
    TIER_NORMAL,
    Governor,
    Plan,
    apply_threads_and_affinity,
    make_governor,
)
from r1chat.turn import TurnResult, run_turn

log = logging.getLogger(__name__)

# How often the governor is consulted while an answer is being generated.
REPLAN_INTERVAL_S = 5.0


@dataclass(frozen=True)
class PowerReport:
    """The `power` object of `r1chat -p --json`."""

    tier: str
    threads: int
    battery_percent: float | None
    reason: str

    def to_json(self) -> dict:
        return {
            "tier": self.tier,
            "threads": self.threads,
            "battery_percent": self.battery_percent,
            "reason": self.reason,
        }


def tier_label(tier: str) -> str:
    """Return the user-facing name of a tier."""
    return _("low power") if tier == TIER_LOW else _("normal")


def install_hint(entry: ModelEntry, variant: Variant) -> str:
    """Return the command that puts `variant` on the phone; for the low tier, any low variant.

    A low variant that can be made from the normal file is preferred, since
    making it needs no download.
    """
    if variant.tier == TIER_LOW:
        derivable = next((v for v in entry.variants if v.tier == TIER_LOW and v.derive_from), None)
        if derivable is not None:
            return _("Run `r1chat models quantize {model} --to {quant}`.").format(
                model=entry.id, quant=derivable.quant
            )
        return _("Run `r1chat models pull {model} --low`.").format(model=entry.id)
    return _("Run `r1chat models pull {model}:{quant}` to download it.").format(
        model=entry.id, quant=variant.quant
    )


def sampling_from_args(args, settings: Settings) -> Sampling:
    """Build sampling options from the command line, with DeepSeek's defaults and the max-tokens setting."""
    return Sampling(
        temperature=args.temperature if args.temperature is not None else R1_TEMPERATURE,
        top_p=args.top_p if args.top_p is not None else R1_TOP_P,
        seed=args.seed,
        max_tokens=args.max_tokens or settings.max_tokens,
    )


def choose_model(
    spec: str | None,
    settings: Settings,
    catalog: Catalog,
    notify: Callable[[str], None],
) -> tuple[store.ModelChoice, bool]:
    """Pick the normal-tier model: `spec`, else the `default_model` setting, else the first on the phone.

    Returns the choice and whether the user fixed its variant (`ID:QUANT` or
    a .gguf path), which keeps the governor from swapping it.

    Raises:
        ModelNotFound, ModelNotInstalled, NoModelInstalled: nothing usable.
    """
    if spec:
        choice = store.resolve_model(spec, catalog)
        return choice, choice.entry is None or ":" in spec
    if settings.default_model:
        # A default picked in the settings screen names a variant, but only a
        # model given on the command line keeps the governor from swapping tiers.
        choice = store.resolve_model(settings.default_model, catalog)
        return choice, choice.entry is None
    choice, is_starter = store.default_choice(catalog)
    if is_starter:
        notify(
            _(
                "No model installed; using the starter model {model} (not a reasoning model). "
                "For DeepSeek-R1 run `r1chat models pull deepseek-r1-1.5b`."
            ).format(model=choice.variant.model_id)
        )
    return choice, False


class ChatSession:
    """Run chat turns on the model the governor's tier calls for.

    Args:
        settings: user settings (context size, power budget).
        model_spec: `ID`, `ID:QUANT` or a .gguf path; None picks the default model.
            A QUANT or a path fixes the variant, so the governor sets threads only.
        fixed_threads: a thread count from `--threads`; the governor is then not consulted.
        n_ctx: context window; None takes the setting.
        governor: the power policy; None builds one from `settings`.
        notify: receives one-line notices for the user (starter in use, swap, heat).
        load_progress: returns a callback for load progress (0.0-1.0) of a model label.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        model_spec: str | None = None,
        fixed_threads: int | None = None,
        n_ctx: int | None = None,
        governor: Governor | None = None,
        catalog: Catalog | None = None,
        notify: Callable[[str], None] = lambda text: None,
        load_progress: Callable[[str], Callable[[float], None] | None] | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog or load_catalog()
        self.fixed_threads = fixed_threads
        self.n_ctx = n_ctx or settings.context_size
        self.governor = governor if governor is not None else make_governor(settings)
        self.notify = notify
        self.load_progress = load_progress
        self.messages: list[Message] = []
        self.engine: Engine | None = None
        self.choice: store.ModelChoice | None = None
        self.plan: Plan | None = None
        self.dropped_messages = 0
        self._warned_missing_low = False
        self._base, self._fixed_variant = choose_model(model_spec, settings, self.catalog, notify)

    # Planning --------------------------------------------------------------

    def _choice_for_tier(self, tier: str) -> store.ModelChoice:
        base = self._base
        # The base is the user's or the default choice: it serves the normal
        # tier, and the low tier too when it already is a low variant.
        if self._fixed_variant or base.entry is None or tier != TIER_LOW:
            return base
        variant = store.preferred_variant(base.entry, TIER_LOW)
        if variant is None or variant == base.variant or base.variant.tier == TIER_LOW:
            return base
        path = store.installed_path(variant)
        if path is not None and store.verification_state(variant, path) != "mismatch":
            return store.ModelChoice(path, base.entry, variant)
        if tier == TIER_LOW and not self._warned_missing_low:
            self._warned_missing_low = True
            self.notify(
                _("The battery is low, but the low-power model {spec} is not on this phone. {hint}").format(
                    spec=variant.spec, hint=install_hint(base.entry, variant)
                )
            )
        return base

    def prepare(self) -> Plan:
        """Consult the governor and load or swap the model before a turn.

        Raises:
            ModelFileError, EngineError: the model could not be loaded.
        """
        plan = self.governor.plan()
        previous_tier = self.plan.tier if self.plan else None
        self.plan = plan
        if plan.pause_s > 0:
            self.notify(plan.message)
        choice = self._choice_for_tier(plan.tier)
        if self.engine is None or choice.path != self.choice.path:
            if self.engine is not None:
                self.notify(
                    _("Switching to {model} ({tier}): {reason}").format(
                        model=choice.label, tier=tier_label(plan.tier), reason=plan.message
                    )
                )
            self._load(choice)
        elif previous_tier is not None and previous_tier != plan.tier:
            log.info("tier %s -> %s, but the model stays %s", previous_tier, plan.tier, choice.label)
        self._apply_threads(plan)
        return plan

    def _load(self, choice: store.ModelChoice) -> None:
        # Free the old model first, so that peak memory stays near the larger
        # of the two models rather than their sum.
        self.close()
        progress = self.load_progress(choice.label) if self.load_progress else None
        threads = self.fixed_threads or (self.plan.threads if self.plan else None)
        self.engine = Engine(choice.path, n_ctx=self.n_ctx, n_threads=threads, progress=progress)
        self.choice = choice
        log.info("loaded %s in %.2f s", choice.label, self.engine.load_s)

    def _apply_threads(self, plan: Plan) -> None:
        if self.engine is None:
            return
        if self.fixed_threads:
            self.engine.set_threads(self.fixed_threads)
            return
        apply_threads_and_affinity(plan, self.engine.set_threads)

    @property
    def tier(self) -> str:
        """The governor's tier, or the tier of a variant the user fixed."""
        if not self._fixed_variant and self.plan is not None:
            return self.plan.tier
        if self.choice is not None and self.choice.variant is not None:
            return self.choice.variant.tier
        return TIER_NORMAL

    def power_report(self) -> PowerReport:
        plan = self.plan
        threads = self.engine.n_threads if self.engine else 0
        if self.fixed_threads:
            reason = "fixed_threads"
        else:
            reason = plan.reason if plan else ""
        return PowerReport(
            tier=self.tier,
            threads=threads,
            battery_percent=plan.reading.battery_percent if plan else None,
            reason=reason,
        )

    # Turns -----------------------------------------------------------------

    def ask(
        self,
        prompt: str,
        sampling: Sampling,
        *,
        cancel: threading.Event | None = None,
        on_reasoning: Callable[[str], None] | None = None,
        on_answer: Callable[[str], None] | None = None,
    ) -> TurnResult:
        """Add `prompt` as a user message, answer it, and keep the answer in `messages`.

        Raises:
            PromptTooLong: the prompt alone does not fit in the context window.
            ModelFileError, EngineError: loading or running the model failed.
        """
        self.prepare()
        engine = self.engine
        r1_format = self.choice.is_r1
        pending = self.messages + [Message("user", prompt)]
        sent, self.dropped_messages, _budget = fit_with_answer_room(
            pending, lambda messages: len(engine.prompt_tokens(messages, r1_format)), engine.n_ctx, sampling.max_tokens
        )
        if self.dropped_messages:
            log.info("left out %d old messages to fit the context window", self.dropped_messages)

        stop_watch = threading.Event()
        watcher = None
        if not self.fixed_threads:
            watcher = threading.Thread(target=self._watch_power, args=(stop_watch,), daemon=True)
            watcher.start()
        try:
            result = run_turn(
                engine,
                sent,
                r1_format=r1_format,
                sampling=sampling,
                cancel=cancel,
                on_reasoning=on_reasoning,
                on_answer=on_answer,
            )
        finally:
            stop_watch.set()
            if watcher is not None:
                watcher.join(timeout=1.0)
        self.messages = pending + [Message("assistant", result.answer, reasoning=result.reasoning)]
        return result

    def _watch_power(self, stop: threading.Event) -> None:
        while not stop.wait(REPLAN_INTERVAL_S):
            plan = self.governor.plan()
            self.plan = plan
            if self.engine is not None and plan.threads != self.engine.n_threads:
                apply_threads_and_affinity(plan, self.engine.set_threads)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None
