"""iSH detection at r1chat's start, against prepared proc folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from r1chat import locale
from r1chat.errors import R1ChatError, UnsupportedPlatform
from r1chat.platform_check import check_platform, is_ish

ISH_CPUINFO = "processor\t: 0\nvendor_id\t: iSH\n\nprocessor\t: 1\nvendor_id\t: iSH\n\n"
INTEL_CPUINFO = (
    "processor\t: 0\nvendor_id\t: GenuineIntel\n"
    "flags\t\t: fpu vme de pse tsc msr pae sse sse2 ssse3 sse4_1 sse4_2 popcnt avx avx2\n"
)
OLD_PENTIUM_CPUINFO = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme de pse tsc sse sse2\n"


def make_proc(tmp_path: Path, cpuinfo: str | None = None, ish_folder: bool = False) -> Path:
    proc = tmp_path / "proc"
    proc.mkdir()
    if cpuinfo is not None:
        (proc / "cpuinfo").write_text(cpuinfo)
    if ish_folder:
        (proc / "ish").mkdir()
    return proc


def test_proc_ish_folder_means_ish(tmp_path):
    proc = make_proc(tmp_path, ish_folder=True)
    assert is_ish(proc, machine="i686", release="4.20.69-ish")


def test_proc_ish_folder_wins_over_machine(tmp_path):
    proc = make_proc(tmp_path, ish_folder=True)
    assert is_ish(proc, machine="x86_64", release="6.1.0")


@pytest.mark.parametrize(
    ("release", "cpuinfo"),
    [
        ("4.20.69-ish", ISH_CPUINFO),
        ("3.2.0-ish", None),
        ("4.20.69-ish SUPER", ""),
        ("6.1.0", ISH_CPUINFO),
    ],
    ids=["release-and-vendor", "release-no-cpuinfo", "release-suffix", "vendor-only"],
)
def test_old_ish_recognised_by_markers(tmp_path, release, cpuinfo):
    proc = make_proc(tmp_path, cpuinfo)
    assert is_ish(proc, machine="i686", release=release)


@pytest.mark.parametrize(
    ("machine", "release", "cpuinfo"),
    [
        ("aarch64", "5.10.198-android12-9", ""),
        ("x86_64", "4.20.69-ish", ISH_CPUINFO),
        ("i686", "4.20.69-ish", INTEL_CPUINFO),
        ("i686", "6.1.0-686-pae", OLD_PENTIUM_CPUINFO),
        ("i686", "5.10.0-ishikawa", OLD_PENTIUM_CPUINFO),
    ],
    ids=["android", "64-bit", "has-sse4-avx", "old-pentium", "ish-inside-word"],
)
def test_other_systems_are_not_ish(tmp_path, machine, release, cpuinfo):
    proc = make_proc(tmp_path, cpuinfo)
    assert not is_ish(proc, machine=machine, release=release)


def test_this_machine_passes_check():
    check_platform()


def test_check_raises_with_reason_and_hint(tmp_path):
    proc = make_proc(tmp_path, ish_folder=True)
    with pytest.raises(UnsupportedPlatform) as caught:
        check_platform(proc)
    error = caught.value
    assert isinstance(error, R1ChatError)
    assert error.exit_code == 1
    assert str(error).startswith("r1chat cannot run a model on iSH:")
    assert "32-bit x86 processor without SSE4 or AVX" in str(error)
    assert "address space" in str(error)
    assert "Termux" in error.hint


def test_check_message_in_chinese(tmp_path):
    proc = make_proc(tmp_path, ish_folder=True)
    locale.set_language("zh_CN")
    with pytest.raises(UnsupportedPlatform) as caught:
        check_platform(proc)
    assert str(caught.value).startswith("r1chat 无法在 iSH 上运行模型：")
    assert "32 位 x86 处理器" in str(caught.value)
    assert "Termux" in caught.value.hint
    assert "请在" in caught.value.hint


def test_check_passes_on_android(tmp_path):
    proc = make_proc(tmp_path, "processor\t: 0\nFeatures\t: fp asimd\n")
    check_platform(proc, machine="aarch64", release="5.10.198-android12-9")
