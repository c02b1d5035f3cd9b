"""``python -m service [--host H] [--port P] [--models-dir D] ...``: serve with uvicorn.

Options override the ``GANSERVE_*`` settings; uvicorn builds the app with the
``service.app:create_app`` factory, so ``--workers`` processes each load the models.
"""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn
from pydantic import ValidationError

from ganserve.session import usable_cores
from service.config import Settings
from service.http import CoalescingHttpToolsProtocol


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m service", description=__doc__.splitlines()[0])
    p.add_argument("--host", help="address to bind (GANSERVE_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to bind (GANSERVE_PORT, default 8000)")
    p.add_argument("--models-dir", help="directory of models (GANSERVE_MODELS_DIR)")
    p.add_argument("--default-model", help="model for requests that name none")
    p.add_argument("--provider", choices=["auto", "cuda", "cpu"], help="ONNX Runtime provider")
    p.add_argument(
        "--log-level", choices=["critical", "error", "warning", "info", "debug"], help="log level"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="uvicorn worker processes (default 1); unless GANSERVE_INTRA_OP_THREADS is set, "
        "they share the usable cores: each session gets cores / workers intra-op threads",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Validate the settings, then run uvicorn until interrupted."""
    args = parse_args(argv)
    if args.workers < 1:
        print(f"error: --workers must be at least 1, not {args.workers}", file=sys.stderr)
        return 2
    overrides = {
        "host": args.host,
        "port": args.port,
        "models_dir": args.models_dir,
        "default_model": args.default_model,
        "provider": args.provider,
        "log_level": args.log_level,
    }
    for name, value in overrides.items():
        if value is not None:
            os.environ[f"GANSERVE_{name.upper()}"] = str(value)
    try:
        settings = Settings()
    except ValidationError as exc:
        errors = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"error: invalid settings: {errors}", file=sys.stderr)
        return 2
    if not settings.models_dir.is_dir():
        print(f"error: models directory {settings.models_dir} does not exist", file=sys.stderr)
        return 2
    if args.workers > 1 and settings.intra_op_threads == 0:
        # Every worker process runs its own sessions: sharing the cores between them
        # keeps their intra-op threads from contending for the same cores.
        cores = usable_cores()
        threads = worker_threads(cores, args.workers)
        os.environ["GANSERVE_INTRA_OP_THREADS"] = str(threads)
        print(
            f"{args.workers} worker processes on {cores} cores: {threads} ONNX Runtime "
            "intra-op thread(s) each (set GANSERVE_INTRA_OP_THREADS to choose)",
            file=sys.stderr,
        )
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.access_log,
        workers=args.workers,
        timeout_keep_alive=settings.keepalive_timeout_s,
        http=CoalescingHttpToolsProtocol if settings.coalesce_writes else "auto",
    )
    return 0


def worker_threads(cores: int, workers: int) -> int:
    """Intra-op threads per session when ``workers`` processes share ``cores`` (at most 8)."""
    return max(1, min(cores // workers, 8))


if __name__ == "__main__":
    sys.exit(main())
