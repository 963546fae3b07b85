"""Model files on this phone: where they live and whether they were verified.

Downloaded and derived files live in `models_dir()/<model id>/<file>`. A
manifest (`models_dir()/manifest.json`) stores each file's size, mtime and
sha256 as last hashed, so loading a multi-GB file does not hash it again:
a file whose size and mtime still match its record counts as verified.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from r1chat import config
from r1chat.catalog import STARTER_ID, Catalog, ModelEntry, Variant
from r1chat.errors import ModelFileError, ModelNotFound, ModelNotInstalled, NoModelInstalled
from r1chat.locale import _

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelChoice:
    """The model file to load, with its catalog entry and variant when it has one."""

    path: Path
    entry: ModelEntry | None = None
    variant: Variant | None = None

    @property
    def label(self) -> str:
        return self.variant.spec if self.variant else self.path.name

    @property
    def is_r1(self) -> bool:
        if self.entry is not None:
            return self.entry.is_r1
        # A bare .gguf path: R1 distills carry "DeepSeek-R1" in their published file names.
        return "deepseek-r1" in self.path.name.lower()


def bundled_path(package: str, file: str) -> Path | None:
    """Return the path of `file` inside an installed package, without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / file
        if candidate.is_file():
            return candidate
    return None


def variant_path(variant: Variant) -> Path:
    """Return where `variant`'s file lives or would live once pulled."""
    if variant.bundled:
        found = bundled_path(variant.bundled, variant.file)
        if found is not None:
            return found
    return config.models_dir() / variant.model_id / variant.file


def partial_path(variant: Variant) -> Path:
    """Return where an unfinished download of `variant` is kept (`<file>.part`)."""
    path = variant_path(variant)
    return path.with_name(path.name + ".part")


def installed_path(variant: Variant) -> Path | None:
    path = variant_path(variant)
    return path if path.is_file() else None


def sha256_file(path: Path, progress=None) -> str:
    """Hash a file in 1 MiB chunks; `progress(done_bytes)` is called after each chunk."""
    digest = hashlib.sha256()
    done = 0
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done)
    return digest.hexdigest()


# The manifest -------------------------------------------------------------


def _manifest_path() -> Path:
    return config.models_dir() / MANIFEST_NAME


def _manifest_key(path: Path) -> str:
    return str(path.resolve())


def load_manifest() -> dict[str, dict]:
    try:
        return json.loads(_manifest_path().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable manifest %s: %s", _manifest_path(), exc)
        return {}


def _save_manifest(manifest: dict[str, dict]) -> None:
    path = _manifest_path()
    config.ensure_dir(path.parent)
    tmp = path.with_name(MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def record_file(path: Path, sha256: str, *, good: bool) -> None:
    """Store `path`'s hash and whether it matched the catalog, keyed by size and mtime."""
    stat = path.stat()
    manifest = load_manifest()
    manifest[_manifest_key(path)] = {
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sha256": sha256,
        "good": good,
    }
    _save_manifest(manifest)


def forget_file(path: Path) -> None:
    manifest = load_manifest()
    if manifest.pop(_manifest_key(path), None) is not None:
        _save_manifest(manifest)


def manifest_record(path: Path) -> dict | None:
    """Return the manifest record of `path` even if the file changed since it was hashed."""
    return load_manifest().get(_manifest_key(path))


def recorded_state(path: Path) -> dict | None:
    """Return the manifest record of `path` if the file has not changed since."""
    record = load_manifest().get(_manifest_key(path))
    if record is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    if stat.st_size != record.get("size") or stat.st_mtime_ns != record.get("mtime_ns"):
        return None
    return record


def verification_state(variant: Variant, path: Path) -> str:
    """Return "verified", "mismatch" or "unverified" for an installed file, without hashing."""
    record = recorded_state(path)
    if record is None:
        return "unverified"
    if not record.get("good", False):
        return "mismatch"
    if variant.sha256 and record.get("sha256") != variant.sha256:
        return "mismatch"
    return "verified"


# Choosing the model -------------------------------------------------------


def preferred_variant(entry: ModelEntry, tier: str) -> Variant | None:
    """Return the variant of `tier` to run: the first one on the phone and not damaged.

    When none of that tier is on the phone, returns the first of the tier (so a
    caller can say how to get it), or None when the model has no such tier.
    """
    candidates = [v for v in entry.variants if v.tier == tier]
    for variant in candidates:
        path = installed_path(variant)
        if path is not None and verification_state(variant, path) != "mismatch":
            return variant
    return candidates[0] if candidates else None


def installed_variants(catalog: Catalog) -> list[tuple[Variant, Path]]:
    found = []
    for entry in catalog:
        for variant in entry.variants:
            path = installed_path(variant)
            if path is not None:
                found.append((variant, path))
    return found


def default_choice(catalog: Catalog) -> tuple[ModelChoice, bool]:
    """Pick the model used when none is named.

    Returns the choice and whether it is the starter fallback. The first
    installed normal-tier R1 variant wins, then any other installed
    non-starter model, then the starter.

    Raises:
        NoModelInstalled: nothing at all is installed.
    """
    installed = installed_variants(catalog)
    usable = [(v, p) for v, p in installed if verification_state(v, p) != "mismatch"]
    ranked = sorted(
        usable,
        key=lambda item: (
            item[0].model_id == STARTER_ID,
            not catalog.models[item[0].model_id].is_r1,
            item[0].tier != "normal",
        ),
    )
    if not ranked:
        raise NoModelInstalled()
    variant, path = ranked[0]
    return ModelChoice(path, catalog.models[variant.model_id], variant), variant.model_id == STARTER_ID


def resolve_model(spec: str, catalog: Catalog, tier: str = "normal") -> ModelChoice:
    """Turn `ID`, `ID:QUANT` or a path to a .gguf file into a model choice.

    `tier` picks the variant when only an ID is given.

    Raises:
        ModelNotFound: `spec` is neither a catalog entry nor a .gguf path.
        ModelNotInstalled: the variant is in the catalog but not on the phone.
    """
    if spec.lower().endswith(".gguf") or os.sep in spec:
        path = Path(spec).expanduser()
        return ModelChoice(path)

    model_id, _separator, quant = spec.partition(":")
    entry = catalog.get(model_id)
    if entry is None:
        raise ModelNotFound(spec)
    if quant:
        variant = entry.variant(quant)
        if variant is None:
            raise ModelNotFound(spec)
    else:
        variant = entry.tier_variant(tier) or entry.variants[0]
    path = installed_path(variant)
    if path is None:
        raise ModelNotInstalled(entry.id, variant.quant)
    if verification_state(variant, path) == "mismatch":
        raise ModelFileError(
            path,
            _("it failed its sha256 check in `r1chat models verify`."),
            _("Run `r1chat models pull {spec}` to get it again.").format(spec=variant.spec),
        )
    return ModelChoice(path, entry, variant)
