"""install-termux.sh, run for real under a simulated Termux.

The simulation is a temporary PREFIX and HOME, TERMUX_VERSION, and a PATH
whose `pkg`, `dpkg`, `uname`, `df` and `termux-wake-*` are the scripts in
tests/termux_sim/bin: they record each call in a log and keep the "installed"
packages in a state folder. Python is real: a virtual environment made in the
temporary folder that sees this interpreter's site-packages (so llama_cpp and
the starter model need no build), into which the script pip-installs r1chat
from this checkout. R1CHAT_PIP_ARGS adds `--no-deps --no-index` so that pip
stays offline; the script itself is run unchanged.
"""

from __future__ import annotations

import importlib.util
import os
import pty
import shutil
import signal
import site
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "install-termux.sh"
FAKE_BIN = Path(__file__).resolve().parent / "termux_sim" / "bin"
PACKAGES = "python python-pip clang cmake ninja python-numpy python-psutil"
MODEL_FILE = "DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf"
RUN_TIMEOUT = 300


def make_venv(folder: Path) -> Path:
    """Create a pip-less venv that also imports this interpreter's site-packages.

    A .pth file of plain paths adds those folders to sys.path without running
    the .pth files inside them, so an editable r1chat installed there is not
    importable: only the copy the script installs is.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    (purelib,) = (folder / "lib").glob("python3.*/site-packages")
    (purelib / "_parent_site.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return folder / "bin"


class TermuxSim:
    """A simulated Termux in `root`: folders, fake commands, and how to run the script."""

    def __init__(self, root: Path, venv_bin: Path | None = None) -> None:
        self.root = root
        self.prefix = root / "usr"
        self.tmpdir = self.prefix / "tmp"
        self.home = root / "home"
        self.state = root / "state"
        self.log = root / "calls.log"
        self.r1chat_home = root / "r1chat-home"
        self.venv_bin = venv_bin
        for folder in (self.tmpdir, self.home, self.state):
            folder.mkdir(parents=True, exist_ok=True)
        self.log.touch()

    def env(self, path_head: list[Path] | None = None, **overrides: str | None) -> dict[str, str]:
        path = [*(path_head or []), FAKE_BIN]
        if self.venv_bin is not None:
            path.append(self.venv_bin)
        env = {
            "PATH": os.pathsep.join([*map(str, path), "/usr/bin", "/bin"]),
            "HOME": str(self.home),
            "PREFIX": str(self.prefix),
            "TMPDIR": str(self.tmpdir),
            "TERMUX_VERSION": "0.118.1",
            "LANG": "en_US.UTF-8",
            "R1CHAT_HOME": str(self.r1chat_home),
            "R1CHAT_PIP_ARGS": "--no-deps --no-index",
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "SIM_LOG": str(self.log),
            "SIM_STATE": str(self.state),
        }
        for name, value in overrides.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def run(self, *args: str, script: Path = SCRIPT, path_head=None, **env) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(script), *args],
            cwd=self.home,
            env=self.env(path_head, **env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )

    def start(self, path_head=None, **env) -> subprocess.Popen:
        """Start the script in its own process group, as a terminal would run it."""
        return subprocess.Popen(
            ["bash", str(SCRIPT)],
            cwd=self.home,
            env=self.env(path_head, **env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines()

    def clear_calls(self) -> None:
        self.log.write_text("")

    def work_dirs(self) -> list[Path]:
        return sorted(self.tmpdir.glob("r1chat-install.*"))

    def site_packages(self) -> Path:
        (purelib,) = (self.root / "venv" / "lib").glob("python3.*/site-packages")
        return purelib


def changing_calls(calls: list[str]) -> list[str]:
    """Return the logged calls that change installed packages."""
    return [call for call in calls if call.startswith(("pkg install", "dpkg --configure"))]


def r1chat_dist_info(sim: TermuxSim) -> Path:
    (dist_info,) = sim.site_packages().glob("r1chat-*.dist-info")
    return dist_info


def make_shim(folder: Path, pull_status: int) -> Path:
    """Put an `r1chat` in `folder` that logs `models pull` instead of downloading.

    No test may reach a model hub; every other command goes to the real r1chat.
    """
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / "r1chat"
    shim.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = models ] && [ "$2" = pull ]; then\n'
        '    echo "r1chat $*" >>"$SIM_LOG"\n'
        f"    exit {pull_status}\n"
        "fi\n"
        'exec "$R1CHAT_REAL" "$@"\n'
    )
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    return folder


def make_slow_pip(folder: Path) -> Path:
    """Put a `python` in `folder` that waits before each `python -m pip` run.

    The wait makes the moment a test interrupts the script certain. The
    marker file `pip-started` in $SIM_STATE says that the wait has begun.
    """
    folder.mkdir(parents=True, exist_ok=True)
    wrapper = folder / "python"
    wrapper.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = -m ] && [ "$2" = pip ]; then\n'
        '    touch "$SIM_STATE/pip-started"\n'
        "    sleep 60\n"
        "fi\n"
        'exec "$SIM_REAL_PYTHON" "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return folder


def new_sim(root: Path) -> TermuxSim:
    # The script builds r1chat without build isolation, and --no-index keeps
    # pip from fetching the build backend, so it must already be installed.
    if importlib.util.find_spec("hatchling") is None:
        pytest.fail("hatchling is not installed in the test environment: pip install hatchling")
    return TermuxSim(root, make_venv(root / "venv"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A simulated Termux after one complete run of the script, and that run's result."""
    sim = new_sim(tmp_path_factory.mktemp("termux"))
    result = sim.run()
    assert result.returncode == 0, result.stdout + result.stderr
    return sim, result


# A fresh install and what it leaves behind ------------------------------------


def test_first_run_installs_packages_once(installed):
    sim, result = installed
    installs = [call for call in sim.calls() if call.startswith("pkg install")]
    assert installs == [f"pkg install -y {PACKAGES}"]


def test_first_run_installs_r1chat_command(installed):
    sim, result = installed
    assert (sim.venv_bin / "r1chat").is_file()
    assert r1chat_dist_info(sim).name == "r1chat-0.1.0.dist-info"
    assert "r1chat 0.1.0 is installed." in result.stdout


def test_first_run_leaves_no_temp_folder(installed):
    sim, _ = installed
    assert sim.work_dirs() == []


def test_first_run_explains_next_steps(installed):
    _, result = installed
    assert "pkg install termux-api" in result.stdout
    assert "F-Droid" in result.stdout
    assert "r1chat models pull deepseek-r1-1.5b --source modelscope" in result.stdout
    assert "r1chat is ready" in result.stdout


def test_first_run_does_not_pull_without_terminal(installed):
    sim, result = installed
    assert "Not downloading now" in result.stdout
    assert not any(call.startswith("r1chat models pull") for call in sim.calls())


def test_installed_r1chat_reports_version(installed):
    sim, _ = installed
    result = subprocess.run(
        [str(sim.venv_bin / "r1chat"), "--version"],
        cwd=sim.home,
        env=sim.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "0.1.0" in result.stdout


def test_installed_r1chat_answers_prompt(installed):
    sim, _ = installed
    result = subprocess.run(
        [str(sim.venv_bin / "r1chat"), "-p", "Say hi", "--seed", "1", "-n", "24"],
        cwd=sim.home,
        env=sim.env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    if result.returncode == 2 and "-p" in result.stderr:
        pytest.skip(f"this r1chat has no -p yet: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() != ""


# A second run ------------------------------------------------------------------


def test_second_run_changes_nothing(installed):
    sim, _ = installed
    record = r1chat_dist_info(sim) / "RECORD"
    before = record.stat().st_mtime_ns
    sim.clear_calls()

    result = sim.run()

    assert result.returncode == 0, result.stdout + result.stderr
    assert changing_calls(sim.calls()) == []
    assert record.stat().st_mtime_ns == before
    assert "All of them are installed already." in result.stdout
    assert "r1chat 0.1.0 is installed already." in result.stdout
    assert "Processing" not in result.stdout
    assert "Nothing is left to install" in result.stdout


def test_second_run_cleans_stale_temp_folders(installed):
    sim, _ = installed
    finished = subprocess.Popen(["true"])
    finished.wait()
    leftover = sim.tmpdir / "r1chat-install.killed"
    leftover.mkdir()
    (leftover / "pid").write_text(f"{finished.pid}\n")
    (leftover / "pip-build").mkdir()

    starting = sim.tmpdir / "r1chat-install.starting"
    starting.mkdir()
    abandoned = sim.tmpdir / "r1chat-install.abandoned"
    abandoned.mkdir()
    an_hour_ago = time.time() - 3600
    os.utime(abandoned, (an_hour_ago, an_hour_ago))

    result = sim.run()

    assert result.returncode == 0, result.stderr
    assert not leftover.exists()
    assert not abandoned.exists()
    assert sim.work_dirs() == [starting]
    starting.rmdir()


def test_second_run_speaks_chinese(installed):
    sim, _ = installed
    result = sim.run(LANG="zh_CN.UTF-8")
    assert result.returncode == 0, result.stderr
    assert "==> Termux 软件包" in result.stdout
    assert "全部已安装。" in result.stdout
    assert "r1chat 已就绪" in result.stdout
    assert "Checking storage" not in result.stdout


def test_lc_all_overrides_lang(installed):
    sim, _ = installed
    result = sim.run(LANG="zh_CN.UTF-8", LC_ALL="en_US.UTF-8")
    assert "All of them are installed already." in result.stdout


# The model download offer --------------------------------------------------------


def run_in_terminal(sim: TermuxSim, answers: bytes, path_head: list[Path], **env) -> tuple[int, str]:
    """Run the script with a pseudo-terminal as stdin, typing `answers`."""
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(
            ["bash", str(SCRIPT)],
            cwd=sim.home,
            env=sim.env(path_head, **env),
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        os.write(master, answers)
        output, _ = process.communicate(timeout=RUN_TIMEOUT)
    finally:
        os.close(slave)
        os.close(master)
    return process.returncode, output


def shim_env(sim: TermuxSim, folder: Path, pull_status: int = 0) -> dict:
    return {
        "path_head": [make_shim(folder, pull_status)],
        "R1CHAT_REAL": str(sim.venv_bin / "r1chat"),
    }


def test_terminal_user_picks_mirror(installed, tmp_path):
    sim, _ = installed
    sim.clear_calls()
    shim = make_shim(tmp_path / "shim", 0)

    status, output = run_in_terminal(sim, b"y\n2\n", [shim], R1CHAT_REAL=str(sim.venv_bin / "r1chat"))

    assert status == 0, output
    assert "hf-mirror.com" in output
    calls = sim.calls()
    assert "r1chat models pull deepseek-r1-1.5b --source hf-mirror" in calls
    pull = calls.index("r1chat models pull deepseek-r1-1.5b --source hf-mirror")
    assert "termux-wake-lock " in calls[:pull]
    assert "termux-wake-unlock " in calls[pull:]


def test_terminal_user_declines_download(installed, tmp_path):
    sim, _ = installed
    sim.clear_calls()
    shim = make_shim(tmp_path / "shim", 0)

    status, output = run_in_terminal(sim, b"n\n", [shim], R1CHAT_REAL=str(sim.venv_bin / "r1chat"))

    assert status == 0, output
    assert "Download it now?" in output
    assert "Not downloading now" in output
    assert not any(call.startswith("r1chat models pull") for call in sim.calls())


def test_terminal_default_source_in_chinese_is_modelscope(installed, tmp_path):
    sim, _ = installed
    sim.clear_calls()
    shim = make_shim(tmp_path / "shim", 0)

    status, output = run_in_terminal(
        sim, b"y\n\n", [shim], R1CHAT_REAL=str(sim.venv_bin / "r1chat"), LANG="zh_CN.UTF-8"
    )

    assert status == 0, output
    assert "现在下载吗？" in output
    assert "r1chat models pull deepseek-r1-1.5b --source modelscope" in sim.calls()


def test_pull_yes_uses_source_variable(installed, tmp_path):
    sim, _ = installed
    sim.clear_calls()
    result = sim.run(
        **shim_env(sim, tmp_path / "shim"), R1CHAT_PULL="yes", R1CHAT_PULL_SOURCE="modelscope"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "r1chat models pull deepseek-r1-1.5b --source modelscope" in sim.calls()


def test_pull_yes_defaults_to_hugging_face(installed, tmp_path):
    sim, _ = installed
    sim.clear_calls()
    result = sim.run(**shim_env(sim, tmp_path / "shim"), R1CHAT_PULL="YES")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "r1chat models pull deepseek-r1-1.5b" in sim.calls()


def test_pull_failure_says_how_to_resume(installed, tmp_path):
    sim, _ = installed
    sim.clear_calls()
    result = sim.run(**shim_env(sim, tmp_path / "shim", pull_status=1), R1CHAT_PULL="yes")
    assert result.returncode == 1
    assert "Downloading the model failed." in result.stderr
    assert "resumes where it stopped" in result.stderr
    assert sim.calls()[-1] == "termux-wake-unlock "


def test_pull_skipped_when_model_present(installed, tmp_path):
    sim, _ = installed
    home = tmp_path / "r1chat-home"
    model = home / "models" / "deepseek-r1-1.5b" / MODEL_FILE
    model.parent.mkdir(parents=True)
    model.write_bytes(b"GGUF")
    sim.clear_calls()

    result = sim.run(**shim_env(sim, tmp_path / "shim"), R1CHAT_PULL="yes", R1CHAT_HOME=str(home))

    assert result.returncode == 0, result.stderr
    assert "It is downloaded already." in result.stdout
    assert not any(call.startswith("r1chat models pull") for call in sim.calls())


@pytest.mark.parametrize(
    ("variable", "value"), [("R1CHAT_PULL", "maybe"), ("R1CHAT_PULL_SOURCE", "github")]
)
def test_invalid_pull_setting_rejected(installed, variable, value):
    sim, _ = installed
    result = sim.run(**{variable: value})
    assert result.returncode == 1
    assert f"{variable}={value}" in result.stderr


# Interruptions --------------------------------------------------------------------


def wait_for(condition, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            output, errors = process.communicate()
            pytest.fail(f"the script ended (status {process.returncode}) first:\n{output}{errors}")
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail("timed out waiting for the script")
        time.sleep(0.01)


def test_interrupt_during_pkg_then_rerun_completes(tmp_path):
    sim = new_sim(tmp_path)
    process = sim.start(SIM_PKG_DELAY="60")
    wait_for((sim.state / "pkg-started").exists, process)

    os.killpg(process.pid, signal.SIGINT)
    output, errors = process.communicate(timeout=60)

    assert process.returncode == 130, output + errors
    assert "Interrupted during: Termux packages" in errors, errors
    assert "again" in errors
    assert (sim.state / "half").read_text().split() == PACKAGES.split()
    assert not (sim.venv_bin / "r1chat").exists()

    sim.clear_calls()
    rerun = sim.run()

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "dpkg --configure -a" in sim.calls(), sim.calls()
    assert "Finishing a package installation that was interrupted" in rerun.stdout, rerun.stdout
    assert (sim.venv_bin / "r1chat").is_file()
    assert sim.work_dirs() == []


def test_terminate_during_pip_then_rerun_completes(tmp_path):
    sim = new_sim(tmp_path)
    slow = make_slow_pip(tmp_path / "slow-pip")
    process = sim.start([slow], SIM_REAL_PYTHON=str(sim.venv_bin / "python"))
    wait_for((sim.state / "pip-started").exists, process)
    assert len(sim.work_dirs()) == 1

    os.killpg(process.pid, signal.SIGTERM)
    output, errors = process.communicate(timeout=60)

    assert process.returncode == 143, output + errors
    assert f"Interrupted during: r1chat from {REPO}" in errors
    assert sim.work_dirs() == []
    assert not (sim.venv_bin / "r1chat").exists()

    rerun = sim.run()

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert (sim.venv_bin / "r1chat").is_file()
    assert "r1chat 0.1.0 is installed." in rerun.stdout


# Refusals and failures ---------------------------------------------------------


@pytest.fixture
def bare_sim(tmp_path):
    """A simulated Termux without Python, for runs that stop before any install."""
    return TermuxSim(tmp_path)


def fake_bin_without(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "bin-without"
    folder.mkdir()
    for fake in FAKE_BIN.iterdir():
        if fake.name not in names:
            shutil.copy2(fake, folder / fake.name)
    return folder


def test_plain_linux_rejected(bare_sim):
    result = bare_sim.run(TERMUX_VERSION=None, PREFIX="/usr")
    assert result.returncode == 1
    assert "this is not Termux" in result.stderr
    assert "README" in result.stderr
    assert "pip install '.[starter]'" in result.stderr
    assert changing_calls(bare_sim.calls()) == []


def test_termux_without_pkg_rejected(bare_sim, tmp_path):
    folder = fake_bin_without(tmp_path, "pkg")
    result = subprocess.run(
        ["bash", str(SCRIPT)],
        cwd=bare_sim.home,
        env=bare_sim.env() | {"PATH": f"{folder}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert result.returncode == 1
    assert "pip install '.[starter]'" in result.stderr


def test_termux_prefix_alone_is_enough(bare_sim):
    result = bare_sim.run(TERMUX_VERSION=None, PREFIX="/data/data/com.termux/files/usr", SIM_PKG_FAIL="1")
    assert "this is not Termux" not in result.stderr
    assert "pkg could not install" in result.stderr


def test_plain_linux_rejected_in_chinese(bare_sim):
    result = bare_sim.run(TERMUX_VERSION=None, PREFIX="/usr", LANG="zh_CN.UTF-8")
    assert result.returncode == 1
    assert "当前环境不是 Termux" in result.stderr
    assert "pip install '.[starter]'" in result.stderr


def write_proc(root: Path, cpuinfo: str, ish_folder: bool = False) -> Path:
    proc = root / "proc"
    proc.mkdir()
    (proc / "cpuinfo").write_text(cpuinfo)
    if ish_folder:
        (proc / "ish").mkdir()
        (proc / "ish" / "version").write_text("1.3.2 (494)\n")
    return proc


ISH_CPUINFO = "processor\t: 0\nvendor_id\t: iSH\n\n"


@pytest.mark.parametrize(
    ("machine", "release", "cpuinfo", "ish_folder"),
    [
        ("i686", "4.20.69-ish", ISH_CPUINFO, True),
        ("i686", "4.20.69-ish", ISH_CPUINFO, False),
        ("i686", "3.2.0-ish", "", False),
        ("i686", "6.1.0", ISH_CPUINFO, False),
    ],
    ids=["proc-ish", "release-and-vendor", "release-only", "vendor-only"],
)
def test_ish_explained_before_install(bare_sim, tmp_path, machine, release, cpuinfo, ish_folder):
    proc = write_proc(tmp_path, cpuinfo, ish_folder)
    result = bare_sim.run(
        TERMUX_VERSION=None,
        PREFIX="/usr",
        R1CHAT_PROC_DIR=str(proc),
        SIM_UNAME_M=machine,
        SIM_UNAME_R=release,
    )
    assert result.returncode == 1
    assert "This is iSH" in result.stderr
    assert "32-bit x86 processor without SSE4 or AVX" in result.stderr
    assert "address space" in result.stderr
    assert not any(call.startswith(("pkg", "dpkg")) for call in bare_sim.calls())


def test_ish_explained_in_chinese(bare_sim, tmp_path):
    proc = write_proc(tmp_path, ISH_CPUINFO, ish_folder=True)
    result = bare_sim.run(TERMUX_VERSION=None, R1CHAT_PROC_DIR=str(proc), LANG="zh_CN.UTF-8")
    assert result.returncode == 1
    assert "当前环境是 iSH" in result.stderr
    assert "SSE4" in result.stderr


def test_x86_with_sse4_is_not_ish(bare_sim, tmp_path):
    cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2\n"
    proc = write_proc(tmp_path, cpuinfo)
    result = bare_sim.run(
        TERMUX_VERSION=None, PREFIX="/usr", R1CHAT_PROC_DIR=str(proc),
        SIM_UNAME_M="i686", SIM_UNAME_R="6.1.0-ish",
    )
    assert result.returncode == 1
    assert "This is iSH" not in result.stderr
    assert "this is not Termux" in result.stderr


def test_low_storage_rejected_before_install(bare_sim):
    result = bare_sim.run(SIM_DF_AVAIL_KB=str(100 * 1024))
    assert result.returncode == 1
    assert "Not enough free storage" in result.stderr
    assert "has 100 MB free" in result.stderr
    assert "pkg clean" in result.stderr
    assert changing_calls(bare_sim.calls()) == []


def test_pkg_failure_says_what_to_do(bare_sim):
    result = bare_sim.run(SIM_PKG_FAIL="1")
    assert result.returncode == 1
    assert "pkg could not install python" in result.stderr
    assert "pkg update && pkg upgrade" in result.stderr


def test_pip_failure_names_step_and_source(tmp_path):
    sim = new_sim(tmp_path)
    result = sim.run(R1CHAT_PIP_ARGS="--no-deps --no-index --no-such-option")
    assert result.returncode == 1
    assert f"pip could not install r1chat from {REPO}" in result.stderr
    assert "run this script again" in result.stderr
    assert "Step failed" not in result.stderr
    assert sim.work_dirs() == []


def test_script_outside_checkout_needs_source(bare_sim, tmp_path):
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy2(SCRIPT, lone / SCRIPT.name)
    result = bare_sim.run(script=lone / SCRIPT.name)
    assert result.returncode == 1
    assert "not inside an r1chat checkout" in result.stderr
    assert "R1CHAT_SOURCE" in result.stderr
    assert changing_calls(bare_sim.calls()) == []


def test_source_folder_without_pyproject_rejected(bare_sim, tmp_path):
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy2(SCRIPT, lone / SCRIPT.name)
    result = bare_sim.run(script=lone / SCRIPT.name, R1CHAT_SOURCE=str(tmp_path))
    assert result.returncode == 1
    assert "without the pyproject.toml of r1chat" in result.stderr


def test_help_and_unknown_option(bare_sim):
    help_result = bare_sim.run("--help")
    bad_result = bare_sim.run("--frobnicate")
    assert help_result.returncode == 0
    assert "R1CHAT_PULL" in help_result.stdout
    assert bad_result.returncode == 2
    assert "Usage:" in bad_result.stderr


@pytest.mark.skipif(shutil.which("dash") is None, reason="dash is not installed")
def test_posix_sh_told_to_use_bash(bare_sim):
    result = subprocess.run(
        ["dash", str(SCRIPT)], env=bare_sim.env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "needs bash" in result.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shellcheck_finds_nothing():
    fakes = sorted(str(path) for path in FAKE_BIN.iterdir())
    result = subprocess.run(
        ["shellcheck", str(SCRIPT), *fakes], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout
    assert result.stdout == ""
