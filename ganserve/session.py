"""ONNX Runtime's CPU session options as ganserve runs every generator.

The service (``service.registry``) and the peer services of the bench
(``bench.peers.common``) both build their sessions with these options, so they run
the same kernels on the same threads. Only this module needs onnxruntime.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import onnxruntime as ort  # type: ignore[import-untyped]

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota of this process's cgroup in cores (a container's CPU limit, such as
    Kubernetes' ``limits.cpu``), or None when there is none or it cannot be read.

    cgroup v2: ``cpu.max`` ("QUOTA PERIOD", or "max PERIOD" for none); cgroup v1:
    ``cpu/cpu.cfs_quota_us`` (-1 for none) over ``cpu/cpu.cfs_period_us``.
    """
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        if quota == "max":
            return None
        return int(quota) / int(period) if int(period) > 0 else None
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def usable_cores(cgroup_root: Path = CGROUP_ROOT) -> int:
    """The CPU cores this process may run on: its affinity, capped by its cgroup's CPU
    quota rounded up (a pod limited to 2 CPUs on a 64-core node gets 2, not 64)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit(cgroup_root)
    if limit is not None:
        cores = min(cores, max(1, math.ceil(limit)))
    return cores


def cpu_session_options(intra_op_threads: int | None = None) -> ort.SessionOptions:
    """ORT options: ``intra_op_threads`` (default: the usable cores, at most 8) intra-op
    threads, one inter-op thread, no spinning."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads or min(usable_cores(), 8)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle pool threads sleep instead of spinning: the batcher leaves gaps between runs,
    # and spinning threads would take those cores from request handling and PNG encoding.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options
