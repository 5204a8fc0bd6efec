"""The one asyncio module that touches the network: a TLS link carrying framed envelopes.

``Link`` is what the client needs of a link (a ``Protocol``): send whole frames, close,
wait until closed; inbound envelopes and the end of the link reach it through the two
callbacks it was opened with (``LinkFactory``).

``open_link`` dials the server over TLS (certificate and host name verified, SNI sent)
and returns a ``TLSLink``, an ``asyncio.Protocol``. What it reads goes to the sans-IO
``FrameDecoder`` a slice at a time (``READ_SLICE``); the decoder hands each envelope to a
callback (and runs of unsolicited events to the callback's batch routes, one list per run:
see ``OnEnvelope``). A plain protocol, not a buffered one: when the peer ends the stream,
asyncio's TLS transport hands a plain protocol everything it decrypted, where it gives a
buffered protocol one buffer more and drops the rest (a server that closed while the client
was behind lost the end of what it sent).
The link writes whole frames, sends a heartbeat when nothing was written for
``heartbeat_interval`` and closes itself when no complete frame was read for
``dead_link_timeout`` (bytes that never finish a frame - a server trickling one byte at a
time - do not keep the link alive). Writes are synchronous and frame-whole, so a cancelled
caller can never leave half a frame on the wire.

When the link ends, for whatever reason, ``on_closed(link, error)`` is called exactly
once, from the event loop: ``error`` is ``None`` when we closed it deliberately, a
``RemoteProtocolError`` for bytes that broke the protocol, and a
``ConnectionClosedError`` for everything else (peer closed, dead link, socket error).
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Awaitable, Callable
from typing import Final, Protocol

from ctrader_typed._framing import (
    DEFAULT_MAX_FRAME_SIZE,
    HEARTBEAT_FRAME,
    Envelope,
    FrameDecoder,
    KeepAlive,
    KeepAliveAction,
)
from ctrader_typed._secrets import get_logger
from ctrader_typed.errors import ConnectionClosedError, CTraderError, ProtocolError, TLSVerificationError

__all__ = [
    "Link",
    "LinkBase",
    "LinkFactory",
    "OnClosed",
    "OnEnvelope",
    "TLSLink",
    "check_tls_settings",
    "open_link",
]

logger = get_logger("ctrader_typed.transport")

CLOSE_TIMEOUT: Final = 2.0
"""Seconds a graceful TLS close may take before the socket is aborted."""

READ_SLICE: Final = 16 * 1024
"""Bytes a ``TLSLink`` feeds to its decoder at a time: some 550 spot frames. A link that is
behind takes its backlog a slice at a time and lets the event consumers run after each, so a
consumer that keeps up holds one slice of events at a time - fewer than the 700 allocations
after which Python's garbage collector walks its youngest objects (events still queued when it
runs get walked, and walked again later: with two or more slices queued at each wake-up that
cost a stream about a tenth of its speed)."""

_BACKLOG_HIGH: Final = 1024 * 1024
"""Bytes held back (not fed yet) above which a ``TLSLink`` stops reading the socket..."""
_BACKLOG_LOW: Final = 256 * 1024
"""... until it is back under this. asyncio reads a TLS socket as fast as data comes: without
this, a link whose consumers cannot keep up would hold everything the server sends."""


class Link(Protocol):
    """What the client needs of a link, whatever carries it (TLS here; memory in unit tests).

    ``on_closed(link, error)`` - given when the link was opened - runs exactly once, from
    the event loop, when the link ends: at once from ``close``, or when the peer or the
    network ends it.
    """

    @property
    def is_open(self) -> bool:
        """True until a close was requested or the connection was lost."""
        ...

    @property
    def error(self) -> CTraderError | None:
        """Why the link ended (``None`` while open or after a deliberate close)."""
        ...

    def send(self, frame: bytes) -> None:
        """Write one complete frame; ``ConnectionClosedError`` when the link is closed."""
        ...

    def close(self, error: CTraderError | None = None) -> None:
        """Close the link; ``error`` (if any) is reported as the reason."""
        ...

    async def wait_closed(self) -> CTraderError | None:
        """Wait until the connection is fully gone; return the error that ended it."""
        ...


OnEnvelope = Callable[[Envelope], object]
"""Called with every envelope the link receives, in order.

What the client passes is also a ``_framing.BatchingSink`` (it has ``batch_routes``). A link
that feeds length-prefixed frames to a ``FrameDecoder(on_envelope)`` (``TLSLink`` its byte
stream; ``WebSocketLink`` the messages of one read, each given its length prefix) gets the
envelope-skipping batch path for free; a link that calls ``on_envelope(envelope)`` itself
still works, one envelope at a time."""
OnClosed = Callable[[Link, CTraderError | None], object]
"""Called once when the link ends, with the error that ended it (``None``: closed deliberately)."""
LinkFactory = Callable[[OnEnvelope, OnClosed], Awaitable[Link]]
"""Opens a link that reports to the two callbacks (``AsyncClient(link_factory=...)``)."""


class LinkBase:
    """What every link shares: its end (``error``, ``wait_closed``, the ``on_closed`` report, said
    once), its counters and the keep-alive timer (heartbeats, dead-link detection).

    A subclass sets ``_transport`` when its socket is up, calls ``_start_keepalive`` once the link
    is open, ``_stop_timers`` when the socket is gone, and says how a heartbeat is written
    (``_send_heartbeat``).
    """

    def __init__(
        self,
        *,
        on_closed: OnClosed,
        heartbeat_interval: float,
        dead_link_timeout: float | None,
        close_timeout: float,
        name: str,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._time = self._loop.time
        self._on_closed: OnClosed | None = on_closed
        self._keepalive = KeepAlive(
            heartbeat_interval=heartbeat_interval, dead_link_timeout=dead_link_timeout, now=self._time()
        )
        self._close_timeout = close_timeout
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._abort_timer: asyncio.TimerHandle | None = None
        self._closing = False
        self._error: CTraderError | None = None
        self._done: asyncio.Future[CTraderError | None] = self._loop.create_future()
        self.name = name
        self.frames_sent = 0
        self.bytes_received = 0

    def _state(self) -> str:
        return "closed" if self._done.done() else "closing" if self._closing else "open"

    @property
    def is_closed(self) -> bool:
        """True once the socket is gone."""
        return self._done.done()

    @property
    def error(self) -> CTraderError | None:
        """Why the link ended (``None`` while open or after a deliberate close)."""
        return self._error

    async def wait_closed(self) -> CTraderError | None:
        """Wait until the connection is fully gone; return the error that ended it."""
        return await asyncio.shield(self._done)

    def close(self, error: CTraderError | None = None) -> None:
        raise NotImplementedError

    def _report(self, error: CTraderError | None) -> None:
        self._error = error
        callback, self._on_closed = self._on_closed, None
        if callback is not None:
            callback(self, error)  # type: ignore[arg-type]  # every subclass is a Link

    def _internal_error(self, exc: Exception) -> None:
        """Close the link after a bug in what handles received data (logged with its traceback)."""
        logger.exception("%s: error while handling received data; closing the connection", self.name)
        error = ConnectionClosedError(f"closed after an internal error: {exc!r}", may_have_been_sent=True)
        error.__cause__ = exc
        self.close(error)

    # -- keep-alive ----------------------------------------------------------------------------

    def _start_keepalive(self) -> None:
        now = self._time()
        self._keepalive.last_read = now
        self._keepalive.last_write = now
        self._schedule(
            now + min(self._keepalive.heartbeat_interval, self._keepalive.dead_link_timeout or 1e9)
        )

    def _send_heartbeat(self, transport: asyncio.Transport) -> None:
        raise NotImplementedError

    def _schedule(self, when: float) -> None:
        self._timer = self._loop.call_at(when, self._tick)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _stop_timers(self) -> None:
        self._cancel_timer()
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None

    def _tick(self) -> None:
        self._timer = None
        transport = self._transport
        if self._closing or transport is None:
            return
        now = self._time()
        action, deadline = self._keepalive.poll(now)
        if action is KeepAliveAction.DEAD:
            silence = self._keepalive.silence(now)
            logger.warning("%s: no complete frame for %.1f s; closing the dead link", self.name, silence)
            self.close(
                ConnectionClosedError(
                    f"no complete frame received from the server for {silence:.1f} s; "
                    "the link is presumed dead",
                    may_have_been_sent=True,
                )
            )
            return
        if action is KeepAliveAction.SEND_HEARTBEAT:
            self._send_heartbeat(transport)
        self._schedule(deadline)


class TLSLink(LinkBase, asyncio.Protocol):
    """One TLS connection. Create it with ``open_link``.

    What TLS hands over is fed to the frame decoder ``READ_SLICE`` bytes at a time: a larger
    read keeps the rest back and takes the next slice in a callback of its own, after the
    event consumers the slice woke have run (see ``READ_SLICE``). When the peer ends the
    stream, everything held back is delivered before the end is reported.
    """

    def __init__(
        self,
        *,
        on_envelope: OnEnvelope,
        on_closed: OnClosed,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        heartbeat_interval: float = 10.0,
        dead_link_timeout: float | None = 30.0,
        close_timeout: float = CLOSE_TIMEOUT,
        name: str = "link",
    ) -> None:
        super().__init__(
            on_closed=on_closed,
            heartbeat_interval=heartbeat_interval,
            dead_link_timeout=dead_link_timeout,
            close_timeout=close_timeout,
            name=name,
        )
        self._decoder = FrameDecoder(on_envelope, max_frame_size=max_frame_size)
        self._backlog: collections.deque[memoryview] = collections.deque()
        """Bytes received and not fed to the decoder yet, oldest first."""
        self._backlog_size = 0
        self._more_scheduled = False
        self._paused_for_backlog = False

    def __repr__(self) -> str:
        return f"<TLSLink {self.name} {self._state()}>"

    # -- public API ---------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """True until a close was requested or the connection was lost."""
        return not self._closing and self._transport is not None

    def send(self, frame: bytes) -> None:
        """Write one complete frame.

        Raises:
            ConnectionClosedError: The link is closed or closing (nothing was written).
        """
        transport = self._transport
        if self._closing or transport is None:
            raise ConnectionClosedError("the connection is closed", may_have_been_sent=False)
        transport.write(frame)
        self.frames_sent += 1
        self._keepalive.last_write = self._time()

    def close(self, error: CTraderError | None = None) -> None:
        """Close the link; ``error`` (if any) is reported as the reason.

        ``on_closed`` runs right away (nothing received after this point is delivered);
        ``wait_closed`` waits for the socket itself. Errors abort the socket at once; a
        deliberate close shuts TLS down gracefully, aborting after ``close_timeout`` if
        the peer does not cooperate.
        """
        if self._closing:
            return
        self._closing = True
        self._decoder.stop()
        self._backlog.clear()
        self._backlog_size = 0
        self._cancel_timer()
        transport = self._transport
        if transport is not None:
            if error is not None:
                transport.abort()
            else:
                transport.close()
                self._abort_timer = self._loop.call_later(self._close_timeout, transport.abort)
        elif not self._done.done():
            self._done.set_result(error)
        self._report(error)

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._start_keepalive()

    def data_received(self, data: bytes) -> None:
        self.bytes_received += len(data)
        if self._closing:
            return
        if self._backlog:  # behind already: in order, after what is held back
            self._hold(memoryview(data))
            return
        if len(data) <= READ_SLICE:
            self._feed(data)
            return
        view = memoryview(data)
        self._feed(view[:READ_SLICE])
        if not self._closing:
            self._hold(view[READ_SLICE:])

    def _hold(self, data: memoryview) -> None:
        """Keep ``data`` for a later slice; past ``_BACKLOG_HIGH`` bytes held, stop reading."""
        self._backlog.append(data)
        self._backlog_size += len(data)
        if not self._more_scheduled:
            # Scheduled after the wake-ups of the consumers the slice fed (the loop runs callbacks
            # in order), so they take it before the next one comes.
            self._more_scheduled = True
            self._loop.call_soon(self._more)
        transport = self._transport
        if self._backlog_size > _BACKLOG_HIGH and not self._paused_for_backlog and transport is not None:
            self._paused_for_backlog = True
            transport.pause_reading()

    def _more(self) -> None:
        """The next slice of what is held back."""
        self._more_scheduled = False
        self._take(READ_SLICE)
        transport = self._transport
        if self._backlog and not self._closing:
            self._more_scheduled = True
            self._loop.call_soon(self._more)
        if self._paused_for_backlog and self._backlog_size <= _BACKLOG_LOW and transport is not None:
            self._paused_for_backlog = False
            if not self._closing:
                transport.resume_reading()

    def _take(self, budget: int) -> None:
        """Feed up to ``budget`` bytes of the backlog to the decoder, oldest first."""
        backlog = self._backlog
        while backlog and budget > 0 and not self._closing:
            chunk = backlog[0]
            if len(chunk) > budget:
                piece = chunk[:budget]
                backlog[0] = chunk[budget:]
            else:
                piece = backlog.popleft()
            budget -= len(piece)
            self._backlog_size -= len(piece)
            self._feed(piece)

    def _feed(self, data: bytes | memoryview) -> None:
        decoder = self._decoder
        held = decoder.buffered + len(data)
        try:
            decoder.feed(data)
            # Liveness counts complete frames: the decoder consumed bytes only if one ended here.
            if decoder.buffered < held:
                self._keepalive.last_read = self._time()
        except ProtocolError as exc:
            logger.warning("%s: closing the connection: %s", self.name, exc)
            self.close(exc)
        except Exception as exc:
            self._internal_error(exc)

    def eof_received(self) -> bool | None:
        self._take(self._backlog_size)  # the peer said all it will: deliver what is held back
        return None  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timers()
        self._take(self._backlog_size)  # what arrived before the end is delivered before it
        self._transport = None
        if not self._closing:
            self._closing = True
            error: CTraderError
            try:
                self._decoder.eof()
            except ProtocolError as partial:
                error = partial
            else:
                if exc is None:
                    error = ConnectionClosedError("the server closed the connection", may_have_been_sent=True)
                else:
                    error = ConnectionClosedError(f"the connection was lost: {exc}", may_have_been_sent=True)
                    error.__cause__ = exc
            self._report(error)
        if not self._done.done():
            self._done.set_result(self._error)

    def _send_heartbeat(self, transport: asyncio.Transport) -> None:
        transport.write(HEARTBEAT_FRAME)


def check_tls_settings(
    ssl_context: ssl.SSLContext | None, server_hostname: str | None, *, insecure: bool = False
) -> None:
    """Refuse settings that would connect without verifying who the server is.

    ``server_hostname=""`` makes asyncio skip the host-name check, and so does a context
    with ``check_hostname`` off or ``verify_mode`` other than ``CERT_REQUIRED``. Each is
    allowed only with ``insecure=True``. ``ssl_context=None`` stands for the default
    context, which verifies both.

    Raises:
        ValueError: The settings switch verification off and ``insecure`` is false.
    """
    if insecure:
        return
    problems = []
    if server_hostname is not None and not server_hostname.strip():
        problems.append("server_hostname is empty (asyncio would not check the host name)")
    if ssl_context is not None and ssl_context.verify_mode != ssl.CERT_REQUIRED:
        problems.append("the SSL context does not require a verified certificate")
    if ssl_context is not None and not ssl_context.check_hostname:
        problems.append("the SSL context does not check host names")
    if problems:
        raise ValueError(
            "refusing TLS without full verification: "
            + "; ".join(problems)
            + ". Pass insecure_tls=True to connect anyway (never against a real server)"
        )


async def open_link(
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
) -> TLSLink:
    """Connect over TLS and return the open link.

    Raises:
        TLSVerificationError: The server's certificate was not trusted (nothing was sent).
        ConnectionClosedError: The TCP connection or the TLS handshake failed (the cause
            is chained: ``OSError``, ``ssl.SSLError``, ``TimeoutError``).
    """
    loop = asyncio.get_running_loop()
    name = f"{host}:{port}"

    def factory() -> TLSLink:
        return TLSLink(
            on_envelope=on_envelope,
            on_closed=on_closed,
            max_frame_size=max_frame_size,
            heartbeat_interval=heartbeat_interval,
            dead_link_timeout=dead_link_timeout,
            close_timeout=close_timeout,
            name=name,
        )

    try:
        async with asyncio.timeout(connect_timeout):
            _, protocol = await loop.create_connection(
                factory,
                host,
                port,
                ssl=ssl_context,
                server_hostname=server_hostname if server_hostname is not None else host,
                ssl_handshake_timeout=connect_timeout,
                ssl_shutdown_timeout=close_timeout,
            )
    except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
        raise connect_error(name, exc) from exc
    return protocol


def connect_error(name: str, exc: OSError | TimeoutError) -> TLSVerificationError | ConnectionClosedError:
    """The error for a connection to ``name`` that failed with ``exc`` (raise it ``from exc``):
    ``TLSVerificationError`` for an untrusted certificate, else ``ConnectionClosedError``."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or exc.reason or str(exc)
        return TLSVerificationError(
            f"the TLS certificate of {name} was not trusted ({reason}); if the server uses a "
            "private CA (a simulator, a proxy), pass ssl_context=ssl.create_default_context("
            "cafile=...) with that CA",
            verify_message=exc.verify_message,
        )
    detail = "timed out" if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
    return ConnectionClosedError(f"could not connect to {name}: {detail}")
