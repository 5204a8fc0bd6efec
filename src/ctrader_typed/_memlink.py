"""Links in memory: run the real client without a socket (unit tests of the client).

``MemoryNetwork.open`` is a link factory (``AsyncClient(host, link_factory=network.open)``);
each link it opens ends in a ``MemoryPeer`` that the test plays the server with::

    network = MemoryNetwork()
    async with asyncio.TaskGroup() as tg:
        connecting = tg.create_task(client.connect())
        peer = await network.accept()
    request = await peer.receive()                      # what the client sent
    peer.answer(request, VersionRes(version="1"))         # an answer to it
    peer.send(SpotEvent(ctid_trader_account_id=1, symbol_id=2))   # an event
    peer.close()                                          # the server hangs up

Bytes travel as frames through the real codec (``_framing``) both ways, and are delivered
from the event loop (never from inside ``send``), as a socket would. There is no clock:
no heartbeats, no dead-link detection.
"""

from __future__ import annotations

import asyncio

from ctrader_typed._base import Wrapper
from ctrader_typed._framing import (
    DEFAULT_MAX_FRAME_SIZE,
    HEARTBEAT_PAYLOAD_TYPE,
    Envelope,
    FrameDecoder,
    encode_envelope,
)
from ctrader_typed._transport import Link, OnClosed, OnEnvelope
from ctrader_typed.errors import ConnectionClosedError, CTraderError, ProtocolError

__all__ = ["MemoryLink", "MemoryNetwork", "MemoryPeer"]


class MemoryLink:
    """The client's end of an in-memory link (a ``_transport.Link``)."""

    def __init__(
        self,
        peer: MemoryPeer,
        on_envelope: OnEnvelope,
        on_closed: OnClosed,
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        self._peer = peer
        self._loop = asyncio.get_running_loop()
        self._decoder = FrameDecoder(on_envelope, max_frame_size=max_frame_size)
        self._on_closed: OnClosed | None = on_closed
        self._closing = False
        self._error: CTraderError | None = None
        self._done: asyncio.Future[CTraderError | None] = self._loop.create_future()
        self.frames_sent = 0

    def __repr__(self) -> str:
        state = "closed" if self._done.done() else "open"
        return f"<MemoryLink {state}>"

    @property
    def is_open(self) -> bool:
        return not self._closing

    @property
    def error(self) -> CTraderError | None:
        return self._error

    def send(self, frame: bytes) -> None:
        if self._closing:
            raise ConnectionClosedError("the connection is closed", may_have_been_sent=False)
        self.frames_sent += 1
        self._loop.call_soon(self._peer._from_client, frame)

    def close(self, error: CTraderError | None = None) -> None:
        """Close from the client's side; the peer sees its end closed."""
        if self._closing:
            return
        self._end(error)
        self._peer._closed_by_client()

    async def wait_closed(self) -> CTraderError | None:
        return await asyncio.shield(self._done)

    # -- the peer's side ---------------------------------------------------------------------------

    def _from_peer(self, data: bytes) -> None:
        if self._closing:
            return
        try:
            self._decoder.feed(data)
        except ProtocolError as exc:
            self.close(exc)

    def _lost(self, error: CTraderError) -> None:
        if not self._closing:
            self._end(error)

    def _end(self, error: CTraderError | None) -> None:
        self._closing = True
        self._decoder.stop()
        self._error = error
        callback, self._on_closed = self._on_closed, None
        if callback is not None:
            callback(self, error)
        if not self._done.done():
            self._done.set_result(error)


class MemoryPeer:
    """The server's end of one in-memory link, driven by the test."""

    def __init__(self) -> None:
        self.link: MemoryLink | None = None
        self._received: asyncio.Queue[Envelope | None] = asyncio.Queue()
        self._decoder = FrameDecoder(self._received.put_nowait)
        self.closed = asyncio.Event()
        """Set when either side closed the link."""

    async def receive(self) -> Envelope:
        """The next envelope the client sent (heartbeats skipped).

        Raises:
            ConnectionClosedError: The link closed and nothing more is queued.
        """
        while True:
            envelope = await self._received.get()
            if envelope is None:
                self._received.put_nowait(None)  # every later receive() ends too
                raise ConnectionClosedError("the in-memory link is closed")
            if envelope.payloadType != HEARTBEAT_PAYLOAD_TYPE:
                return envelope

    def send(self, message: Wrapper, client_msg_id: str | None = None) -> None:
        """Send ``message`` to the client (``client_msg_id``: as an answer to that request)."""
        payload_type = message.PAYLOAD_TYPE
        if payload_type is None:
            raise TypeError(f"{type(message).__name__} never travels on its own")
        self.send_frame(encode_envelope(payload_type, message.to_bytes(), client_msg_id))

    def answer(self, request: Envelope, message: Wrapper) -> None:
        """Send ``message`` as the answer to ``request`` (its ``clientMsgId``)."""
        self.send(message, request.clientMsgId or None)

    def send_frame(self, frame: bytes) -> None:
        """Send raw bytes (a frame, part of one, or garbage)."""
        link = self.link
        if link is None or self.closed.is_set():
            raise ConnectionClosedError("the in-memory link is closed")
        asyncio.get_running_loop().call_soon(link._from_peer, frame)

    def close(self, reason: str = "the server closed the connection") -> None:
        """Hang up: the client sees the link lost with ``ConnectionClosedError(reason)``."""
        if self.closed.is_set():
            return
        self.closed.set()
        self._received.put_nowait(None)
        link = self.link
        if link is not None:
            asyncio.get_running_loop().call_soon(
                link._lost, ConnectionClosedError(reason, may_have_been_sent=True)
            )

    def _from_client(self, frame: bytes) -> None:
        if not self.closed.is_set():
            self._decoder.feed(frame)

    def _closed_by_client(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            self._received.put_nowait(None)


class MemoryNetwork:
    """A link factory whose links end in ``MemoryPeer``s (``accept`` hands them to the test)."""

    def __init__(self, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self._max_frame_size = max_frame_size
        self._accepted: asyncio.Queue[MemoryPeer] | None = None
        self.refusals = 0
        """How many of the next ``open`` calls fail, as an unreachable server does."""
        self.opened = 0

    def _queue(self) -> asyncio.Queue[MemoryPeer]:
        if self._accepted is None:
            self._accepted = asyncio.Queue()
        return self._accepted

    async def open(self, on_envelope: OnEnvelope, on_closed: OnClosed) -> Link:
        """Open a link (the ``LinkFactory``); its peer waits in ``accept``."""
        await asyncio.sleep(0)  # opening a link is never instantaneous
        if self.refusals > 0:
            self.refusals -= 1
            raise ConnectionClosedError("could not connect to the in-memory server: refused")
        peer = MemoryPeer()
        link = MemoryLink(peer, on_envelope, on_closed, max_frame_size=self._max_frame_size)
        peer.link = link
        self.opened += 1
        self._queue().put_nowait(peer)
        return link

    async def accept(self) -> MemoryPeer:
        """The peer of the next link the client opens."""
        return await self._queue().get()
