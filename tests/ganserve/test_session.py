"""ganserve.session: how many cores ONNX Runtime's sessions may use, containers included."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ganserve.session import cgroup_cpu_limit, cpu_session_options, usable_cores


def cgroup_v2(root: Path, cpu_max: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cpu.max").write_text(cpu_max + "\n")
    return root


def cgroup_v1(root: Path, quota_us: int, period_us: int = 100000) -> Path:
    (root / "cpu").mkdir(parents=True, exist_ok=True)
    (root / "cpu" / "cpu.cfs_quota_us").write_text(f"{quota_us}\n")
    (root / "cpu" / "cpu.cfs_period_us").write_text(f"{period_us}\n")
    return root


@pytest.mark.parametrize(
    ("cpu_max", "limit"), [("200000 100000", 2.0), ("150000 100000", 1.5), ("max 100000", None)]
)
def test_a_cgroup_v2_quota_is_read_in_cores(tmp_path: Path, cpu_max: str, limit) -> None:
    assert cgroup_cpu_limit(cgroup_v2(tmp_path, cpu_max)) == limit


@pytest.mark.parametrize(("quota_us", "limit"), [(400000, 4.0), (50000, 0.5), (-1, None)])
def test_a_cgroup_v1_quota_is_read_in_cores(tmp_path: Path, quota_us: int, limit) -> None:
    assert cgroup_cpu_limit(cgroup_v1(tmp_path, quota_us)) == limit


def test_no_or_unreadable_cgroup_files_mean_no_limit(tmp_path: Path) -> None:
    assert cgroup_cpu_limit(tmp_path) is None
    assert cgroup_cpu_limit(cgroup_v2(tmp_path / "bad", "lots 100000")) is None


def test_the_usable_cores_are_the_affinity_capped_by_the_quota(tmp_path: Path) -> None:
    affinity = len(os.sched_getaffinity(0))
    assert usable_cores(tmp_path) == affinity  # no quota
    assert usable_cores(cgroup_v2(tmp_path / "half", "50000 100000")) == 1  # at least one
    assert usable_cores(cgroup_v1(tmp_path / "v1", 150000)) == min(affinity, 2)  # rounded up
    assert usable_cores(cgroup_v2(tmp_path / "big", "6400000 100000")) == affinity


def test_session_options_default_to_the_usable_cores_at_most_8() -> None:
    assert cpu_session_options().intra_op_num_threads == min(usable_cores(), 8)
    assert cpu_session_options(3).intra_op_num_threads == 3
