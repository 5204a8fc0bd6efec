"""Protobuf over WebSocket: the client's second kind of link (``AsyncClient(transport="websocket")``).

Spotware's protobuf port (5035) also accepts a WebSocket upgrade at ``wss://{host}:{port}``
(no path). Each binary WebSocket message then carries one serialized ``ProtoMessage`` with
no length prefix. ``WebSocketLink`` is a ``_transport.Link`` like ``TLSLink``: same
callbacks, same errors, same heartbeats and dead-link detection, so nothing above the link
layer knows which transport it runs on.

The WebSocket protocol itself (opening handshake, masking, fragmented messages, ping/pong,
the closing handshake, the message size limit) is the ``websockets`` library's sans-I/O
``ClientProtocol`` (the optional ``websocket`` extra); this module moves bytes between it
and a TLS socket (certificate and host name verified, SNI sent, as ``open_link`` does),
which keeps ``send`` synchronous and frame-whole: a cancelled caller never leaves half a
message on the wire.

Each complete binary message goes, as one length-prefixed frame, through the same sans-I/O
``FrameDecoder`` as the TLS stream, so an envelope that does not parse or names no payload
type is refused in exactly the same words. A message larger than ``max_frame_size`` is
refused by the WebSocket layer before it is buffered (``RemoteProtocolError`` naming
``max_frame_size``); a text message (JSON: the port 5036 encoding, not this one), a broken
WebSocket frame or a socket that ends inside a frame is a ``RemoteProtocolError`` too. The
server's close frame, or the end of the socket between messages, is a
``ConnectionClosedError``. Compression is not offered. The library's own debug log, which
would show message bytes (secrets included), is never enabled.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import struct
from typing import Any, Final, TypeAlias

from ctrader_typed._framing import (
    DEFAULT_MAX_FRAME_SIZE,
    HEADER_SIZE,
    FrameDecoder,
)
from ctrader_typed._framing import HEARTBEAT_FRAME as _HEARTBEAT_FRAME
from ctrader_typed._secrets import get_logger
from ctrader_typed._transport import (
    CLOSE_TIMEOUT,
    Link,
    LinkBase,
    LinkFactory,
    OnClosed,
    OnEnvelope,
    connect_error,
)
from ctrader_typed.errors import (
    ConnectionClosedError,
    CTraderError,
    MissingExtraError,
    ProtocolError,
    RemoteProtocolError,
)

try:
    from websockets.client import ClientProtocol
    from websockets.exceptions import InvalidStatus, PayloadTooBig
    from websockets.frames import Frame, Opcode
    from websockets.http11 import Response
    from websockets.protocol import State
    from websockets.uri import parse_uri

    HAVE_WEBSOCKETS = True
except ImportError:  # pragma: no cover - exercised by the missing-extra test with the import blocked
    HAVE_WEBSOCKETS = False

__all__ = ["HAVE_WEBSOCKETS", "WebSocketLink", "open_websocket_link", "require_websockets", "websocket_url"]

logger = get_logger("ctrader_typed.transport")

_HEARTBEAT_MESSAGE: Final = _HEARTBEAT_FRAME[HEADER_SIZE:]
_pack_header = struct.Struct(">I").pack
Buffer: TypeAlias = bytes | bytearray | memoryview
_CLEAN_EOF: Final = "unexpected end of stream"
"""websockets' words for a socket that ended between frames (any other ``EOFError`` is mid-frame)."""


class _QuietLogger(logging.LoggerAdapter[logging.Logger]):
    """The library's logger, with DEBUG off whatever the configuration: its debug lines show
    message bytes, and those carry secrets (the client secret, tokens)."""

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        return None


def require_websockets() -> None:
    """Raise ``MissingExtraError`` unless the ``websockets`` package can be used."""
    if not HAVE_WEBSOCKETS:
        raise MissingExtraError("the websocket transport", extra="websocket", package="websockets")


def websocket_url(host: str, port: int) -> str:
    """``wss://host:port`` (brackets around an IPv6 address), the server's WebSocket URL: no path."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"wss://{shown}:{port}"


class WebSocketLink(LinkBase, asyncio.Protocol):
    """One WebSocket connection over TLS. Create it with ``open_websocket_link``."""

    def __init__(
        self,
        *,
        url: str,
        on_envelope: OnEnvelope,
        on_closed: OnClosed,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        heartbeat_interval: float = 10.0,
        dead_link_timeout: float | None = 30.0,
        close_timeout: float = CLOSE_TIMEOUT,
        name: str = "link",
    ) -> None:
        require_websockets()
        super().__init__(
            on_closed=on_closed,
            heartbeat_interval=heartbeat_interval,
            dead_link_timeout=dead_link_timeout,
            close_timeout=close_timeout,
            name=name,
        )
        self._decoder = FrameDecoder(on_envelope, max_frame_size=max_frame_size)
        self._max_frame_size = max_frame_size
        self._ws = ClientProtocol(
            parse_uri(url),
            max_size=max_frame_size,
            logger=_QuietLogger(logging.getLogger("websockets.client")),
        )
        self._opened: asyncio.Future[None] = self._loop.create_future()
        self._fragments: list[Buffer] | None = None

    def __repr__(self) -> str:
        return f"<WebSocketLink {self.name} {self._state()}>"

    # -- public API ---------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """True from the end of the opening handshake until a close was requested or the link lost."""
        return not self._closing and self._transport is not None and self._opened.done()

    def send(self, frame: bytes) -> None:
        """Send one length-prefixed frame as one binary message (its prefix stripped).

        Raises:
            ConnectionClosedError: The link is not open (nothing was written).
        """
        transport = self._transport
        if self._closing or transport is None or self._ws.state is not State.OPEN:
            raise ConnectionClosedError("the connection is closed", may_have_been_sent=False)
        self._ws.send_binary(memoryview(frame)[HEADER_SIZE:])
        self._flush(transport)
        self.frames_sent += 1
        self._keepalive.last_write = self._time()

    def close(self, error: CTraderError | None = None) -> None:
        """Close the link; ``error`` (if any) is reported as the reason.

        ``on_closed`` runs right away (nothing received after this point is delivered);
        ``wait_closed`` waits for the socket itself. Errors abort the socket at once; a
        deliberate close sends a close frame (1000) and leaves the server ``close_timeout``
        to answer it and end the connection before the socket is aborted.
        """
        if self._closing:
            return
        self._closing = True
        self._decoder.stop()
        self._cancel_timer()
        transport = self._transport
        if transport is not None:
            if error is not None or self._ws.state is not State.OPEN:
                transport.abort()
            else:
                self._ws.send_close(1000)
                self._flush(transport)
                self._abort_timer = self._loop.call_later(self._close_timeout, transport.abort)
        elif not self._done.done():
            self._done.set_result(error)
        self._report(error)

    async def wait_opened(self) -> None:
        """Wait for the end of the opening handshake.

        Raises:
            ConnectionClosedError: The server refused the upgrade or the socket ended first.
        """
        await self._opened

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._ws.send_request(self._ws.connect())
        self._flush(transport)

    def data_received(self, data: bytes) -> None:
        self.bytes_received += len(data)
        ws = self._ws
        batch: list[Buffer] = []
        try:
            ws.receive_data(data)
            events = ws.events_received()
            transport = self._transport
            if transport is not None:
                self._flush(transport)  # pongs, the echo of a close frame, the end of the stream
            for event in events:
                if isinstance(event, Frame):
                    if not self._closing:
                        self._on_frame(event, batch)
                elif isinstance(event, Response):
                    self._handshake_done()
            self._deliver(batch)
            if ws.parser_exc is not None and not self._closing:
                self.close(self._broken(ws.parser_exc))
        except ProtocolError as exc:
            logger.warning("%s: closing the connection: %s", self.name, exc)
            self.close(exc)
        except Exception as exc:
            self._internal_error(exc)

    def eof_received(self) -> bool | None:
        return None  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timers()
        self._transport = None
        ws = self._ws
        partial = bool(ws.reader.buffer) or ws.current_size is not None
        ws.receive_eof()
        if not self._opened.done():
            # The link never opened: open_websocket_link raises, nobody is to be told.
            self._on_closed = None
            self._closing = True
            failure = ConnectionClosedError(
                f"the connection to {self.name} ended during the WebSocket handshake"
                + (f": {exc}" if exc is not None else "")
            )
            failure.__cause__ = ws.handshake_exc or exc
            self._opened.set_exception(failure)
        elif not self._closing:
            self._closing = True
            self._report(self._ended(exc, partial))
        if not self._done.done():
            self._done.set_result(self._error)

    # -- messages ------------------------------------------------------------------------------

    def _handshake_done(self) -> None:
        ws = self._ws
        if self._opened.done():
            return
        failure = ws.handshake_exc
        if failure is not None:
            self._on_closed = None
            self._closing = True
            if self._transport is not None:
                self._transport.abort()
            detail = (
                f"HTTP {failure.response.status_code}" if isinstance(failure, InvalidStatus) else str(failure)
            )
            error = ConnectionClosedError(f"{self.name} refused the WebSocket upgrade ({detail})")
            error.__cause__ = failure
            self._opened.set_exception(error)
            return
        self._start_keepalive()
        self._opened.set_result(None)

    def _on_frame(self, frame: Frame, batch: list[Buffer]) -> None:
        """Add the message ``frame`` completes (as a length-prefixed frame) to ``batch``."""
        opcode = frame.opcode
        if opcode is Opcode.BINARY:
            if frame.fin:
                batch += (_pack_header(len(frame.data)), frame.data)
            else:
                self._fragments = [frame.data]
        elif opcode is Opcode.CONT:
            fragments = self._fragments
            if fragments is None:  # the library refuses a stray continuation before we see it
                return
            fragments.append(frame.data)
            if frame.fin:
                self._fragments = None
                batch += (_pack_header(sum(map(len, fragments))), *fragments)
        elif opcode is Opcode.TEXT:
            self._deliver(batch)  # what came before it, first
            raise RemoteProtocolError(
                "the server sent a text (JSON) WebSocket message; this link speaks protobuf "
                "(binary messages, port 5035), not the JSON encoding of port 5036"
            )
        # PING is answered by the library (the pong was flushed); PONG needs nothing; CLOSE ends
        # the link in connection_lost, once the server has closed the socket.

    def _deliver(self, batch: list[Buffer]) -> None:
        """Feed the messages of one read to the decoder at once, as the TLS link feeds a chunk."""
        if batch and not self._closing:
            self._decoder.feed(b"".join(batch))
            batch.clear()
            self._keepalive.last_read = self._time()

    def _broken(self, failure: Exception) -> CTraderError:
        if isinstance(failure, PayloadTooBig):
            return RemoteProtocolError(
                f"the server sent a WebSocket message larger than max_frame_size={self._max_frame_size}"
            )
        if isinstance(failure, EOFError):
            return RemoteProtocolError(f"connection closed after part of a WebSocket frame ({failure})")
        return RemoteProtocolError(f"the server broke the WebSocket protocol: {failure}")

    def _ended(self, exc: Exception | None, partial: bool) -> CTraderError:
        ws = self._ws
        received = ws.close_rcvd
        if received is not None:
            reason = f" ({received.code}{': ' + received.reason if received.reason else ''})"
            return ConnectionClosedError(f"the server closed the connection{reason}", may_have_been_sent=True)
        failure = ws.parser_exc
        if partial or (isinstance(failure, EOFError) and str(failure) != _CLEAN_EOF):
            return RemoteProtocolError("connection closed after part of a WebSocket frame")
        if exc is None:
            return ConnectionClosedError("the server closed the connection", may_have_been_sent=True)
        error = ConnectionClosedError(f"the connection was lost: {exc}", may_have_been_sent=True)
        error.__cause__ = exc
        return error

    def _flush(self, transport: asyncio.Transport) -> None:
        for data in self._ws.data_to_send():
            if data:
                transport.write(data)
            elif not transport.is_closing():
                transport.close()  # the library's end of stream: TLS cannot half-close

    # -- keep-alive ----------------------------------------------------------------------------

    def _send_heartbeat(self, transport: asyncio.Transport) -> None:
        if self._ws.state is State.OPEN:
            self._ws.send_binary(_HEARTBEAT_MESSAGE)
            self._flush(transport)


async def open_websocket_link(
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext,
    server_hostname: str | None = None,
    connect_timeout: float = 10.0,
    on_envelope: OnEnvelope,
    on_closed: OnClosed,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    heartbeat_interval: float = 10.0,
    dead_link_timeout: float | None = 30.0,
    close_timeout: float = CLOSE_TIMEOUT,
) -> WebSocketLink:
    """Connect over TLS, upgrade to WebSocket at ``wss://host:port`` and return the open link.

    ``connect_timeout`` covers the TCP connect, the TLS handshake and the WebSocket upgrade.

    Raises:
        MissingExtraError: The ``websockets`` package is not installed.
        TLSVerificationError: The server's certificate was not trusted (nothing was sent).
        ConnectionClosedError: The connection, the TLS handshake or the upgrade failed or
            timed out (the cause is chained).
    """
    require_websockets()
    loop = asyncio.get_running_loop()
    url = websocket_url(host, port)
    name = f"{host}:{port}"

    def factory() -> WebSocketLink:
        return WebSocketLink(
            url=url,
            on_envelope=on_envelope,
            on_closed=on_closed,
            max_frame_size=max_frame_size,
            heartbeat_interval=heartbeat_interval,
            dead_link_timeout=dead_link_timeout,
            close_timeout=close_timeout,
            name=name,
        )

    link: WebSocketLink | None = None
    try:
        async with asyncio.timeout(connect_timeout):
            _, link = await loop.create_connection(
                factory,
                host,
                port,
                ssl=ssl_context,
                server_hostname=server_hostname if server_hostname is not None else host,
                ssl_handshake_timeout=connect_timeout,
                ssl_shutdown_timeout=close_timeout,
            )
            await link.wait_opened()
    except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
        _discard(link)
        raise connect_error(url, exc) from exc
    except BaseException:
        _discard(link)
        raise
    return link


def _discard(link: WebSocketLink | None) -> None:
    """Drop a link that never finished opening, without telling anyone it closed."""
    if link is None:
        return
    link._on_closed = None
    if not link._opened.done():
        link._opened.cancel()  # nobody waits for it any more
    if not link.is_closed:
        link.close(ConnectionClosedError("the WebSocket link did not open"))


def websocket_links(
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None,
    server_hostname: str | None,
    connect_timeout: float,
    max_frame_size: int,
    heartbeat_interval: float,
    dead_link_timeout: float | None,
) -> LinkFactory:
    """The link factory of ``transport="websocket"``: ``wss://host:port``, verified.

    Raises:
        MissingExtraError: The ``websockets`` package is not installed (raised here, when
            the client is made, rather than at the first connect).
    """
    require_websockets()

    async def open_websocket(on_envelope: OnEnvelope, on_closed: OnClosed) -> Link:
        context = ssl_context if ssl_context is not None else ssl.create_default_context()
        return await open_websocket_link(
            host,
            port,
            ssl_context=context,
            server_hostname=server_hostname,
            connect_timeout=connect_timeout,
            on_envelope=on_envelope,
            on_closed=on_closed,
            max_frame_size=max_frame_size,
            heartbeat_interval=heartbeat_interval,
            dead_link_timeout=dead_link_timeout,
        )

    return open_websocket
