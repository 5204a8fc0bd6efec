"""The simulator's listeners: one TLS port that speaks every transport Spotware's port does.

Spotware's protobuf port (5035) takes length-prefixed frames over TLS *and* a WebSocket
upgrade on the same port; its JSON port (5036) takes JSON the same two ways. ``start_endpoint``
makes such a listener. Each connection is told apart by its first bytes:

* ``GET `` - an HTTP request: the WebSocket opening handshake (any path; Spotware's URL has
  none). After it, on the protobuf endpoint every binary message is one serialized
  ``ProtoMessage`` (no length prefix); on the JSON endpoint every text message is one JSON
  message (``_json``; binary messages are read as UTF-8 JSON too, answers are text).
* anything else on the protobuf endpoint: length-prefixed frames, handed to the connection
  untouched (the socket's protocol is swapped, so that path costs nothing).
* anything else on the JSON endpoint: JSON over TLS. The framing of that is not documented,
  so both are read: a first byte ``{`` (or white space) means one JSON object per line
  (``\\n``-terminated); anything else means a 4-byte big-endian length, then that many
  bytes of UTF-8 JSON. Answers use the framing the client used.
* nothing within ``detect_timeout`` (a silent client): the default of the endpoint -
  length-prefixed protobuf, or JSON lines that switch to what the client uses once it speaks.

Whatever the transport, the connection itself (``SimConnection``) sees the length-prefixed
protobuf stream it always sees: for the other variants ``_Bridge`` stands between it and the
socket as its transport, turning messages into frames on the way in and frames into messages
on the way out (protobuf or JSON). So every hook, limit and fault works on every transport;
the broken-frame hooks become their WebSocket counterparts: a frame left incomplete (an
oversized length, half a frame then close) goes out as a WebSocket frame header announcing
the frame's length followed by the bytes that were written, and the close after it drops the
socket without a close frame.

The WebSocket protocol is the ``websockets`` library's sans-I/O ``ServerProtocol``; without
that package (the ``sim`` extra brings it) an upgrade is answered ``501`` and closed.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Final, Literal

from ctrader_typed.testing._json import JsonMessageError, envelope_to_json, json_to_envelope
from ctrader_typed.testing._wire import HEADER, frame

try:
    from websockets.frames import Frame, Opcode
    from websockets.http11 import Request
    from websockets.protocol import State
    from websockets.server import ServerProtocol

    HAVE_WEBSOCKETS = True
except ImportError:  # pragma: no cover - the sim extra installs it
    HAVE_WEBSOCKETS = False

__all__ = ["DETECT_TIMEOUT", "Encoding", "TransportName", "drop_unsettled", "start_endpoint"]

log = logging.getLogger("ctrader_typed.testing")

Encoding = Literal["protobuf", "json"]
TransportName = Literal["tls", "websocket", "json-websocket", "json-tls"]
"""How a client reached an endpoint (``SimConnection.transport``)."""
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

DETECT_TIMEOUT: Final = 0.25
"""Seconds a new connection may stay silent before it is taken for the endpoint's default."""
_STREAM_LIMIT: Final = 2**16
_CORRUPT_FRAME: Final = frame(b"\xff\xff\xff\xff")
"""Fed to the connection for a message that cannot be read: it answers "Corrupted frame." and closes."""
_NOT_IMPLEMENTED: Final = (
    b"HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain\r\nConnection: close\r\n"
    b"Content-Length: 56\r\n\r\nthis simulator needs the 'websockets' package (sim extra)"
)


class _QuietLogger(logging.LoggerAdapter[logging.Logger]):
    """websockets' server logger without DEBUG (its debug lines show message bytes: secrets)."""

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        return None


async def start_endpoint(
    handler: Handler,
    host: str,
    port: int,
    *,
    ssl: ssl.SSLContext,
    encoding: Encoding = "protobuf",
    max_frame_size: int,
    ssl_handshake_timeout: float = 10.0,
    detect_timeout: float = DETECT_TIMEOUT,
    upgrade_timeout: float = 10.0,
) -> asyncio.Server:
    """Listen on ``host:port`` over TLS; each connection reaches ``handler(reader, writer)`` as
    length-prefixed protobuf, whatever transport and encoding the client used.

    A WebSocket opening handshake not complete within ``upgrade_timeout`` seconds of its first
    bytes is dropped (the connection's own idle timeout only starts once it is open).
    """
    loop = asyncio.get_running_loop()
    unsettled: set[_Sniffer] = set()

    def factory() -> _Sniffer:
        sniffer = _Sniffer(handler, encoding, max_frame_size, detect_timeout, upgrade_timeout, unsettled)
        unsettled.add(sniffer)
        return sniffer

    server = await loop.create_server(
        factory, host, port, ssl=ssl, ssl_handshake_timeout=ssl_handshake_timeout
    )
    _UNSETTLED[server] = unsettled
    return server


_UNSETTLED: weakref.WeakKeyDictionary[asyncio.Server, set[_Sniffer]] = weakref.WeakKeyDictionary()
"""Per server, its connections that have no connection handler yet (first bytes or upgrade awaited)."""


def drop_unsettled(server: asyncio.Server) -> None:
    """Abort ``server``'s connections that are still being told apart or upgraded: they have no
    ``SimConnection`` to drop them when the simulator stops (and ``Server.wait_closed`` waits
    for every connection from Python 3.12 on)."""
    for sniffer in list(_UNSETTLED.get(server, ())):
        sniffer.abort()


def _stream_protocol(handler: Handler) -> asyncio.StreamReaderProtocol:
    """What ``asyncio.start_server`` gives every connection: a reader, and ``handler`` run as a task."""
    reader = asyncio.StreamReader(limit=_STREAM_LIMIT)
    return asyncio.StreamReaderProtocol(reader, handler)


class _Sniffer(asyncio.Protocol):
    """Every connection's first protocol: waits for the first bytes, then hands the socket on."""

    def __init__(
        self,
        handler: Handler,
        encoding: Encoding,
        max_frame_size: int,
        detect_timeout: float,
        upgrade_timeout: float,
        unsettled: set[_Sniffer],
    ) -> None:
        self._unsettled = unsettled
        self._handler = handler
        self._encoding = encoding
        self._max_frame_size = max_frame_size
        self._detect_timeout = detect_timeout
        self._upgrade_timeout = upgrade_timeout
        self._transport: asyncio.Transport | None = None
        self._held = b""
        self._timer: asyncio.TimerHandle | None = None
        self._bridge: _Bridge | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._timer = asyncio.get_running_loop().call_later(self._detect_timeout, self._silent)

    def settled(self) -> None:
        """The connection has its handler now (or is gone): ``drop_unsettled`` leaves it alone."""
        self._unsettled.discard(self)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()
        self.settled()

    def data_received(self, data: bytes) -> None:
        if self._bridge is not None:
            self._bridge.data_received(data)
            return
        held = self._held = self._held + data
        if held[:1] == b"G" and len(held) < 4 and b"GET "[: len(held)] == held:
            return  # perhaps an HTTP request: wait for the rest of "GET "
        self._decide(held)

    def _silent(self) -> None:
        self._timer = None
        if self._bridge is None and self._transport is not None and not self._transport.is_closing():
            self._decide(b"")

    def _decide(self, held: bytes) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._held = b""
        transport = self._transport
        assert transport is not None
        if held.startswith(b"GET "):
            if not HAVE_WEBSOCKETS:
                log.warning("a WebSocket upgrade, but the websockets package is not installed")
                transport.write(_NOT_IMPLEMENTED)
                transport.close()
                return
            self._bridge = _WebSocketBridge(
                self, transport, self._encoding, self._max_frame_size, self._upgrade_timeout
            )
        elif self._encoding == "protobuf":
            inner = _stream_protocol(self._handler)
            transport.set_protocol(inner)  # from now on the socket talks to the connection directly
            inner.connection_made(transport)
            self.settled()
            if held:
                inner.data_received(held)
            return
        else:
            self._bridge = _JsonStreamBridge(self, transport, self._max_frame_size)
            self.settled()
        self._bridge.start(_stream_protocol(self._handler))
        if held:
            self._bridge.data_received(held)

    def eof_received(self) -> bool | None:
        if self._bridge is not None:
            self._bridge.eof_received()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.settled()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._transport = None
        if self._bridge is not None:
            self._bridge.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._bridge is not None:
            self._bridge.pause_writing()

    def resume_writing(self) -> None:
        if self._bridge is not None:
            self._bridge.resume_writing()


class _Bridge(asyncio.Transport):
    """The transport of a connection whose socket carries messages rather than frames.

    The connection writes length-prefixed frames: complete ones are sent as messages
    (``_send_message``); what is left of a write is a deliberately broken frame
    (``_send_broken``), after which everything is written raw. Messages read from the socket
    reach the connection as frames (``_to_connection``).
    """

    def __init__(self, sniffer: _Sniffer, transport: asyncio.Transport, max_frame_size: int) -> None:
        super().__init__()
        self._sniffer = sniffer
        self._real = transport
        self._max_frame_size = max_frame_size
        self._inner: asyncio.StreamReaderProtocol | None = None
        self._broken = False
        self._closing = False
        self._lost = False

    def start(self, inner: asyncio.StreamReaderProtocol) -> None:
        """Connect the connection once the socket speaks its variant (after a handshake, if any)."""
        self._inner = inner
        inner.connection_made(self)

    # -- from the socket ---------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        raise NotImplementedError

    def _to_connection(self, body: bytes) -> None:
        if self._inner is not None and not self._lost:
            self._inner.data_received(HEADER.pack(len(body)) + body)

    def eof_received(self) -> None:
        if self._inner is not None and not self._lost:
            self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    # -- from the connection (asyncio.Transport) ----------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self._real.is_closing():
            return
        if self._broken:
            self._real.write(data)
            return
        buffer = bytes(data)
        view = memoryview(buffer)
        pos, end = 0, len(buffer)
        bodies: list[bytes] = []
        while end - pos >= HEADER.size:
            (length,) = HEADER.unpack_from(view, pos)
            stop = pos + HEADER.size + length
            if stop > end:
                break
            bodies.append(bytes(view[pos + HEADER.size : stop]))
            pos = stop
        if bodies:
            self._send_messages(bodies)
        if pos < end:
            # The connection writes whole frames; a rest is one of its broken-frame hooks.
            self._broken = True
            self._send_broken(bytes(view[pos:]))

    def _send_messages(self, bodies: list[bytes]) -> None:
        """Send each frame body as one message, in one write to the socket."""
        raise NotImplementedError

    def _send_broken(self, rest: bytes) -> None:
        self._real.write(rest)

    def _close_gracefully(self) -> None:
        self._real.close()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._broken:
            self._real.close()  # no goodbye after a broken frame: the peer sees the cut
        else:
            self._close_gracefully()

    def abort(self) -> None:
        self._closing = True
        self._real.abort()

    def is_closing(self) -> bool:
        return self._closing or self._real.is_closing()

    transport_name: TransportName = "websocket"
    """What ``get_extra_info("ctrader_transport")`` says (``SimConnection.transport``)."""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ctrader_transport":
            return self.transport_name
        return self._real.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self._real.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._real.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._real.set_write_buffer_limits(high, low)

    def pause_reading(self) -> None:
        self._real.pause_reading()

    def resume_reading(self) -> None:
        self._real.resume_reading()

    def is_reading(self) -> bool:
        return self._real.is_reading()

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        raise NotImplementedError("TLS cannot half-close")

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._inner is not None
        return self._inner

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        raise NotImplementedError("the bridge's connection is fixed")


def _ws_header(opcode: int, length: int) -> bytes:
    """An unmasked WebSocket frame header (FIN set): only for the broken-frame hooks, which
    announce more than they send - something the library rightly refuses to produce."""
    if length < 126:
        return bytes((0x80 | opcode, length))
    if length < 2**16:
        return bytes((0x80 | opcode, 126)) + length.to_bytes(2, "big")
    return bytes((0x80 | opcode, 127)) + length.to_bytes(8, "big")


class _WebSocketBridge(_Bridge):
    """WebSocket (after the opening handshake): protobuf as binary messages, or JSON as text."""

    def __init__(
        self,
        sniffer: _Sniffer,
        transport: asyncio.Transport,
        encoding: Encoding,
        max_frame_size: int,
        upgrade_timeout: float,
    ) -> None:
        super().__init__(sniffer, transport, max_frame_size)
        self._encoding = encoding
        self._upgrade_timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            upgrade_timeout, self._upgrade_expired
        )
        self.transport_name = "json-websocket" if encoding == "json" else "websocket"
        self._ws = ServerProtocol(
            max_size=max_frame_size, logger=_QuietLogger(logging.getLogger("websockets"))
        )
        self._fragments: list[bytes] | None = None
        self._fragment_opcode: Opcode | None = None
        self._connection: asyncio.StreamReaderProtocol | None = None

    def start(self, inner: asyncio.StreamReaderProtocol) -> None:
        self._connection = inner  # connected once the handshake succeeds

    def _upgrade_expired(self) -> None:
        self._upgrade_timer = None
        if self._inner is None:
            log.info("WebSocket upgrade not completed in time: dropping the connection")
            self._real.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._upgrade_timer is not None:
            self._upgrade_timer.cancel()
            self._upgrade_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        ws = self._ws
        ws.receive_data(data)
        events = ws.events_received()
        for event in events:
            if isinstance(event, Request):
                response = ws.accept(event)
                ws.send_response(response)
                self._flush()
                if ws.state is State.OPEN and self._connection is not None:
                    if self._upgrade_timer is not None:
                        self._upgrade_timer.cancel()
                        self._upgrade_timer = None
                    self._sniffer.settled()
                    super().start(self._connection)
            elif isinstance(event, Frame):
                self._on_frame(event)
        self._flush()

    def _on_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode in (Opcode.TEXT, Opcode.BINARY):
            if not frame.fin:
                self._fragments, self._fragment_opcode = [bytes(frame.data)], opcode
                return
            self._message(opcode, bytes(frame.data))
        elif opcode is Opcode.CONT and self._fragments is not None and self._fragment_opcode is not None:
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                message, kind = b"".join(self._fragments), self._fragment_opcode
                self._fragments = self._fragment_opcode = None
                self._message(kind, message)
        # PING: the library queued the pong; CLOSE: it echoed it and ends the stream (_flush).

    def _message(self, opcode: Opcode, data: bytes) -> None:
        if self._encoding == "json":
            try:
                body = json_to_envelope(data)
            except JsonMessageError as exc:
                log.debug("unreadable JSON message: %s", exc)  # its text may quote a field value
                self._to_connection_raw(_CORRUPT_FRAME)
                return
            self._to_connection(body)
        elif opcode is Opcode.TEXT:
            log.info("text message on the protobuf endpoint: closing (1003)")
            self._ws.fail(1003, "this endpoint speaks protobuf: send binary messages")
            self._flush()
        else:
            self._to_connection(data)

    def _to_connection_raw(self, data: bytes) -> None:
        if self._inner is not None and not self._lost:
            self._inner.data_received(data)

    def eof_received(self) -> None:
        self._ws.receive_eof()
        self._flush()
        super().eof_received()

    def _flush(self) -> None:
        """Write what the library has to send, in as few socket writes as its order allows."""
        real = self._real
        writes = self._ws.data_to_send()
        if real.is_closing():
            return  # a pong or a close echo after we closed: the socket takes nothing more
        pending: list[bytes] = []
        for data in writes:
            if data:
                pending.append(data)
                continue
            if pending:
                real.write(b"".join(pending))
                pending = []
            if not real.is_closing():
                real.close()  # the library's end of stream: TLS cannot half-close
        if pending:
            real.write(b"".join(pending) if len(pending) > 1 else pending[0])

    def _send_messages(self, bodies: list[bytes]) -> None:
        ws = self._ws
        if ws.state is not State.OPEN:
            return
        if self._encoding == "json":
            for body in bodies:
                ws.send_text(envelope_to_json(body).encode())
        else:
            for body in bodies:
                ws.send_binary(body)
        self._flush()

    def _send_broken(self, rest: bytes) -> None:
        if len(rest) < HEADER.size:
            self._real.write(rest)
            return
        (length,) = HEADER.unpack_from(rest)
        opcode = 0x1 if self._encoding == "json" else 0x2
        self._real.write(_ws_header(opcode, length) + rest[HEADER.size :])

    def _close_gracefully(self) -> None:
        if self._ws.state is State.OPEN:
            self._ws.send_close(1000)
            self._flush()
        self._real.close()


class _JsonStreamBridge(_Bridge):
    """JSON over TLS without WebSocket: one object per line, or length-prefixed (see the module)."""

    def __init__(self, sniffer: _Sniffer, transport: asyncio.Transport, max_frame_size: int) -> None:
        super().__init__(sniffer, transport, max_frame_size)
        self._framing: Literal["lines", "prefixed"] | None = None
        self.transport_name = "json-tls"
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        if self._framing is None:
            stripped = data.lstrip()
            if not stripped:
                return
            self._framing = "lines" if stripped[:1] == b"{" else "prefixed"
            data = stripped
        buffer = self._buffer
        buffer += data
        if self._framing == "lines":
            while (end := buffer.find(b"\n")) >= 0:
                line = bytes(buffer[:end]).strip()
                del buffer[: end + 1]
                if line:
                    self._json_in(line)
            if len(buffer) > self._max_frame_size:
                self._too_long()
        else:
            while len(buffer) >= HEADER.size:
                (length,) = HEADER.unpack_from(buffer)
                if length > self._max_frame_size:
                    self._too_long()
                    return
                if len(buffer) < HEADER.size + length:
                    break
                text = bytes(buffer[HEADER.size : HEADER.size + length])
                del buffer[: HEADER.size + length]
                self._json_in(text)

    def _too_long(self) -> None:
        # The connection answers an announced length over the limit with FRAME_TOO_LONG and closes.
        self._buffer.clear()
        self._to_connection_raw(HEADER.pack(self._max_frame_size + 1))

    def _json_in(self, text: bytes) -> None:
        try:
            body = json_to_envelope(text)
        except JsonMessageError as exc:
            log.debug("unreadable JSON message: %s", exc)  # its text may quote a field value
            self._to_connection_raw(_CORRUPT_FRAME)
            return
        self._to_connection(body)

    def _to_connection_raw(self, data: bytes) -> None:
        if self._inner is not None and not self._lost:
            self._inner.data_received(data)

    def _send_messages(self, bodies: list[bytes]) -> None:
        texts = [envelope_to_json(body).encode() for body in bodies]
        if self._framing == "prefixed":
            self._real.write(b"".join(HEADER.pack(len(text)) + text for text in texts))
        else:
            self._real.write(b"".join(text + b"\n" for text in texts))
