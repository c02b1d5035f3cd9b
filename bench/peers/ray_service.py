"""ganserve's /generate on Ray Serve: ``@serve.batch`` as Ray's documentation shows it.

    PYTHONPATH=. bench/.venvs/ray/bin/python -m bench.peers.ray_service \
        --model-dir models/NAME --port 8000 [--replicas 1]

One deployment answers ``POST /generate`` (JSON body ``model``, ``n``, ``seed``,
``columns``, ``padding``) in ``__call__``: it draws the latents, awaits a
``@serve.batch`` method that runs the ONNX session on the latents of many
concurrent requests at once (at most 64 latents, ganserve's ``GANSERVE_MAX_BATCH``,
counted by ``batch_size_fn``; at most 2 ms of waiting, ganserve's
``GANSERVE_MAX_WAIT_MS``), then encodes the PNG grid. As Ray's batching guide
advises, ``max_ongoing_requests`` is raised to at least the batch size (its
default, 5, would cap every batch at 5 requests). ``GET /healthz`` answers once a
replica has loaded the model. Ray's dashboard is off (serving does not need it), and so
are its access logs (ganserve writes none by default either).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

import numpy as np
import ray
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from bench.peers.common import MAX_BATCH, MAX_WAIT_S, BadRequest, Generator, png_grid, split

MAX_ONGOING_REQUESTS = 128
NO_ACCESS_LOG = {"enable_access_log": False}  # as ganserve by default: no line per request


def _latents_in(batch: list[np.ndarray]) -> int:
    return sum(len(z) for z in batch)


@serve.deployment(max_ongoing_requests=MAX_ONGOING_REQUESTS, logging_config=NO_ACCESS_LOG)
class Images:
    """ganserve's POST /generate: a PNG grid of n images from one seed."""

    def __init__(self, model_dir: str) -> None:
        self.generator = Generator(model_dir)

    @serve.batch(
        max_batch_size=MAX_BATCH, batch_wait_timeout_s=MAX_WAIT_S, batch_size_fn=_latents_in
    )
    async def run(self, batch: list[np.ndarray]) -> list[np.ndarray]:
        """One session run over the latents of several requests."""
        images = self.generator.run(np.concatenate(batch))
        return split(images, [len(z) for z in batch])

    async def __call__(self, request: Request) -> Response:
        path = request.url.path
        if path == "/healthz" and request.method == "GET":
            return PlainTextResponse("ok")
        if path != "/generate" or request.method != "POST":
            return JSONResponse({"detail": "not found"}, 404)
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise BadRequest("the body must be a JSON object")
            req = self.generator.request(body)
        except (BadRequest, json.JSONDecodeError, UnicodeDecodeError) as exc:
            return JSONResponse({"detail": str(exc)}, 422)
        images = await self.run(self.generator.latents(req))
        return Response(png_grid(images, req), media_type="image/png")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.peers.ray_service", description=__doc__)
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--replicas", type=int, default=1)
    args = p.parse_args(argv)
    # SIGTERM ends the driver through sys.exit, so Ray's atexit hook stops its processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ray.init(include_dashboard=False, log_to_driver=False, logging_level="warning")
    serve.start(http_options={"host": args.host, "port": args.port}, logging_config=NO_ACCESS_LOG)
    app = Images.options(num_replicas=args.replicas).bind(str(args.model_dir.resolve()))
    serve.run(app, name="ganserve-peer", route_prefix="/", blocking=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
