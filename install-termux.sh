#!/usr/bin/env bash
# Install r1chat in Termux on Android: system packages, llama-cpp-python built
# for the phone, r1chat itself, and (when asked) the DeepSeek-R1 1.5B model.
#
# Run it from an r1chat checkout: `bash install-termux.sh`. Every step first
# checks whether its work is already done, so a second run changes nothing,
# and a run after an interruption or a failure goes on where the last one
# stopped.
#
# Environment:
#   R1CHAT_SOURCE       where r1chat comes from when this script is not inside a
#                       checkout: a source folder, a wheel or sdist file, or a
#                       pip requirement
#   R1CHAT_PIP_ARGS     extra options for every `pip install`, for example
#                       `-i https://mirror.example/simple` for a PyPI mirror
#   R1CHAT_PULL         yes or no: download DeepSeek-R1 1.5B without asking
#                       (without it and without a terminal, nothing is downloaded)
#   R1CHAT_PULL_SOURCE  huggingface, hf-mirror or modelscope
#   R1CHAT_PROC_DIR     the proc file system to inspect (default /proc); tests
#                       point it at a prepared folder

# Checked before any bash syntax, because `sh install-termux.sh` would
# otherwise stop at the first array with a confusing parse error.
if [ -z "${BASH_VERSION:-}" ]; then
    echo "install-termux.sh needs bash: run it as 'bash install-termux.sh'." >&2
    exit 2
fi

set -euo pipefail

readonly MODEL_ID="deepseek-r1-1.5b"
readonly TERMUX_PACKAGES=(python python-pip clang cmake ninja python-numpy python-psutil)
# Built with OpenMP, llama.cpp needs libomp.so, which Android's loader does not
# find at run time in Termux. Without it, llama.cpp uses its own thread pool.
readonly LLAMA_CMAKE_ARGS="-DGGML_OPENMP=OFF"

# Free space, in MB, that each remaining step needs.
# NOTE: estimates, not measured on a phone. Clang, LLVM and Python with their
# downloaded .deb files make up most of PACKAGES_MB. LLAMA_BUILD_MB is
# llama.cpp's build tree, which is deleted after the build. MODEL_MB is the
# Q4_K_M file (1.12 GB) with some room to spare.
readonly PACKAGES_MB=700
readonly LLAMA_BUILD_MB=400
readonly R1CHAT_MB=60
readonly MODEL_MB=1200

CURRENT_STEP=""
WORK_DIR=""
WAKE_LOCKED=0
ERROR_REPORTED=0
PYTHON=python
PIP_EXTRA=()

# Output and language -------------------------------------------------------

pick_language() {
    local value
    for value in "${LC_ALL:-}" "${LC_MESSAGES:-}" "${LANG:-}"; do
        if [ -n "$value" ]; then
            case "$value" in
                zh* | ZH*) echo zh ;;
                *) echo en ;;
            esac
            return
        fi
    done
    echo en
}
UI_LANG=$(pick_language)

# Print $1, or $2 when the locale is Chinese.
text() {
    if [ "$UI_LANG" = zh ]; then
        printf '%s' "$2"
    else
        printf '%s' "$1"
    fi
}

say() {
    printf '%s\n' "$(text "$1" "$2")"
}

begin_step() {
    CURRENT_STEP=$(text "$1" "$2")
    printf '\n==> %s\n' "$CURRENT_STEP"
}

# Print an error and what to do about it on stderr, then exit 1.
die() {
    printf 'r1chat-install: %s\n' "$(text "$1" "$2")" >&2
    if [ $# -ge 4 ]; then
        printf '  %s\n' "$(text "$3" "$4")" >&2
    fi
    ERROR_REPORTED=1
    exit 1
}

# Interruption and cleanup --------------------------------------------------

remove_work_dir() {
    if [ -n "$WORK_DIR" ]; then
        rm -rf "$WORK_DIR"
        WORK_DIR=""
    fi
}

cleanup() {
    if [ "$WAKE_LOCKED" = 1 ]; then
        termux-wake-unlock >/dev/null 2>&1 || true
        WAKE_LOCKED=0
    fi
    remove_work_dir
}

on_exit() {
    local status=$?
    cleanup
    if [ "$status" -ne 0 ] && [ "$ERROR_REPORTED" = 0 ] && [ -n "$CURRENT_STEP" ]; then
        printf 'r1chat-install: %s\n' \
            "$(text "Step failed: $CURRENT_STEP (exit status $status)." \
                "步骤失败：$CURRENT_STEP（退出状态 $status）。")" >&2
        printf '  %s\n' \
            "$(text "Fix the problem shown above and run the script again; finished steps are skipped." \
                "请先解决上面显示的问题，再重新运行本脚本；已完成的步骤会被跳过。")" >&2
    fi
    exit "$status"
}

on_signal() {
    local status=$1
    trap - INT TERM HUP
    ERROR_REPORTED=1
    printf '\nr1chat-install: %s\n' \
        "$(text "Interrupted${CURRENT_STEP:+ during: $CURRENT_STEP}." \
            "已中断${CURRENT_STEP:+（步骤：$CURRENT_STEP）}。")" >&2
    printf '  %s\n' \
        "$(text "Run 'bash install-termux.sh' again to continue; finished steps are skipped." \
            "重新运行 'bash install-termux.sh' 即可继续；已完成的步骤会被跳过。")" >&2
    exit "$status"
}

trap on_exit EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'on_signal 129' HUP

# A private TMPDIR for pip: a llama.cpp build that is killed leaves hundreds of
# MB behind in TMPDIR, so each run builds in its own folder and deletes it.
# Folders left by a run that was killed outright (no trap ran) are deleted
# here once the process that made them is gone. A folder without a pid file
# may belong to a run that is just starting, so it is kept for 10 minutes.
make_work_dir() {
    local tmp_root="${TMPDIR:-${PREFIX:-}/tmp}"
    local old pid
    mkdir -p "$tmp_root"
    for old in "$tmp_root"/r1chat-install.*; do
        [ -d "$old" ] || continue
        pid=$(cat "$old/pid" 2>/dev/null || echo "")
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            rm -rf "$old"
        elif [ -z "$pid" ] && [ -n "$(find "$old" -maxdepth 0 -mmin +10)" ]; then
            rm -rf "$old"
        fi
    done
    WORK_DIR=$(mktemp -d "$tmp_root/r1chat-install.XXXXXX")
    echo "$$" >"$WORK_DIR/pid"
}

# Hold a Termux wake lock during long steps, so that Android does not suspend
# Termux when the screen goes off. termux-wake-lock ships with termux-tools.
# NOTE: Termux has one wake lock, not a count, so releasing it here also
# releases a lock the user took before running the script.
acquire_wake_lock() {
    if [ "$WAKE_LOCKED" = 0 ] && command -v termux-wake-lock >/dev/null 2>&1; then
        if termux-wake-lock >/dev/null 2>&1; then
            WAKE_LOCKED=1
        fi
    fi
}

release_wake_lock() {
    if [ "$WAKE_LOCKED" = 1 ]; then
        termux-wake-unlock >/dev/null 2>&1 || true
        WAKE_LOCKED=0
    fi
}

# Platform checks ------------------------------------------------------------

# iSH (iOS) emulates a 32-bit x86 processor: /proc/ish exists in recent
# versions. Older ones are recognised by an i686 machine whose /proc/cpuinfo
# lists no SSE4 or AVX flags and whose kernel release or CPU vendor contains "ish".
running_in_ish() {
    local proc="${R1CHAT_PROC_DIR:-/proc}"
    local machine release cpuinfo=""
    [ -d "$proc/ish" ] && return 0
    machine=$(uname -m 2>/dev/null || echo "")
    case "$machine" in
        i386 | i486 | i586 | i686) ;;
        *) return 1 ;;
    esac
    if [ -r "$proc/cpuinfo" ]; then
        cpuinfo=$(cat "$proc/cpuinfo")
    fi
    if grep -qiE '(^|[[:space:]])(sse4_1|sse4_2|avx[0-9a-z_]*)([[:space:]]|$)' <<<"$cpuinfo"; then
        return 1
    fi
    release=$(uname -r 2>/dev/null || echo "")
    case "$release" in
        *-ish | *-ish[!a-z]*) return 0 ;;
    esac
    grep -qiE '^vendor_id[[:space:]]*:[[:space:]]*ish[[:space:]]*$' <<<"$cpuinfo"
}

check_not_ish() {
    if running_in_ish; then
        die "This is iSH, where r1chat cannot run a model." \
            "当前环境是 iSH，r1chat 无法在这里运行模型。" \
            "iSH emulates a 32-bit x86 processor without SSE4 or AVX: numpy and llama.cpp stop with an illegal instruction, and a 32-bit process has too little address space to map a 1 GB model. Use r1chat on an Android phone in Termux, or on a computer." \
            "iSH 模拟的是不带 SSE4 和 AVX 的 32 位 x86 处理器：numpy 和 llama.cpp 会因非法指令而退出，而且 32 位进程的地址空间太小，映射不了 1 GB 的模型。请在 Android 手机的 Termux 中或在电脑上使用 r1chat。"
    fi
}

check_termux() {
    local in_termux=0
    case "${PREFIX:-}" in
        */com.termux/*) in_termux=1 ;;
    esac
    if [ -n "${TERMUX_VERSION:-}" ]; then
        in_termux=1
    fi
    if [ "$in_termux" = 0 ] || ! command -v pkg >/dev/null 2>&1; then
        die "This script installs r1chat in Termux on Android, and this is not Termux." \
            "本脚本用于在 Android 的 Termux 中安装 r1chat，而当前环境不是 Termux。" \
            "On other systems, install with pip from the r1chat folder as the README describes: pip install '.[starter]'" \
            "在其他系统上，请按 README 的说明在 r1chat 文件夹中用 pip 安装：pip install '.[starter]'"
    fi
}

# Where r1chat comes from ---------------------------------------------------

SOURCE=""
SOURCE_VERSION=""
LLAMA_REQUIREMENT="llama-cpp-python"

is_r1chat_checkout() {
    [ -f "$1/pyproject.toml" ] && grep -qE '^name *= *"r1chat"' "$1/pyproject.toml"
}

read_checkout() {
    local folder=$1 requirement
    SOURCE=$folder
    SOURCE_VERSION=$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$folder/pyproject.toml" | head -n 1)
    requirement=$(grep -oE '"llama-cpp-python[^"]*"' "$folder/pyproject.toml" | head -n 1 | tr -d '"')
    if [ -n "$requirement" ]; then
        LLAMA_REQUIREMENT=$requirement
    fi
}

find_source() {
    local script_dir file
    script_dir=$(cd "$(dirname "${BASH_SOURCE[0]:-.}")" && pwd)
    if is_r1chat_checkout "$script_dir"; then
        read_checkout "$script_dir"
        return
    fi
    if [ -z "${R1CHAT_SOURCE:-}" ]; then
        die "Cannot tell where to install r1chat from: this script is not inside an r1chat checkout." \
            "无法确定从哪里安装 r1chat：本脚本不在 r1chat 源码目录中。" \
            "Run the install-termux.sh of a cloned or unpacked r1chat, or set R1CHAT_SOURCE to a source folder, a wheel or a pip requirement." \
            "请运行克隆或解压得到的 r1chat 目录里的 install-termux.sh，或把 R1CHAT_SOURCE 设为源码目录、wheel 文件或 pip 依赖说明。"
    fi
    if [ -d "$R1CHAT_SOURCE" ]; then
        if ! is_r1chat_checkout "$R1CHAT_SOURCE"; then
            die "R1CHAT_SOURCE=$R1CHAT_SOURCE is a folder without the pyproject.toml of r1chat." \
                "R1CHAT_SOURCE=$R1CHAT_SOURCE 是一个目录，但其中没有 r1chat 的 pyproject.toml。" \
                "Point it at the top folder of an r1chat checkout." \
                "请把它设为 r1chat 源码的顶层目录。"
        fi
        read_checkout "$(cd "$R1CHAT_SOURCE" && pwd)"
        return
    fi
    SOURCE=$R1CHAT_SOURCE
    if [ -f "$SOURCE" ]; then
        # Wheel and sdist names carry the version: r1chat-0.1.0-py3-none-any.whl, r1chat-0.1.0.tar.gz.
        file=$(basename "$SOURCE")
        SOURCE_VERSION=$(sed -n 's/^r1chat-\([0-9][^-]*\)\(-.*\.whl\|\.tar\.gz\|\.zip\)$/\1/p' <<<"$file")
    else
        SOURCE_VERSION=$(sed -n 's/^r1chat *== *\([^ ,;]*\)$/\1/p' <<<"$SOURCE")
    fi
}

# What is already installed -------------------------------------------------

package_installed() {
    local status
    status=$(dpkg -s "$1" 2>/dev/null) || return 1
    [[ "$status" == *"Status: install ok installed"* ]]
}

MISSING_PACKAGES=()
find_missing_packages() {
    local name
    MISSING_PACKAGES=()
    for name in "${TERMUX_PACKAGES[@]}"; do
        if ! package_installed "$name"; then
            MISSING_PACKAGES+=("$name")
        fi
    done
}

python_available() {
    command -v "$PYTHON" >/dev/null 2>&1
}

# Import llama_cpp the way r1chat does: Termux's Python reports
# sys.platform "android", which llama-cpp-python's loader rejects, so the
# import runs with the platform shown as "linux". Importing loads the shared
# library, which proves the build works, and the version must satisfy r1chat.
llama_ready() {
    python_available || return 1
    "$PYTHON" - "$LLAMA_REQUIREMENT" >/dev/null 2>&1 <<'PY'
import sys
from importlib import metadata

try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement

platform = sys.platform
if platform == "android":
    sys.platform = "linux"
try:
    import llama_cpp  # noqa: F401
finally:
    sys.platform = platform

version = metadata.version("llama_cpp_python")
requirement = Requirement(sys.argv[1])
sys.exit(0 if requirement.specifier.contains(version, prereleases=True) else 1)
PY
}

llama_version() {
    "$PYTHON" -c 'from importlib import metadata; print(metadata.version("llama_cpp_python"))'
}

# Print the version of the installed r1chat, if its command is on PATH.
installed_r1chat_version() {
    python_available || return 1
    command -v r1chat >/dev/null 2>&1 || return 1
    "$PYTHON" -c 'from importlib import metadata; print(metadata.version("r1chat"))' 2>/dev/null
}

r1chat_current() {
    local installed
    [ -n "$SOURCE_VERSION" ] || return 1
    installed=$(installed_r1chat_version) || return 1
    [ "$installed" = "$SOURCE_VERSION" ]
}

model_installed() {
    python_available || return 1
    "$PYTHON" - "$MODEL_ID" >/dev/null 2>&1 <<'PY'
import sys

from r1chat.catalog import load_catalog
from r1chat.store import installed_path

entry = load_catalog().get(sys.argv[1])
variant = entry.tier_variant("normal") if entry else None
sys.exit(0 if variant is not None and installed_path(variant) is not None else 1)
PY
}

free_mb() {
    df -Pk "$HOME" 2>/dev/null | awk 'NR == 2 { print int($4 / 1024) }'
}

# Require `needed` MB free in $HOME, which lives on the same partition as $PREFIX.
check_free_space() {
    local needed=$1 free
    if [ "$needed" -eq 0 ]; then
        say "Nothing is left to install, so no space is needed." "没有需要安装的内容，不需要额外空间。"
        return
    fi
    free=$(free_mb || true)
    if ! [[ "$free" =~ ^[0-9]+$ ]]; then
        say "Could not read the free space of $HOME; going on without checking it." \
            "无法读取 $HOME 的可用空间，将不检查空间继续安装。"
        return
    fi
    if [ "$free" -lt "$needed" ]; then
        die "Not enough free storage: the remaining steps need about $needed MB, and $HOME has $free MB free." \
            "存储空间不足：剩余步骤大约需要 $needed MB，而 $HOME 只有 $free MB 可用。" \
            "Free some space (for example 'pkg clean' and deleting large files), then run this script again." \
            "请先释放一些空间（例如运行 'pkg clean' 并删除大文件），再重新运行本脚本。"
    fi
    say "Storage: about $needed MB needed, $free MB free." \
        "存储空间：大约需要 $needed MB，当前可用 $free MB。"
}

# Steps ----------------------------------------------------------------------

pip_install() {
    TMPDIR="$WORK_DIR" CMAKE_ARGS="$LLAMA_CMAKE_ARGS" \
        "$PYTHON" -m pip install --no-build-isolation "${PIP_EXTRA[@]}" "$@"
}

# pip builds without isolation, the way that works in Termux: the build runs in
# this Python, beside the cmake and ninja from pkg, so each build backend must
# be installed into this Python first.
ensure_build_backend() {
    local module=$1 distribution=$2
    if "$PYTHON" -c "import $module" >/dev/null 2>&1; then
        return
    fi
    say "Installing the build backend $distribution." "正在安装构建后端 $distribution。"
    if ! pip_install "$distribution"; then
        die "pip could not install $distribution." \
            "pip 无法安装 $distribution。" \
            "Check the network (or set R1CHAT_PIP_ARGS to use a PyPI mirror), then run this script again." \
            "请检查网络（或用 R1CHAT_PIP_ARGS 指定 PyPI 镜像），然后重新运行本脚本。"
    fi
}

install_packages() {
    local audit
    begin_step "Termux packages: ${TERMUX_PACKAGES[*]}" \
        "Termux 软件包：${TERMUX_PACKAGES[*]}"

    # A package installation that was interrupted leaves dpkg half done, and
    # apt refuses to install anything until it is finished.
    audit=$(dpkg --audit 2>/dev/null || true)
    if [ -n "$audit" ]; then
        say "Finishing a package installation that was interrupted earlier (dpkg --configure -a)." \
            "正在完成之前被中断的软件包安装（dpkg --configure -a）。"
        if ! dpkg --configure -a; then
            die "dpkg --configure -a failed." "dpkg --configure -a 失败。" \
                "Run 'pkg update && pkg upgrade', then run this script again." \
                "请运行 'pkg update && pkg upgrade'，然后重新运行本脚本。"
        fi
        find_missing_packages
    fi

    if [ ${#MISSING_PACKAGES[@]} -eq 0 ]; then
        say "All of them are installed already." "全部已安装。"
        return
    fi
    say "Installing ${MISSING_PACKAGES[*]} with pkg." "正在用 pkg 安装 ${MISSING_PACKAGES[*]}。"
    if ! pkg install -y "${MISSING_PACKAGES[@]}"; then
        die "pkg could not install ${MISSING_PACKAGES[*]}." \
            "pkg 无法安装 ${MISSING_PACKAGES[*]}。" \
            "Run 'pkg update && pkg upgrade' (or 'termux-change-repo' to pick another mirror), then run this script again." \
            "请运行 'pkg update && pkg upgrade'（或用 'termux-change-repo' 换一个镜像），然后重新运行本脚本。"
    fi
    find_missing_packages
    if [ ${#MISSING_PACKAGES[@]} -ne 0 ]; then
        die "pkg finished, but these packages are still not installed: ${MISSING_PACKAGES[*]}." \
            "pkg 已结束，但这些软件包仍未安装：${MISSING_PACKAGES[*]}。" \
            "Run 'pkg install ${MISSING_PACKAGES[*]}' to see the error, then run this script again." \
            "请运行 'pkg install ${MISSING_PACKAGES[*]}' 查看错误，然后重新运行本脚本。"
    fi
}

report_termux_api() {
    begin_step "Battery readings (Termux:API)" "电池读数（Termux:API）"
    if command -v termux-battery-status >/dev/null 2>&1; then
        say "termux-battery-status is installed; the power governor can read the battery." \
            "已安装 termux-battery-status，功耗调节器可以读取电池状态。"
        return
    fi
    say "Optional: to let r1chat save power by battery level, install the Termux:API app from the same place you got Termux (F-Droid or GitHub), then run 'pkg install termux-api'." \
        "可选：若想让 r1chat 按电量节省功耗，请从安装 Termux 的同一来源（F-Droid 或 GitHub）安装 Termux:API 应用，然后运行 'pkg install termux-api'。"
}

install_llama() {
    local version
    begin_step "llama-cpp-python (the inference engine)" "llama-cpp-python（推理引擎）"
    if llama_ready; then
        version=$(llama_version)
        say "llama-cpp-python $version is installed and loads." \
            "llama-cpp-python $version 已安装且可以加载。"
        return
    fi
    ensure_build_backend scikit_build_core scikit-build-core
    say "Compiling llama.cpp for this phone. This takes many minutes; keep Termux open." \
        "正在为本机编译 llama.cpp，需要较长时间，请保持 Termux 打开。"
    acquire_wake_lock
    if ! pip_install "$LLAMA_REQUIREMENT"; then
        release_wake_lock
        die "Building llama-cpp-python failed." \
            "编译 llama-cpp-python 失败。" \
            "The compiler output above shows why. Check free storage and that 'pkg upgrade' has been run, then run this script again." \
            "上面的编译输出说明了原因。请检查可用空间并确认已运行 'pkg upgrade'，然后重新运行本脚本。"
    fi
    release_wake_lock
    if ! llama_ready; then
        die "llama-cpp-python was installed but does not load." \
            "llama-cpp-python 已安装，但无法加载。" \
            "Run: python -c 'import llama_cpp' to see the error." \
            "请运行 python -c 'import llama_cpp' 查看错误。"
    fi
    version=$(llama_version)
    say "llama-cpp-python $version is installed." "llama-cpp-python $version 安装完成。"
}

install_r1chat() {
    local installed
    begin_step "r1chat from $SOURCE" "r1chat（来源：$SOURCE）"
    if r1chat_current; then
        say "r1chat $SOURCE_VERSION is installed already." "r1chat $SOURCE_VERSION 已安装。"
        return
    fi
    ensure_build_backend hatchling hatchling
    if ! pip_install --upgrade "$SOURCE"; then
        die "pip could not install r1chat from $SOURCE." \
            "pip 无法从 $SOURCE 安装 r1chat。" \
            "The pip output above shows why; fix it and run this script again." \
            "上面的 pip 输出说明了原因；解决后请重新运行本脚本。"
    fi
    hash -r
    if ! installed=$(installed_r1chat_version); then
        die "r1chat was installed, but the r1chat command is not on PATH." \
            "r1chat 已安装，但 PATH 中找不到 r1chat 命令。" \
            "Open a new Termux session, or add the folder of pip's scripts to PATH." \
            "请打开新的 Termux 会话，或把 pip 的脚本目录加入 PATH。"
    fi
    say "r1chat $installed is installed." "r1chat $installed 安装完成。"
}

pull_command() {
    local source=$1
    printf 'r1chat models pull %s' "$MODEL_ID"
    if [ -n "$source" ] && [ "$source" != huggingface ]; then
        printf ' --source %s' "$source"
    fi
}

check_pull_source() {
    case "$1" in
        huggingface | hf-mirror | modelscope) ;;
        *)
            die "R1CHAT_PULL_SOURCE=$1 is not a known source." \
                "R1CHAT_PULL_SOURCE=$1 不是可用的下载源。" \
                "Use huggingface, hf-mirror or modelscope." \
                "请使用 huggingface、hf-mirror 或 modelscope。"
            ;;
    esac
}

ask_pull_source() {
    local answer default=1
    # Chinese-locale users are the ones most likely to find huggingface.co blocked.
    if [ "$UI_LANG" = zh ]; then
        default=3
    fi
    say "Download from:" "下载源："
    say "  1) Hugging Face" "  1) Hugging Face"
    say "  2) hf-mirror.com (a Hugging Face mirror reachable from China)" "  2) hf-mirror.com（可在中国大陆访问的 Hugging Face 镜像）"
    say "  3) ModelScope (China)" "  3) ModelScope 魔搭（中国大陆）"
    read -r -p "$(text "Choose 1, 2 or 3 [$default]: " "请选择 1、2 或 3 [$default]：")" answer || answer=""
    case "${answer:-$default}" in
        2) PULL_SOURCE=hf-mirror ;;
        3) PULL_SOURCE=modelscope ;;
        *) PULL_SOURCE=huggingface ;;
    esac
}

PULL_SOURCE=""
offer_model() {
    local decision answer
    begin_step "The DeepSeek-R1 1.5B model (Q4_K_M, 1.12 GB)" "DeepSeek-R1 1.5B 模型（Q4_K_M，1.12 GB）"
    PULL_SOURCE=${R1CHAT_PULL_SOURCE:-}
    if [ -n "$PULL_SOURCE" ]; then
        check_pull_source "$PULL_SOURCE"
    fi
    if model_installed; then
        say "It is downloaded already." "模型已下载。"
        return
    fi

    decision=$(tr '[:upper:]' '[:lower:]' <<<"${R1CHAT_PULL:-}")
    case "$decision" in
        yes | no) ;;
        "")
            if [ -t 0 ]; then
                read -r -p "$(text "Download it now? [y/N] " "现在下载吗？[y/N] ")" answer || answer=""
                case "$answer" in
                    [yY]*) decision=yes ;;
                    *) decision=no ;;
                esac
                if [ "$decision" = yes ] && [ -z "$PULL_SOURCE" ]; then
                    ask_pull_source
                fi
            else
                decision=no
            fi
            ;;
        *)
            die "R1CHAT_PULL=${R1CHAT_PULL:-} is invalid." "R1CHAT_PULL=${R1CHAT_PULL:-} 无效。" \
                "Use R1CHAT_PULL=yes or R1CHAT_PULL=no." "请使用 R1CHAT_PULL=yes 或 R1CHAT_PULL=no。"
            ;;
    esac

    if [ "$decision" = no ]; then
        say "Not downloading now. To download it later, run one of:" "暂不下载。以后要下载，请运行其中一条："
        say "  $(pull_command huggingface)" "  $(pull_command huggingface)"
        say "  $(pull_command hf-mirror)    # from China" "  $(pull_command hf-mirror)    # 中国大陆"
        say "  $(pull_command modelscope)   # from China" "  $(pull_command modelscope)   # 中国大陆"
        return
    fi

    check_free_space "$MODEL_MB"
    acquire_wake_lock
    local command
    command=$(pull_command "$PULL_SOURCE")
    say "Running: $command" "正在运行：$command"
    local -a pull_args=(models pull "$MODEL_ID")
    if [ -n "$PULL_SOURCE" ] && [ "$PULL_SOURCE" != huggingface ]; then
        pull_args+=(--source "$PULL_SOURCE")
    fi
    if ! r1chat "${pull_args[@]}"; then
        release_wake_lock
        die "Downloading the model failed." "模型下载失败。" \
            "Run '$command' again later; it resumes where it stopped. Everything else is installed." \
            "请稍后再次运行 '$command'，会从中断处继续。其余部分均已安装。"
    fi
    release_wake_lock
}

print_next_steps() {
    CURRENT_STEP=""
    printf '\n'
    say "r1chat is ready. Next:" "r1chat 已就绪。接下来："
    say "  r1chat                        open the chat screen" \
        "  r1chat                        打开聊天界面"
    say "  r1chat -p \"your question\"     answer once and exit" \
        "  r1chat -p \"你的问题\"           回答一次后退出"
    say "  r1chat status                 battery, temperature and the thread plan" \
        "  r1chat status                 电池、温度和线程计划"
    say "  termux-wake-lock              keep long answers running with the screen off" \
        "  termux-wake-lock              熄屏时让长回答继续运行"
}

usage() {
    say "Usage: bash install-termux.sh" "用法：bash install-termux.sh"
    say "Installs r1chat in Termux. Environment: R1CHAT_SOURCE, R1CHAT_PIP_ARGS, R1CHAT_PULL=yes|no, R1CHAT_PULL_SOURCE=huggingface|hf-mirror|modelscope." \
        "在 Termux 中安装 r1chat。环境变量：R1CHAT_SOURCE、R1CHAT_PIP_ARGS、R1CHAT_PULL=yes|no、R1CHAT_PULL_SOURCE=huggingface|hf-mirror|modelscope。"
}

main() {
    case "${1:-}" in
        "") ;;
        -h | --help)
            usage
            return 0
            ;;
        *)
            usage >&2
            ERROR_REPORTED=1
            exit 2
            ;;
    esac

    check_not_ish
    check_termux
    find_source
    if [ -n "${R1CHAT_PIP_ARGS:-}" ]; then
        read -r -a PIP_EXTRA <<<"$R1CHAT_PIP_ARGS"
    fi

    begin_step "Checking storage" "检查存储空间"
    find_missing_packages
    local needed=0
    if [ ${#MISSING_PACKAGES[@]} -ne 0 ]; then
        needed=$((needed + PACKAGES_MB))
    fi
    if ! llama_ready; then
        needed=$((needed + LLAMA_BUILD_MB))
    fi
    if ! r1chat_current; then
        needed=$((needed + R1CHAT_MB))
    fi
    check_free_space "$needed"

    install_packages
    report_termux_api
    make_work_dir
    install_llama
    install_r1chat
    # Deleted before the model download, which needs the space.
    remove_work_dir
    offer_model
    print_next_steps
}

main "$@"
