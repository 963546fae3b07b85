"""Paths and user settings, read in one place.

Nothing here creates a folder or a file at import time: callers ask for a
path and create it when they write to it (`ensure_dir`).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from r1chat.errors import SettingsError

APP_NAME = "r1chat"


def home_override() -> Path | None:
    """Return the folder named by `R1CHAT_HOME`, or None when it is unset."""
    value = os.environ.get("R1CHAT_HOME")
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    """Folder of `settings.toml` and the user's own `models.toml`."""
    home = home_override()
    if home is not None:
        return home
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / APP_NAME


def data_dir() -> Path:
    """Folder of model files and the conversation history."""
    home = home_override()
    if home is not None:
        return home
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / APP_NAME


def models_dir() -> Path:
    return data_dir() / "models"


def history_path() -> Path:
    return data_dir() / "history.db"


def settings_path() -> Path:
    return config_dir() / "settings.toml"


def user_catalog_path() -> Path:
    return config_dir() / "models.toml"


def extra_catalog_path() -> Path | None:
    """Return the catalog file named by `R1CHAT_CATALOG`, if set."""
    value = os.environ.get("R1CHAT_CATALOG")
    return Path(value).expanduser() if value else None


def ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Settings:
    """User settings from `settings.toml`; every field has a default."""

    # "en", "zh_CN", or "" to follow the locale.
    language: str = ""
    # Catalog id, `id:QUANT` or a .gguf path; "" picks the first model on the phone.
    default_model: str = ""
    context_size: int = 4096
    max_tokens: int = 2048
    # Hubs tried in this order by `models pull`.
    source_order: list[str] = field(
        default_factory=lambda: ["huggingface", "hf-mirror", "modelscope"]
    )
    # Power governor: battery percentages and the power budget in watts.
    low_battery_percent: float = 20.0
    normal_battery_percent: float = 30.0
    power_budget_w: float = 5.0
    battery_hot_c: float = 40.0
    cpu_hot_c: float = 75.0


def load_settings(path: Path | None = None) -> Settings:
    """Read settings from `path` (default: `settings_path()`).

    A missing file gives the defaults.

    Raises:
        SettingsError: the file is not valid TOML or a value has the wrong type.
    """
    path = path or settings_path()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Settings()
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise SettingsError(path, str(exc)) from exc

    settings = Settings()
    known = {f.name: f for f in fields(Settings)}
    for key, value in raw.items():
        if key not in known:
            raise SettingsError(path, f"unknown setting {key!r}")
        default = getattr(settings, key)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not type(default):
            raise SettingsError(
                path, f"{key} must be {type(default).__name__}, not {type(value).__name__}"
            )
        setattr(settings, key, value)
    return settings


def save_setting(key: str, value: object, path: Path | None = None) -> None:
    """Write one setting into `settings.toml`, keeping the others."""
    path = path or settings_path()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raw = {}
    raw[key] = value
    lines = [f"{name} = {_toml_value(item)}" for name, item in sorted(raw.items())]
    ensure_dir(path.parent)
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to settings.toml")
