"""A tiny local HTTP app that answers, fails and stalls on purpose, for the load generator."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.loadgen import PNG_SIGNATURE

PNG = PNG_SIGNATURE + b"tiny"


def failure_of(seed: int) -> str | None:
    """What /generate does with a seed: every tenth seed of each kind fails that way."""
    return {3: "500", 5: "503", 7: "503+retry-after", 9: "bad-body"}.get(seed % 10)


@dataclass
class LocalServer:
    url: str
    hits: Counter[str] = field(default_factory=Counter)


def make_app(hits: Counter[str]) -> Starlette:
    async def generate(request: Request) -> Response:
        seed = int((await request.json()).get("seed", 0))
        hits["generate"] += 1
        kind = failure_of(seed)
        if kind == "500":
            return Response("boom", 500)
        if kind == "503":
            return Response("busy", 503)
        if kind == "503+retry-after":
            return Response("busy", 503, headers={"Retry-After": "1"})
        if kind == "bad-body":
            return Response(b"not a png", 200)
        return Response(PNG, media_type="image/png")

    async def slow(request: Request) -> Response:
        """Known latencies: seeds 0, 10, 20, ... take 300 ms, the others 20 ms."""
        seed = int((await request.json()).get("seed", 0))
        hits["slow"] += 1
        await asyncio.sleep(0.3 if seed % 10 == 0 else 0.02)
        return Response(PNG, media_type="image/png")

    async def steady(request: Request) -> Response:
        hits["steady"] += 1
        await asyncio.sleep(0.01)
        return Response(PNG, media_type="image/png")

    async def hang(request: Request) -> Response:
        hits["hang"] += 1
        await asyncio.sleep(5)
        return Response(PNG, media_type="image/png")

    return Starlette(
        routes=[
            Route("/generate", generate, methods=["POST"]),
            Route("/slow", slow, methods=["POST"]),
            Route("/steady", steady, methods=["POST"]),
            Route("/hang", hang, methods=["POST"]),
        ]
    )
