"""The model catalog: `models.toml` read into typed entries.

The shipped catalog is extended and overridden, by model id, by the user's
`models.toml` in the config folder and then by the file named in
`R1CHAT_CATALOG`. Within a model, a variant with the same quant replaces the
shipped one and other keys replace the shipped values.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1chat import config
from r1chat.errors import CatalogError

TIERS = ("normal", "low")
HUBS = ("huggingface", "modelscope")
R1_FAMILY = "deepseek-r1"
STARTER_ID = "smollm2-135m"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MODEL_KEYS = {"name", "family", "license", "description", "variants"}
_VARIANT_KEYS = {
    "quant", "tier", "file", "size", "sha256", "min_ram_mb", "sources", "derive", "bundled",
}


@dataclass(frozen=True)
class Source:
    """One place a variant's file can be downloaded from: a hub repo or a direct URL."""

    hub: str | None = None
    repo: str | None = None
    revision: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Variant:
    """One quantization of a model and where its file comes from."""

    model_id: str
    quant: str
    tier: str
    file: str
    size: int | None = None
    sha256: str | None = None
    min_ram_mb: int | None = None
    sources: tuple[Source, ...] = ()
    # Quant of the variant this one is made from on the phone, by the quantizer.
    derive_from: str | None = None
    # Python package whose folder contains the file.
    bundled: str | None = None

    @property
    def spec(self) -> str:
        return f"{self.model_id}:{self.quant}"


@dataclass(frozen=True)
class ModelEntry:
    id: str
    name: str
    family: str
    license: str
    variants: tuple[Variant, ...]
    description: str = ""

    @property
    def is_r1(self) -> bool:
        return self.family == R1_FAMILY

    def variant(self, quant: str) -> Variant | None:
        wanted = quant.upper()
        return next((v for v in self.variants if v.quant.upper() == wanted), None)

    def tier_variant(self, tier: str) -> Variant | None:
        """Return the first variant of `tier` ("normal" or "low")."""
        return next((v for v in self.variants if v.tier == tier), None)


@dataclass(frozen=True)
class Catalog:
    models: dict[str, ModelEntry]

    def get(self, model_id: str) -> ModelEntry | None:
        return self.models.get(model_id)

    def __iter__(self):
        return iter(self.models.values())


def shipped_catalog_path() -> Path:
    """Return the `models.toml` shipped with r1chat.

    An installed wheel has it inside the package; a source checkout has it at
    the top of the repository.
    """
    packaged = Path(__file__).with_name("models.toml")
    if packaged.exists():
        return packaged
    return Path(__file__).resolve().parent.parent / "models.toml"


def catalog_paths() -> list[Path]:
    """Return the catalog files in the order they apply; later ones override."""
    paths = [shipped_catalog_path()]
    user = config.user_catalog_path()
    if user.exists():
        paths.append(user)
    extra = config.extra_catalog_path()
    if extra is not None:
        paths.append(extra)
    return paths


def load_catalog(paths: list[Path] | None = None) -> Catalog:
    """Read and merge catalog files (default: `catalog_paths()`).

    Raises:
        CatalogError: a file is missing, not TOML, or an entry is malformed.
    """
    merged: dict[str, dict[str, Any]] = {}
    for path in paths if paths is not None else catalog_paths():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise CatalogError(path, "-", "-", "file not found") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise CatalogError(path, "-", "-", f"not valid TOML: {exc}") from exc
        models = raw.get("models", {})
        if not isinstance(models, dict):
            raise CatalogError(path, "-", "models", "must be a table of model entries")
        for model_id, table in models.items():
            if not isinstance(table, dict):
                raise CatalogError(path, model_id, "-", "must be a table")
            _merge_entry(merged, model_id, table, path)

    entries = {
        model_id: _parse_model(model_id, table, table["_path"])
        for model_id, table in merged.items()
    }
    return Catalog(entries)


def _merge_entry(merged: dict[str, dict[str, Any]], model_id: str, table: dict, path: Path) -> None:
    current = merged.setdefault(model_id, {"variants": []})
    variants = table.get("variants", [])
    if not isinstance(variants, list):
        raise CatalogError(path, model_id, "variants", "must be an array of tables")
    for key, value in table.items():
        if key != "variants":
            current[key] = value
    current["_path"] = path
    for variant in variants:
        if not isinstance(variant, dict):
            raise CatalogError(path, model_id, "variants", "each variant must be a table")
        quant = str(variant.get("quant", "")).upper()
        current["variants"] = [
            old for old in current["variants"] if str(old.get("quant", "")).upper() != quant
        ]
        current["variants"].append({**variant, "_path": path})


def _parse_model(model_id: str, table: dict[str, Any], path: Path) -> ModelEntry:
    unknown = set(table) - _MODEL_KEYS - {"_path"}
    if unknown:
        raise CatalogError(path, model_id, sorted(unknown)[0], "unknown field")
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", model_id):
        raise CatalogError(path, model_id, "id", "use lower-case letters, digits, '.', '_', '-'")
    name = _require(table, "name", str, path, model_id)
    family = table.get("family", "")
    if not isinstance(family, str):
        raise CatalogError(path, model_id, "family", "must be a string")
    variants = tuple(_parse_variant(model_id, v, v["_path"]) for v in table["variants"])
    if not variants:
        raise CatalogError(path, model_id, "variants", "at least one variant is required")
    quants = {v.quant for v in variants}
    for variant in variants:
        if variant.derive_from is not None and variant.derive_from not in quants:
            raise CatalogError(
                path, model_id, "derive",
                f"derives from {variant.derive_from}, which is not a variant of this model",
            )
    return ModelEntry(
        id=model_id,
        name=name,
        family=family,
        license=str(table.get("license", "")),
        variants=variants,
        description=str(table.get("description", "")),
    )


def _parse_variant(model_id: str, table: dict[str, Any], path: Path) -> Variant:
    unknown = set(table) - _VARIANT_KEYS - {"_path"}
    if unknown:
        raise CatalogError(path, model_id, f"variants.{sorted(unknown)[0]}", "unknown field")
    quant = _require(table, "quant", str, path, model_id, "variants.quant").upper()
    where = f"variants[{quant}]"
    tier = table.get("tier", "normal")
    if tier not in TIERS:
        raise CatalogError(path, model_id, f"{where}.tier", f"must be one of {', '.join(TIERS)}")
    file = _require(table, "file", str, path, model_id, f"{where}.file")
    if "/" in file or "\\" in file or file.startswith(".") or not file.endswith(".gguf"):
        raise CatalogError(path, model_id, f"{where}.file", "must be a plain file name ending in .gguf")

    size = table.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
        raise CatalogError(path, model_id, f"{where}.size", "must be a positive number of bytes")
    sha256 = table.get("sha256")
    if sha256 is not None and (not isinstance(sha256, str) or not _SHA256.fullmatch(sha256.lower())):
        raise CatalogError(path, model_id, f"{where}.sha256", "must be 64 hexadecimal digits")
    min_ram = table.get("min_ram_mb")
    if min_ram is not None and (not isinstance(min_ram, int) or min_ram <= 0):
        raise CatalogError(path, model_id, f"{where}.min_ram_mb", "must be a positive integer")

    derive = table.get("derive")
    derive_from = None
    if derive is not None:
        if not isinstance(derive, dict) or not isinstance(derive.get("from"), str):
            raise CatalogError(path, model_id, f"{where}.derive", 'must be { from = "QUANT" }')
        derive_from = derive["from"].upper()
    bundled = table.get("bundled")
    if bundled is not None and not isinstance(bundled, str):
        raise CatalogError(path, model_id, f"{where}.bundled", "must be a Python package name")

    sources = tuple(
        _parse_source(model_id, index, source, path, where)
        for index, source in enumerate(_require(table, "sources", list, path, model_id, f"{where}.sources", default=[]))
    )
    if not sources and derive_from is None and bundled is None:
        raise CatalogError(
            path, model_id, f"{where}.sources", "needs sources, derive or bundled to say where the file comes from"
        )
    return Variant(
        model_id=model_id,
        quant=quant,
        tier=tier,
        file=file,
        size=size,
        sha256=sha256.lower() if sha256 else None,
        min_ram_mb=min_ram,
        sources=sources,
        derive_from=derive_from,
        bundled=bundled,
    )


def _parse_source(model_id: str, index: int, table: Any, path: Path, where: str) -> Source:
    field = f"{where}.sources[{index}]"
    if not isinstance(table, dict):
        raise CatalogError(path, model_id, field, "must be a table")
    if "url" in table:
        url = table["url"]
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise CatalogError(path, model_id, f"{field}.url", "must be an http:// or https:// URL")
        return Source(url=url)
    hub = table.get("hub")
    if hub not in HUBS:
        raise CatalogError(path, model_id, f"{field}.hub", f"must be one of {', '.join(HUBS)}, or give a url")
    repo = table.get("repo")
    if not isinstance(repo, str) or repo.count("/") != 1:
        raise CatalogError(path, model_id, f"{field}.repo", 'must look like "owner/name"')
    revision = table.get("revision", "main")
    if not isinstance(revision, str) or not revision:
        raise CatalogError(path, model_id, f"{field}.revision", "must be a non-empty string")
    return Source(hub=hub, repo=repo, revision=revision)


def _require(table, key, kind, path, model_id, field=None, default=None):
    value = table.get(key, default)
    if value is None:
        raise CatalogError(path, model_id, field or key, "missing")
    if not isinstance(value, kind):
        raise CatalogError(path, model_id, field or key, f"must be a {kind.__name__}")
    return value
