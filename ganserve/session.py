"""ONNX Runtime's CPU session options as ganserve runs every generator.

The service (``service.registry``) and the peer services of the bench
(``bench.peers.common``) both build their sessions with these options, so they run
the same kernels on the same threads. Only this module needs onnxruntime.
"""

from __future__ import annotations

import os

import onnxruntime as ort  # type: ignore[import-untyped]


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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
