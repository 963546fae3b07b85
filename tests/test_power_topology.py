"""CPU topology from fake cpufreq trees and the single-class fallback."""

from __future__ import annotations

import os

import pytest

from r1chat.power.topology import CoreClass, Topology, class_names, read_topology


def make_cpufreq_tree(root, frequencies: dict[int, int | None]) -> None:
    for cpu, freq in frequencies.items():
        folder = root / f"cpu{cpu}"
        folder.mkdir(parents=True)
        if freq is not None:
            (folder / "cpufreq").mkdir()
            (folder / "cpufreq" / "cpuinfo_max_freq").write_text(f"{freq}\n")
    # Entries that look like cpus but are not cores.
    (root / "cpufreq").mkdir()
    (root / "cpuidle").mkdir()


def test_three_classes_by_max_frequency(tmp_path):
    make_cpufreq_tree(
        tmp_path,
        {0: 2016000, 1: 2016000, 2: 2016000, 3: 2803200, 4: 2803200, 5: 2803200, 6: 2803200,
         7: 3187200},
    )

    topology = read_topology(tmp_path, affinity=range(8))

    assert topology.source == "cpufreq"
    assert [core_class.name for core_class in topology.classes] == [
        "prime",
        "performance",
        "efficiency",
    ]
    assert topology.classes[0].cpus == (7,)
    assert topology.classes[0].max_freq_khz == 3187200
    assert topology.performance_cpus == (7, 3, 4, 5, 6)
    assert topology.cpus == (7, 3, 4, 5, 6, 0, 1, 2)
    assert topology.class_of(1).name == "efficiency"


def test_two_classes(tmp_path):
    make_cpufreq_tree(tmp_path, {0: 1800000, 1: 1800000, 2: 2400000, 3: 2400000})

    topology = read_topology(tmp_path, affinity=range(4))

    assert [core_class.name for core_class in topology.classes] == ["performance", "efficiency"]
    assert topology.performance_cpus == (2, 3)


def test_one_frequency_means_all_performance(tmp_path):
    make_cpufreq_tree(tmp_path, {0: 3000000, 1: 3000000})

    topology = read_topology(tmp_path, affinity=[0, 1])

    assert topology.performance_cpus == (0, 1)
    assert topology.classes[0].name == "performance"


def test_affinity_limits_cores(tmp_path):
    make_cpufreq_tree(tmp_path, {0: 1800000, 1: 1800000, 2: 2400000, 3: 2400000})

    topology = read_topology(tmp_path, affinity=[0, 1, 3])

    assert topology.cpus == (3, 0, 1)
    assert topology.performance_cpus == (3,)


def test_cores_without_cpufreq_are_left_out(tmp_path):
    make_cpufreq_tree(tmp_path, {0: 1800000, 1: None, 2: 2400000})

    topology = read_topology(tmp_path, affinity=range(3))

    assert topology.cpus == (2, 0)


def test_fallback_uses_affinity(tmp_path):
    topology = read_topology(tmp_path / "absent", affinity=[0, 2, 5])

    assert topology.source == "affinity"
    assert topology.classes == (CoreClass("performance", None, (0, 2, 5)),)
    assert topology.performance_cpus == (0, 2, 5)


def test_fallback_on_this_machine(tmp_path):
    topology = read_topology(tmp_path)

    assert len(topology.cpus) >= 1
    if hasattr(os, "sched_getaffinity"):
        assert set(topology.cpus) == os.sched_getaffinity(0)


def test_to_json_shape():
    topology = Topology(
        classes=(CoreClass("performance", 2400000, (2, 3)), CoreClass("efficiency", 1800000, (0, 1))),
        source="cpufreq",
    )

    assert topology.to_json() == {
        "count": 4,
        "performance": [2, 3],
        "source": "cpufreq",
        "classes": [
            {"name": "performance", "max_freq_mhz": 2400, "cpus": [2, 3]},
            {"name": "efficiency", "max_freq_mhz": 1800, "cpus": [0, 1]},
        ],
    }


def test_class_of_unknown_core_raises():
    topology = Topology(classes=(CoreClass("performance", None, (0,)),), source="affinity")

    with pytest.raises(KeyError):
        topology.class_of(5)


@pytest.mark.parametrize(
    ("count", "names"),
    [
        (1, ["performance"]),
        (2, ["performance", "efficiency"]),
        (3, ["prime", "performance", "efficiency"]),
        (4, ["prime", "performance", "performance", "efficiency"]),
    ],
)
def test_class_names(count, names):
    assert class_names(count) == names
