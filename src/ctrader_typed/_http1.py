"""One HTTP/1.1 request per connection, parsed by h11 within size and time limits.

The loopback OAuth callback server and the simulator's OAuth endpoint both serve exactly one
request per connection and then close it. h11 does the parsing (and refuses whatever is not
HTTP/1.1); this module bounds what a client can make the server hold and for how long:

* the request head (request line and headers) may not exceed ``max_head`` bytes: no more than
  that is ever read before h11 has the whole head, so a longer head is answered 431;
* the body may not exceed ``max_body`` bytes, whether framed by ``Content-Length`` or chunked:
  a larger declared length is answered 413 at once, a chunked body is cut off at the limit;
* the whole request must arrive within ``timeout`` seconds, or the connection is closed
  without an answer.

A malformed request is answered 400. h11's description of what was wrong is never passed on:
it can quote the request, and the request can hold an authorization code.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import h11

__all__ = ["HttpExchange", "HttpRefusal", "HttpRequest"]

_READ_SIZE: Final = 16 * 1024
_LINGER_SECONDS: Final = 1.0
"""After an early answer, how long unread request bytes are drained before closing."""
_LINGER_BYTES: Final = 256 * 1024
"""... and at most how many: enough for a refused body, not for a flood."""


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A request h11 read whole: head and body."""

    method: str
    target: str
    """As sent: origin form (``/path?query``) or absolute form (``http://host/path?query``)."""
    headers: tuple[tuple[str, str], ...]
    """Names lower-cased, in the order sent."""
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)


@dataclass(frozen=True, slots=True)
class HttpRefusal:
    """A request that was not read whole: the status to answer and a fixed reason (no request text)."""

    status: int
    reason: str


class HttpExchange:
    """One connection: read one request, write one answer, close.

    Args:
        reader: The connection's stream reader.
        writer: The connection's stream writer.
        max_head: Most bytes the request line and headers may take.
        max_body: Most bytes the request body may take.
    """

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, max_head: int, max_body: int
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._max_head = max_head
        self._max_body = max_body
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=max_head)
        self._method = b""
        self._complete = False
        self._answered = False

    async def receive(self, timeout: float) -> HttpRequest | HttpRefusal | None:
        """The request, a refusal to answer, or ``None`` when the client sent nothing in time or left."""
        try:
            async with asyncio.timeout(timeout):
                return await self._receive()
        except (TimeoutError, ConnectionError):
            return None

    async def _receive(self) -> HttpRequest | HttpRefusal | None:
        head_bytes = 0
        request: h11.Request | None = None
        body = bytearray()
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError:
                return HttpRefusal(400, "malformed request")
            if event is h11.NEED_DATA:
                if request is None:
                    room = self._max_head - head_bytes
                    if room <= 0:
                        return HttpRefusal(431, "request head too large")
                    data = await self._reader.read(min(room, _READ_SIZE))
                    head_bytes += len(data)
                else:
                    data = await self._reader.read(_READ_SIZE)
                self._h11.receive_data(data)  # b"" tells h11 the client closed its side
            elif isinstance(event, h11.Request):
                request = event
                self._method = event.method
                refusal = self._check_length(event)
                if refusal is not None:
                    return refusal
                if self._h11.they_are_waiting_for_100_continue:
                    self._writer.write(self._h11.send(h11.InformationalResponse(status_code=100, headers=[])))
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > self._max_body:
                    return HttpRefusal(413, "request body too large")
            elif isinstance(event, h11.EndOfMessage):
                assert request is not None
                self._complete = True
                return HttpRequest(
                    method=request.method.decode("ascii", "replace"),
                    target=request.target.decode("ascii", "replace"),
                    headers=tuple(
                        (name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers
                    ),
                    body=bytes(body),
                )
            else:  # ConnectionClosed before a byte of a request (PAUSED cannot come before the end)
                return None

    def _check_length(self, request: h11.Request) -> HttpRefusal | None:
        for name, value in request.headers:
            # h11 has checked the value is a short run of digits
            if name == b"content-length" and int(value) > self._max_body:
                return HttpRefusal(413, "request body too large")
        return None

    async def respond(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        """Write the answer (``Content-Length`` and ``Connection: close`` are added here)."""
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Error"
        fields = [*headers, ("Content-Length", str(len(body))), ("Connection", "close")]
        try:
            data = self._h11.send(h11.Response(status_code=status, headers=fields, reason=reason))
            if body and self._method != b"HEAD":  # an answer to HEAD has a length but no body
                data += self._h11.send(h11.Data(data=body))
            data += self._h11.send(h11.EndOfMessage())
        except h11.LocalProtocolError:  # pragma: no cover - every path above answers at most once
            return
        self._answered = True
        self._writer.write(data)
        with contextlib.suppress(ConnectionError):
            await self._writer.drain()

    async def close(self) -> None:
        """Close the connection; after an early answer, first drain (briefly) what the client still sends.

        Closing a socket with unread bytes makes the kernel reset the connection, and the reset
        can destroy the answer before the client reads it; a short, bounded drain avoids that.
        """
        try:
            if (
                self._answered
                and not self._complete
                and self._writer.can_write_eof()
                and not self._writer.is_closing()
            ):
                with contextlib.suppress(OSError):  # ConnectionError, or TimeoutError when time is up
                    self._writer.write_eof()
                    async with asyncio.timeout(_LINGER_SECONDS):
                        drained = 0
                        while drained < _LINGER_BYTES:
                            chunk = await self._reader.read(_READ_SIZE)
                            if not chunk:
                                break
                            drained += len(chunk)
        finally:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
