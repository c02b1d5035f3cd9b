"""Helpers for the SDK tests: hand-made PNGs, a scripted transport, one facade over both clients."""

from __future__ import annotations

import asyncio
import json
import struct
import zlib
from collections.abc import Callable
from typing import Any

import httpx
from ganserve_client import AsyncClient, Client

Reply = httpx.Response | Exception


def make_png(width: int = 3, height: int = 2, value: int = 0) -> bytes:
    """A valid grayscale PNG, built by hand so the tests need no image library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + bytes([value] * width) for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def png_response(
    png: bytes | None = None,
    model: str = "dcgan-fashion",
    seed: int = 3,
    rows: int = 2,
    cols: int = 4,
) -> httpx.Response:
    return httpx.Response(
        200,
        content=png if png is not None else make_png(),
        headers={
            "content-type": "image/png",
            "X-Model": model,
            "X-Seed": str(seed),
            "X-Grid-Rows": str(rows),
            "X-Grid-Columns": str(cols),
        },
    )


def error_response(status: int, detail: Any = "nope", **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"detail": detail}, headers=headers)


class Script:
    """A transport handler that answers from a list of replies and records every request.

    A reply is an ``httpx.Response`` or an exception to raise; the last one repeats.
    """

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies) or [png_response()]
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
        if isinstance(reply, Exception):
            raise reply
        return reply

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


class Api:
    """``Client`` or ``AsyncClient`` behind one synchronous face, so tests run on both.

    ``sleeps`` records every wait between retries instead of sleeping.
    """

    def __init__(self, kind: str, script: Script, **kwargs: Any) -> None:
        self.kind = kind
        self.script = script
        self.sleeps: list[float] = []
        transport = httpx.MockTransport(script)
        kwargs.setdefault("base_url", "http://ganserve.test")
        if kind == "sync":
            self.client: Client | AsyncClient = Client(
                transport=transport, sleep=self.sleeps.append, **kwargs
            )
        else:

            async def sleep(seconds: float) -> None:
                self.sleeps.append(seconds)

            self.client = AsyncClient(transport=transport, sleep=sleep, **kwargs)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.client, name)
        if self.kind == "sync":
            return method  # type: ignore[no-any-return]
        return lambda *args, **kwargs: asyncio.run(method(*args, **kwargs))

    def close(self) -> None:
        if isinstance(self.client, Client):
            self.client.close()
        else:
            asyncio.run(self.client.close())
