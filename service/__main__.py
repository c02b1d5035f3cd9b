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
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Validate the settings, then run uvicorn until interrupted."""
    args = parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
