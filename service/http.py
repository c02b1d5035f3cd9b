"""uvicorn's HTTP protocol, sending each response's head and body in one write.

uvicorn writes a response's status line and headers as soon as the app sends
``http.response.start``, and its body as a second write: two ``send`` system
calls, and on a kept-alive connection two wake-ups of the client, for a response
that is complete a moment later. ``CoalescingTransport`` holds the writes made
during one turn of the event loop and passes them on together at the end of that
turn (before a close or an end of file, which flush them first). Nothing waits
longer than the turn it was written in; a streamed body still goes out chunk by
chunk, one turn each.

``python -m service`` runs uvicorn with ``CoalescingHttpToolsProtocol``: uvicorn's
httptools protocol over this transport (``GANSERVE_COALESCE_WRITES=false``: plain
uvicorn, for comparison).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """A transport wrapper whose writes of one event-loop turn go out as one ``writelines``.

    Everything but writing and closing is the wrapped transport's.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        """Pass the writes held so far on to the transport (once per turn, or before closing)."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if self._transport.is_closing():
            return
        if len(pending) == 1:
            self._transport.write(pending[0])
        else:
            self._transport.writelines(pending)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's ``HttpToolsProtocol`` over a ``CoalescingTransport``.

    A class of this module, so that uvicorn's worker processes import it by name.
    """

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike
        wrapped: Any = CoalescingTransport(transport, self.loop)  # type: ignore[arg-type]
        super().connection_made(wrapped)
