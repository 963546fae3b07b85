"""Resumable, checksummed downloads of model files over HTTP.

A file is fetched into `<file>.part` next to its final path while its sha256
is computed. After an interruption (Ctrl-C, a dropped link, the app killed),
the next run hashes what the .part contains and requests the server for the rest
with an HTTP Range request. A server that ignores Range answers 200 with the
whole file, and the .part is then truncated and filled from the start. The
file is renamed into place only when its sha256 matches the catalog.

huggingface_hub is not used: it needs hf-xet on aarch64, which does not build
in Termux, and since version 1.0 it restarts interrupted downloads from zero.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, TextIO

import httpx

from r1chat import __version__, config, store
from r1chat.catalog import Variant
from r1chat.errors import (
    AllSourcesFailed,
    AnotherInstanceRunning,
    ChecksumMismatch,
    DiskFull,
    DownloadError,
    NotEnoughSpace,
    SettingsError,
)
from r1chat.locale import _
from r1chat.progress import Progress, format_bytes

log = logging.getLogger(__name__)

SOURCE_NAMES = ("huggingface", "hf-mirror", "modelscope", "url")
HUGGINGFACE_ENDPOINT = "https://huggingface.co"
HF_MIRROR_ENDPOINT = "https://hf-mirror.com"
MODELSCOPE_ENDPOINT = "https://modelscope.cn"
GGUF_MAGIC = b"GGUF"
CHUNK_SIZE = 1 << 20
# Seconds to wait before each retry of a transient failure (connection lost,
# timeout, HTTP 429 or 5xx). The count starts again whenever bytes arrive, so
# a link that drops every few minutes still finishes.
# Three retries (7 s of waiting) keep a dead source from holding up the next
# one, which matters where one of the hubs is blocked.
RETRY_DELAYS_S: tuple[float, ...] = (1.0, 2.0, 4.0)
# A source is given up after this many fresh starts, which happen when a server
# responds to a resume request with the wrong range.
MAX_RESTARTS = 3
# A blocked host often accepts nothing at all: give up connecting after 15 s,
# but let a slow mobile link go quiet for 60 s before calling it stalled.
TIMEOUT = httpx.Timeout(15.0, read=60.0)
USER_AGENT = f"r1chat/{__version__}"


@dataclass(frozen=True)
class Candidate:
    """One URL to try for a file, and the source name shown to the user."""

    source: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    sha256: str
    candidate: Candidate
    # Bytes received over the network in this run; less than the file size after a resume.
    fetched_bytes: int
    # False when the catalog has no sha256, so the file was recorded but not checked.
    checked: bool


class _TransientError(Exception):
    """A failure worth retrying after a pause: lost connection, timeout, HTTP 429 or 5xx."""


# Where a file comes from -------------------------------------------------------


def part_path(dest: Path) -> Path:
    """Return the path of the partial download of `dest`."""
    return dest.with_name(dest.name + ".part")


def candidate_urls(
    variant: Variant,
    order: list[str],
    *,
    only: str | None = None,
    environ: dict[str, str] | os._Environ[str] = os.environ,
) -> list[Candidate]:
    """List the URLs to try for `variant`, in the order of the source names in `order`.

    `only` (the --source option) keeps just that source. Otherwise `url`
    sources of the catalog come where "url" appears in `order`, or last when it
    is absent. `HF_ENDPOINT` replaces huggingface.co, and then hf-mirror.com is
    skipped unless it was asked for by `only`, because the endpoint the user set
    is the Hugging Face they can reach. `HF_TOKEN` is sent only to that endpoint.

    Raises:
        SettingsError: `order` names an unknown source.
    """
    for name in order:
        if name not in SOURCE_NAMES:
            raise SettingsError(
                config.settings_path(),
                _("source_order: unknown source {name!r}; use {names}").format(
                    name=name, names=", ".join(SOURCE_NAMES)
                ),
            )
    names = [only] if only else list(order)
    if not only and "url" not in names:
        names.append("url")

    hf_endpoint = (environ.get("HF_ENDPOINT") or "").rstrip("/")
    token = environ.get("HF_TOKEN")
    by_name: dict[str, list[Candidate]] = {name: [] for name in SOURCE_NAMES}
    for source in variant.sources:
        if source.url:
            by_name["url"].append(Candidate("url", source.url))
            continue
        path = f"{source.repo}/resolve/{source.revision}/{variant.file}"
        if source.hub == "huggingface":
            headers = (("Authorization", f"Bearer {token}"),) if token else ()
            endpoint = hf_endpoint or HUGGINGFACE_ENDPOINT
            by_name["huggingface"].append(Candidate("huggingface", f"{endpoint}/{path}", headers))
            if not hf_endpoint or only == "hf-mirror":
                by_name["hf-mirror"].append(Candidate("hf-mirror", f"{HF_MIRROR_ENDPOINT}/{path}"))
        elif source.hub == "modelscope":
            by_name["modelscope"].append(
                Candidate("modelscope", f"{MODELSCOPE_ENDPOINT}/models/{path}")
            )

    seen: set[str] = set()
    candidates = []
    for name in names:
        for candidate in by_name[name]:
            if candidate.url not in seen:
                seen.add(candidate.url)
                candidates.append(candidate)
    return candidates


# Locking and disk space -------------------------------------------------------


@contextmanager
def model_file_lock(dest: Path) -> Iterator[None]:
    """Hold an exclusive lock on `<dest>.lock` so two processes never write `dest` at once.

    Raises:
        AnotherInstanceRunning: another process has the lock; the error names its pid.
    """
    lock_path = dest.with_name(dest.name + ".lock")
    config.ensure_dir(lock_path.parent)
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            pid = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise AnotherInstanceRunning(_("writing {file}").format(file=dest.name), pid) from None
            raise
        # The previous holder deletes the lock file on release. If that happened
        # between our open and flock, the lock is on a deleted file: take a new one.
        try:
            current = os.stat(lock_path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)

    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    try:
        yield
    finally:
        try:
            os.unlink(lock_path)
        except FileNotFoundError:
            pass
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None


def check_free_space(folder: Path, needed: int | None) -> None:
    """Raise NotEnoughSpace when `folder`'s file system has less than `needed` bytes free."""
    if not needed or needed <= 0:
        return
    free = shutil.disk_usage(folder).free
    log.debug("free space in %s: %d bytes, needed %d", folder, free, needed)
    if free < needed:
        raise NotEnoughSpace(folder, format_bytes(needed), format_bytes(free))


# The download -----------------------------------------------------------------


def download_variant(
    variant: Variant,
    candidates: list[Candidate],
    *,
    stream: TextIO | None = None,
    client: httpx.Client | None = None,
    retry_delays: tuple[float, ...] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> DownloadResult:
    """Download `variant`'s file from the first candidate that works and install it.

    Each failing candidate is reported on `stream` before the next is tried.
    On success the file is at `store.variant_path(variant)` and recorded in the
    manifest with its sha256.

    Raises:
        DownloadError, ChecksumMismatch: the only candidate failed.
        AllSourcesFailed: several candidates were tried and all failed.
        NotEnoughSpace, DiskFull: the phone has no room for the file.
        AnotherInstanceRunning: another process is writing the same file.
    """
    stream = stream if stream is not None else sys.stderr
    delays = RETRY_DELAYS_S if retry_delays is None else retry_delays
    dest = store.variant_path(variant)
    if not candidates:
        raise AllSourcesFailed(variant.spec, [])
    config.ensure_dir(dest.parent)

    with model_file_lock(dest):
        part = part_path(dest)
        already = part.stat().st_size if part.exists() else 0
        if variant.size:
            check_free_space(dest.parent, variant.size - min(already, variant.size))

        own_client = client is None
        http = client if client is not None else _new_client()
        failures: list[tuple[str, str]] = []
        errors: list[Exception] = []
        try:
            for index, candidate in enumerate(candidates):
                stream.write(
                    _("Downloading {spec} from {url}").format(spec=variant.spec, url=candidate.url) + "\n"
                )
                try:
                    return _download_one(variant, candidate, dest, http, stream, delays, sleep)
                except (DownloadError, ChecksumMismatch) as exc:
                    problem = exc.problem if isinstance(exc, DownloadError) else str(exc)
                    log.info("source %s failed for %s: %s", candidate.url, variant.spec, problem)
                    failures.append((candidate.url, problem))
                    errors.append(exc)
                    if index + 1 < len(candidates):
                        stream.write(
                            _("{source} failed: {problem}").format(source=candidate.source, problem=problem)
                            + "\n"
                            + _("Trying the next source.")
                            + "\n"
                        )
        finally:
            if own_client:
                http.close()

    if len(errors) == 1:
        raise errors[0]
    raise AllSourcesFailed(variant.spec, failures)


def _new_client() -> httpx.Client:
    return httpx.Client(follow_redirects=True, timeout=TIMEOUT)


def _download_one(
    variant: Variant,
    candidate: Candidate,
    dest: Path,
    client: httpx.Client,
    stream: TextIO,
    delays: tuple[float, ...],
    sleep: Callable[[float], None],
) -> DownloadResult:
    transfer = _Transfer(part_path(dest), candidate, client, variant, stream, delays, sleep)
    sha256 = transfer.run()

    if variant.sha256 and sha256 != variant.sha256:
        part_path(dest).unlink(missing_ok=True)
        raise ChecksumMismatch(
            variant.file,
            variant.sha256,
            sha256,
            _("The damaged download was deleted and nothing was installed. Run the command again;"
              " if it fails the same way, the catalog entry or the server's file is wrong."),
        )

    os.replace(part_path(dest), dest)
    store.record_file(dest, sha256, good=True)
    log.debug("installed %s (sha256 %s)", dest, sha256)
    return DownloadResult(dest, sha256, candidate, transfer.fetched, checked=variant.sha256 is not None)


class _Transfer:
    """Fill one .part file from one URL, resuming and retrying; keeps the running sha256.

    Invariant between requests: the first `offset` bytes of the .part are the
    bytes fed to `hasher`.
    """

    def __init__(self, part, candidate, client, variant, stream, delays, sleep) -> None:
        self.part: Path = part
        self.candidate: Candidate = candidate
        self.client: httpx.Client = client
        self.variant: Variant = variant
        self.stream: TextIO = stream
        self.delays: tuple[float, ...] = delays
        self.sleep = sleep
        self.hasher = hashlib.sha256()
        self.offset = 0
        self.fetched = 0
        self.restarts = 0

    def run(self) -> str:
        """Download until the .part is complete and return its sha256 (hex)."""
        self._load_part()
        attempt = 0
        while True:
            offset_before = self.offset
            try:
                if self._fetch_once():
                    return self.hasher.hexdigest()
                continue
            except _TransientError as exc:
                problem = str(exc)
            if self.offset > offset_before:
                attempt = 0
            if attempt >= len(self.delays):
                raise DownloadError(
                    self.candidate.url,
                    _("{problem}; gave up after {count} retries").format(problem=problem, count=attempt),
                    self._resume_hint(),
                )
            delay = self.delays[attempt]
            attempt += 1
            log.info("retrying %s in %.1f s after: %s", self.candidate.url, delay, problem)
            self.stream.write(
                _("{problem}; retrying in {seconds} s (retry {attempt} of {count}).").format(
                    problem=problem, seconds=f"{delay:g}", attempt=attempt, count=len(self.delays)
                )
                + "\n"
            )
            self.sleep(delay)
            if self._part_size() != self.offset:
                self._load_part()

    def _resume_hint(self) -> str | None:
        if self._part_size() > 0:
            return _("The {size} downloaded so far are kept; run the same command again to resume.").format(
                size=format_bytes(self._part_size())
            )
        return None

    # The .part file ----------------------------------------------------------

    def _part_size(self) -> int:
        try:
            return self.part.stat().st_size
        except FileNotFoundError:
            return 0

    def _load_part(self) -> None:
        """Hash what the .part already contains, or discard it when it cannot be the start of the file."""
        self.hasher = hashlib.sha256()
        self.offset = 0
        size = self._part_size()
        if size == 0:
            return
        if self.variant.size and self.variant.sha256 and size > self.variant.size:
            log.debug("discarding %s: longer than the catalog size", self.part)
            self._truncate()
            return
        with self.part.open("rb") as handle:
            if handle.read(len(GGUF_MAGIC)) != GGUF_MAGIC:
                log.debug("discarding %s: does not start with the GGUF magic", self.part)
                self._truncate()
                return

        self.stream.write(
            _("Found {size} from an earlier download; checking it before resuming.").format(
                size=format_bytes(size)
            )
            + "\n"
        )
        progress = Progress(size, _("checking"), self.stream)
        with self.part.open("rb") as handle:
            while chunk := handle.read(CHUNK_SIZE):
                self.hasher.update(chunk)
                self.offset += len(chunk)
                progress.update(self.offset)
        progress.close()

    def _truncate(self) -> None:
        with self.part.open("wb"):
            pass
        self.hasher = hashlib.sha256()
        self.offset = 0

    def _restart(self, message: str) -> None:
        self.restarts += 1
        if self.restarts > MAX_RESTARTS:
            raise DownloadError(self.candidate.url, _("the server keeps sending the wrong part of the file"))
        self.stream.write(message + "\n")
        self._truncate()

    # HTTP ----------------------------------------------------------------------

    def _fetch_once(self) -> bool:
        """Make one request; return True when the .part is complete, False to ask again at once.

        Raises:
            _TransientError: worth retrying after a pause.
            DownloadError: this source cannot provide the file.
        """
        headers = {"Accept-Encoding": "identity", "User-Agent": USER_AGENT}
        headers.update(self.candidate.headers)
        if self.offset:
            headers["Range"] = f"bytes={self.offset}-"
        try:
            with self.client.stream("GET", self.candidate.url, headers=headers) as response:
                return self._receive(response)
        except httpx.TimeoutException as exc:
            raise _TransientError(_("timed out")) from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
            raise _TransientError(_("connection failed ({detail})").format(detail=_describe(exc))) from exc
        except httpx.HTTPError as exc:
            raise DownloadError(self.candidate.url, _describe(exc)) from exc

    def _receive(self, response: httpx.Response) -> bool:
        url = self.candidate.url
        status = response.status_code
        if status == 416 and self.offset:
            if _content_range_total(response.headers.get("content-range")) == self.offset:
                return True
            self._restart(_("The server rejected the resume request; starting over."))
            return False
        if status == 404:
            raise DownloadError(url, _("not found (HTTP 404)"), _("The catalog entry may point to a file that was moved or renamed."))
        if status in (401, 403):
            raise DownloadError(
                url,
                _("access denied (HTTP {status})").format(status=status),
                _("If the model needs a Hugging Face login, set HF_TOKEN to an access token."),
            )
        if status == 429 or status >= 500:
            raise _TransientError(_("the server returned HTTP {status}").format(status=status))
        if status not in (200, 206):
            raise DownloadError(url, _("unexpected HTTP status {status}").format(status=status))
        if "text/html" in response.headers.get("content-type", "").lower():
            raise DownloadError(
                url,
                _("the server sent a web page instead of the model file"),
                _("The site may need a login or be showing an error page; try another source with --source."),
            )

        if status == 200 and self.offset:
            self._restart(_("The server does not support resuming; downloading from the start."))
        elif status == 206 and _content_range_start(response.headers.get("content-range")) != self.offset:
            self._restart(_("The server sent the wrong part of the file; starting over."))
            return False

        length = _int_header(response, "content-length")
        total = self.offset + length if length is not None else self.variant.size
        # Sizes in the catalog are exact only for entries with a sha256; the others are rounded.
        if length is not None and self.variant.sha256 and self.variant.size and total != self.variant.size:
            raise DownloadError(
                url,
                _("the file on the server has {actual} bytes, but the catalog expects {expected}").format(
                    actual=total, expected=self.variant.size
                ),
                _("The server may have a different version of the file; try another source with --source."),
            )
        if length is not None:
            check_free_space(self.part.parent, length)
        self._write_body(response, total, length)

        if length is not None and self.offset < total:
            raise _TransientError(_("the connection closed before the end of the file"))
        return True

    def _write_body(self, response: httpx.Response, total: int | None, length: int | None) -> None:
        progress = Progress(total, self.variant.spec, self.stream, done=self.offset)
        pending = b"" if self.offset == 0 else None
        try:
            with self.part.open("ab") as handle:
                # No chunk_size: httpx would hold up to that many bytes back, and a
                # dropped connection would lose them instead of leaving them in the .part.
                for chunk in response.iter_bytes():
                    if pending is not None:
                        # Hold the first bytes until the GGUF magic can be checked.
                        pending += chunk
                        if len(pending) < len(GGUF_MAGIC):
                            continue
                        if not pending.startswith(GGUF_MAGIC):
                            if pending.lstrip()[:1] == b"<":
                                problem = _("the server sent a web page instead of the model file")
                            else:
                                problem = _("the server sent something that is not a GGUF model file")
                            raise DownloadError(self.candidate.url, problem)
                        chunk, pending = pending, None
                    self._write(handle, chunk)
                    progress.update(self.offset)
                if pending is not None and (length is None or len(pending) >= length):
                    raise DownloadError(
                        self.candidate.url,
                        _("the server sent {count} bytes, which is not a GGUF model file").format(count=len(pending)),
                    )
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFull(
                    self.part,
                    _("Free some space and run the same command again; the {size} saved so far are kept and the download resumes.").format(
                        size=format_bytes(self.offset)
                    ),
                ) from exc
            raise
        finally:
            progress.close()

    def _write(self, handle, chunk: bytes) -> None:
        handle.write(chunk)
        self.hasher.update(chunk)
        self.offset += len(chunk)
        self.fetched += len(chunk)


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _int_header(response: httpx.Response, name: str) -> int | None:
    try:
        return int(response.headers[name])
    except (KeyError, ValueError):
        return None


def _content_range_start(value: str | None) -> int | None:
    """Return the first byte of a `bytes START-END/TOTAL` Content-Range."""
    try:
        return int(value.split()[1].split("-")[0])
    except (AttributeError, IndexError, ValueError):
        return None


def _content_range_total(value: str | None) -> int | None:
    """Return TOTAL of a `bytes */TOTAL` or `bytes START-END/TOTAL` Content-Range."""
    try:
        return int(value.rsplit("/", 1)[1])
    except (AttributeError, IndexError, ValueError):
        return None
