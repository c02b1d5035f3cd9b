"""CoalescingTransport: the writes of one event-loop turn reach the socket as one, in order.

Each test runs a real loopback TCP connection (asyncio's own transports, and
uvloop's where it is installed) and counts the calls that reach the real
transport.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from service.http import CoalescingHttpToolsProtocol, CoalescingTransport

LOOPS = ["asyncio"]
try:
    import uvloop

    LOOPS.append("uvloop")
except ImportError:  # pragma: no cover - uvicorn[standard] brings it
    pass


def run(loop_kind: str, scenario: Callable[[Any, Any], Awaitable[bytes]]) -> tuple[bytes, list]:
    """Run ``scenario(wrapped, calls)`` on a fresh connection; what the client read, and the
    write calls that reached the real transport."""

    async def main() -> tuple[bytes, list]:
        loop = asyncio.get_running_loop()
        accepted: asyncio.Future[asyncio.Transport] = loop.create_future()

        class Server(asyncio.Protocol):
            def connection_made(self, transport: Any) -> None:
                accepted.set_result(transport)

        server = await loop.create_server(Server, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        transport = await accepted
        calls: list = []
        real_write, real_writelines = transport.write, transport.writelines

        class Spy:  # the real transport, its writes recorded
            def __getattr__(self, name: str) -> Any:
                return getattr(transport, name)

            def write(self, data: bytes) -> None:
                calls.append(("write", bytes(data)))
                real_write(data)

            def writelines(self, lines: Any) -> None:
                lines = [bytes(x) for x in lines]
                calls.append(("writelines", lines))
                real_writelines(lines)

        wrapped = CoalescingTransport(Spy(), loop)  # type: ignore[arg-type]
        await scenario(wrapped, calls)
        data = await asyncio.wait_for(reader.read(), 5)  # until the server side closes
        writer.close()
        server.close()
        return data, calls

    if loop_kind == "uvloop":
        return uvloop.run(main())
    return asyncio.run(main())


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_writes_of_one_turn_go_out_as_one(loop_kind: str) -> None:
    async def scenario(t: CoalescingTransport, calls: list) -> bytes:
        t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n")
        t.write(b"")
        t.write(b"body")
        assert calls == []  # held until the turn ends
        await asyncio.sleep(0)
        assert calls == [("writelines", [b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n", b"body"])]
        t.write(b"|next")
        await asyncio.sleep(0)
        t.close()
        return b""

    data, calls = run(loop_kind, scenario)
    assert data == b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nbody|next"
    assert calls[1] == ("write", b"|next")


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_close_and_eof_send_what_is_held_first(loop_kind: str) -> None:
    async def scenario(t: CoalescingTransport, calls: list) -> bytes:
        t.write(b"head|")
        t.writelines([b"a", b"b"])
        assert t.get_write_buffer_size() == len(b"head|ab")
        t.write_eof()
        assert calls == [("writelines", [b"head|", b"a", b"b"])]
        t.close()
        await asyncio.sleep(0)  # the scheduled flush finds nothing left
        assert len(calls) == 1
        return b""

    data, _ = run(loop_kind, scenario)
    assert data == b"head|ab"


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_abort_drops_what_is_held(loop_kind: str) -> None:
    async def scenario(t: CoalescingTransport, calls: list) -> bytes:
        t.write(b"never sent")
        t.abort()
        await asyncio.sleep(0)
        assert calls == []
        return b""

    data, _ = run(loop_kind, scenario)
    assert data == b""


def test_the_protocol_is_uvicorns_httptools_one() -> None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    assert issubclass(CoalescingHttpToolsProtocol, HttpToolsProtocol)
    # uvicorn's worker processes find it by name
    assert CoalescingHttpToolsProtocol.__module__ == "service.http"
