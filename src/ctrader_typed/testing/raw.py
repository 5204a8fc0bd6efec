"""Frame-level test tools: ``RawClient`` (a bare client) and ``RawServer`` (a hostile server).

Plain ``asyncio`` TLS streams and the protobuf classes, nothing of the SDK: both frame with
``struct`` on their own (independently of both the simulator's and the client's framing), so
protocol tests do not depend on the code they check.

``RawClient`` sends what a test likes to a server (the simulator) and reads frames back::

    async with await RawClient.connect(sim.host, sim.port, sim.ssl_context) as raw:
        answer = await raw.request(ProtoOAVersionReq())
        assert answer.payload_type == 2105

``RawServer`` is the other way round: a TLS server (throwaway CA, ephemeral port) that a
test scripts frame by frame to attack a client - wrong answers, half frames, garbage, a
frame trickled one byte at a time, a reset::

    async with await RawServer.start() as server:
        client = AsyncClient(server.host, server.port, ssl_context=server.ssl_context)
        connecting = asyncio.create_task(client.connect())
        peer = await server.accept()
        await connecting
        asking = asyncio.create_task(client.send_version_req())
        request = await peer.expect(ProtoOAVersionReq)
        peer.answer(request, ProtoOAVersionRes(version="1"))
        await asking

Bounds: a frame from the client longer than ``max_frame_size``, more than
``max_buffer_bytes`` of frames kept (``peer.received``), or more than
``max_buffer_frames`` frames kept or unread, makes the peer record why in ``peer.error``
and reset the connection; connections beyond ``max_connections`` (over the server's life)
are reset at once and counted in ``server.refused``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import shutil
import socket
import ssl
import struct
import tempfile
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtobufMessage

from ctrader_typed._generated import OpenApiCommonMessages_pb2 as common_pb
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated.registry import PAYLOAD_TYPES, payload_type_of
from ctrader_typed.testing._certs import make_certificates

__all__ = ["UNDECODABLE", "RawClient", "RawPeer", "RawServer", "Received"]

_LENGTH: Final = struct.Struct(">I")
_HEARTBEAT: Final = 51
_CHUNK: Final = 64 * 1024

UNDECODABLE: Final = -1
"""``Received.payload_type`` of a frame from the client that is not a ``ProtoMessage``
(``payload`` is then the whole frame body)."""


def _parse_frame(body: bytes) -> Received:
    """A frame body as ``Received``; ``DecodeError`` if it is no ``ProtoMessage``."""
    envelope = common_pb.ProtoMessage.FromString(body)
    client_msg_id = envelope.clientMsgId if envelope.HasField("clientMsgId") else None
    message: ProtobufMessage | None = None
    wrapper = PAYLOAD_TYPES.get(envelope.payloadType)
    if wrapper is not None:
        try:
            message = wrapper.PROTO.FromString(envelope.payload)
        except DecodeError:
            message = None
    return Received(envelope.payloadType, client_msg_id, message, envelope.payload)


def _frame(payload_type: int, payload: bytes, client_msg_id: str | None) -> bytes:
    envelope = common_pb.ProtoMessage(payloadType=payload_type, payload=payload)
    if client_msg_id is not None:
        envelope.clientMsgId = client_msg_id
    body = envelope.SerializeToString()
    return _LENGTH.pack(len(body)) + body


def _payload_type_of_class(message_type: type[ProtobufMessage]) -> int:
    try:
        return payload_type_of(message_type.DESCRIPTOR.full_name)
    except KeyError:
        raise TypeError(f"{message_type.DESCRIPTOR.full_name} has no payload type") from None


@dataclasses.dataclass(frozen=True, slots=True)
class Received:
    """One frame from the other side. ``message`` is ``None`` if the payload could not be parsed
    (or its payload type is unknown)."""

    payload_type: int
    client_msg_id: str | None
    message: ProtobufMessage | None
    payload: bytes


class RawClient:
    """Send protobuf messages as frames; read frames back, in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self.backlog: deque[Received] = deque()
        """Frames read while waiting for something else, oldest first (``recv`` takes them first)."""
        self.heartbeats = 0

    @classmethod
    async def connect(
        cls, host: str, port: int, ssl_context: ssl.SSLContext, *, server_hostname: str | None = None
    ) -> RawClient:
        reader, writer = await asyncio.open_connection(
            host, port, ssl=ssl_context, server_hostname=server_hostname or host, limit=64 * 1024 * 1024
        )
        return cls(reader, writer)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if not self._writer.is_closing():
            self._writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError, OSError, TimeoutError):
            async with asyncio.timeout(2.0):
                await self._writer.wait_closed()
        self._writer.transport.abort()

    # -- sending --------------------------------------------------------------------------------

    async def send(
        self,
        message: ProtobufMessage,
        *,
        client_msg_id: str | None = None,
        payload_type: int | None = None,
    ) -> None:
        """Send ``message`` in a ``ProtoMessage`` envelope (payload type from the schema by default)."""
        if payload_type is None:
            payload_type = payload_type_of(message.DESCRIPTOR.full_name)
        envelope = common_pb.ProtoMessage(
            payloadType=payload_type, payload=message.SerializePartialToString()
        )
        if client_msg_id is not None:
            envelope.clientMsgId = client_msg_id
        await self.send_bytes(envelope.SerializeToString())

    async def send_bytes(self, body: bytes) -> None:
        """Send ``body`` as one frame (length prefix added)."""
        await self.send_raw(_LENGTH.pack(len(body)) + body)

    async def send_raw(self, data: bytes) -> None:
        """Write bytes as they are, no framing."""
        self._writer.write(data)
        await self._writer.drain()

    # -- receiving ------------------------------------------------------------------------------

    async def recv_frame_bytes(self, timeout: float = 5.0) -> bytes:
        """The next frame's body as raw bytes, unparsed (for malformed-frame tests)."""
        async with asyncio.timeout(timeout):
            (length,) = _LENGTH.unpack(await self._reader.readexactly(_LENGTH.size))
            return await self._reader.readexactly(length)

    async def recv_header(self, timeout: float = 5.0) -> int:
        """Read only the next 4-byte length prefix and return it."""
        async with asyncio.timeout(timeout):
            (length,) = _LENGTH.unpack(await self._reader.readexactly(_LENGTH.size))
            return int(length)

    async def recv_remaining(self, timeout: float = 5.0) -> bytes:
        """Every byte up to the server's close, unframed."""
        async with asyncio.timeout(timeout):
            return await self._reader.read()

    async def _read_frame(self) -> Received:
        (length,) = _LENGTH.unpack(await self._reader.readexactly(_LENGTH.size))
        return _parse_frame(await self._reader.readexactly(length))

    async def recv(self, timeout: float = 5.0, *, heartbeats: bool = False) -> Received:
        """The next frame (heartbeats skipped and counted unless ``heartbeats``).

        Raises ``TimeoutError``, or ``asyncio.IncompleteReadError`` when the server closed.
        """
        async with asyncio.timeout(timeout):
            while True:
                received = self.backlog.popleft() if self.backlog else await self._read_frame()
                if received.payload_type == _HEARTBEAT and not heartbeats:
                    self.heartbeats += 1
                    continue
                return received

    async def expect(self, match: int | Callable[[Received], bool], timeout: float = 5.0) -> Received:
        """The first frame matching a payload type or predicate; frames skipped stay in ``backlog``."""
        predicate = match if callable(match) else (lambda r: r.payload_type == match)
        for received in list(self.backlog):
            if predicate(received):
                self.backlog.remove(received)
                return received
        skipped: list[Received] = []
        try:
            async with asyncio.timeout(timeout):
                while True:
                    received = await self._read_frame()
                    if received.payload_type == _HEARTBEAT:
                        self.heartbeats += 1
                        continue
                    if predicate(received):
                        return received
                    skipped.append(received)
        finally:
            self.backlog.extend(skipped)

    async def request(
        self, message: ProtobufMessage, *, timeout: float = 5.0, client_msg_id: str | None = None
    ) -> Received:
        """Send with a fresh ``clientMsgId`` and return the first frame echoing it."""
        cmid = client_msg_id if client_msg_id is not None else f"raw-{next(self._ids)}"
        await self.send(message, client_msg_id=cmid)
        return await self.expect(lambda r: r.client_msg_id == cmid, timeout)

    async def authorize(
        self,
        client_id: str,
        client_secret: str,
        access_token: str | None = None,
        account_ids: Iterable[int] = (),
    ) -> None:
        """Application auth, then account auth for each account; raises ``AssertionError`` on refusal."""
        answer = await self.request(
            pb.ProtoOAApplicationAuthReq(clientId=client_id, clientSecret=client_secret)
        )
        if answer.payload_type != pb.ProtoOAApplicationAuthRes().payloadType:
            raise AssertionError(f"application auth refused: {answer.message}")
        for account_id in account_ids:
            if access_token is None:
                raise ValueError("account auth needs an access token")
            answer = await self.request(
                pb.ProtoOAAccountAuthReq(ctidTraderAccountId=account_id, accessToken=access_token)
            )
            if answer.payload_type != pb.ProtoOAAccountAuthRes().payloadType:
                raise AssertionError(f"account auth of {account_id} refused: {answer.message}")

    async def read_until_closed(self, timeout: float = 5.0) -> list[Received]:
        """Every frame up to the server's close (heartbeats included); ``TimeoutError`` if it stays open."""
        frames = list(self.backlog)
        self.backlog.clear()
        async with asyncio.timeout(timeout):
            while True:
                try:
                    frames.append(await self._read_frame())
                except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                    return frames


# -- the hostile server ----------------------------------------------------------------------------

_APPLICATION_AUTH_REQ: Final = payload_type_of("ProtoOAApplicationAuthReq")
_ACCOUNT_AUTH_REQ: Final = payload_type_of("ProtoOAAccountAuthReq")
_VERSION_REQ: Final = payload_type_of("ProtoOAVersionReq")
_AUTO_ANSWERED: Final = frozenset({_APPLICATION_AUTH_REQ, _ACCOUNT_AUTH_REQ, _VERSION_REQ})

DEFAULT_MAX_FRAME_SIZE: Final = 4 * 1024 * 1024
DEFAULT_MAX_BUFFER_BYTES: Final = 64 * 1024 * 1024
DEFAULT_MAX_BUFFER_FRAMES: Final = 100_000
DEFAULT_MAX_CONNECTIONS: Final = 256


class RawPeer:
    """One client connection to a ``RawServer``, scripted by the test.

    Frames from the client are read as they arrive (by a task of the peer) and handed out
    in order by ``recv`` and ``expect``. Everything is recorded: ``received`` holds every
    frame but heartbeats (auto-answered ones too), ``heartbeats`` counts the heartbeats,
    ``bytes_received`` every byte (prefixes, garbage and incomplete frames included),
    ``partial`` the bytes of a frame not complete yet. A frame that is not a
    ``ProtoMessage`` arrives as ``Received(UNDECODABLE, None, None, body)``.

    Sending never blocks and never fails: bytes are queued on the TLS stream (``drain``
    waits until they are handed to the socket), and bytes sent after the connection closed
    are discarded.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        number: int,
        sni: str | None = None,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_buffer_bytes: int = DEFAULT_MAX_BUFFER_BYTES,
        max_buffer_frames: int = DEFAULT_MAX_BUFFER_FRAMES,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.number = number
        """1 for the server's first connection, 2 for the next, ..."""
        self.peername: Any = writer.get_extra_info("peername")
        self.sni = sni
        """The host name the client sent in its TLS hello (SNI), ``None`` if it sent none."""
        self.received: list[Received] = []
        self.backlog: deque[Received] = deque()
        """Frames ``expect`` skipped, oldest first (``recv`` and ``expect`` look here first)."""
        self.heartbeats = 0
        self.bytes_received = 0
        self.bytes_sent = 0
        self.heartbeats_sent = 0
        self.heartbeat_interval = 1.0
        """Seconds between the heartbeats sent while ``auto_heartbeat`` is on."""
        self.version = "raw-server"
        """What ``serve_auth`` answers ``ProtoOAVersionReq`` with."""
        self.error: str | None = None
        """Why the peer reset the connection on its own (a bound exceeded), if it did."""
        self._max_frame_size = max_frame_size
        self._max_buffer_bytes = max_buffer_bytes
        self._max_buffer_frames = max_buffer_frames
        self._kept_bytes = 0
        self._buffer = bytearray()
        self._inbox: deque[Received] = deque()
        self._arrival = asyncio.Event()
        self._closed = asyncio.Event()
        self._serving_auth = False
        self._auto_heartbeat = False
        self._heartbeat_task: asyncio.Task[None] | None = None
        loop = asyncio.get_running_loop()
        self._reader_task = loop.create_task(self._read_loop(), name=f"RawPeer {number} reader")

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<RawPeer {self.number} {state} received={len(self.received)} heartbeats={self.heartbeats}>"

    # -- state ----------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the client closed the connection, it broke, or we closed it."""
        return self._closed.is_set()

    @property
    def partial(self) -> bytes:
        """Bytes received of a frame that is not complete yet."""
        return bytes(self._buffer)

    async def wait_closed(self, timeout: float | None = 10.0) -> None:
        """Wait until ``closed`` (``TimeoutError`` after ``timeout`` seconds)."""
        async with asyncio.timeout(timeout):
            await self._closed.wait()

    # -- receiving ------------------------------------------------------------------------------

    async def _next(self) -> Received:
        while not self._inbox:
            if self._closed.is_set():
                raise ConnectionError(f"connection {self.number} is closed" + self._why())
            self._arrival.clear()
            await self._arrival.wait()
        return self._inbox.popleft()

    def _why(self) -> str:
        return f" ({self.error})" if self.error else ""

    async def recv(self, timeout: float | None = 10.0, *, skip_heartbeats: bool = True) -> Received:
        """The client's next frame (from ``backlog`` first), heartbeats skipped unless asked for.

        Raises ``TimeoutError``, or ``ConnectionError`` once the connection is closed and
        every frame it brought was handed out.
        """
        async with asyncio.timeout(timeout):
            while True:
                received = self.backlog.popleft() if self.backlog else await self._next()
                if skip_heartbeats and received.payload_type == _HEARTBEAT:
                    continue
                return received

    async def expect(self, message_type: type[ProtobufMessage], timeout: float | None = 10.0) -> Received:
        """The next frame of ``message_type`` (by payload type); the frames before it, and
        heartbeats, are kept in ``backlog``. Raises like ``recv``."""
        wanted = _payload_type_of_class(message_type)
        for received in self.backlog:
            if received.payload_type == wanted:
                self.backlog.remove(received)
                return received
        async with asyncio.timeout(timeout):
            while True:
                received = await self._next()
                if received.payload_type == wanted:
                    return received
                self.backlog.append(received)

    async def _read_loop(self) -> None:
        try:
            while not self._closed.is_set():
                data = await self._reader.read(_CHUNK)
                if not data:
                    break
                self.bytes_received += len(data)
                self._buffer += data
                self._take_frames()
        except (ConnectionError, ssl.SSLError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            if not self._writer.is_closing():
                self._writer.close()
            self._mark_closed()

    def _take_frames(self) -> None:
        buffer = self._buffer
        while len(buffer) >= _LENGTH.size and not self._closed.is_set():
            (length,) = _LENGTH.unpack_from(buffer)
            if length > self._max_frame_size:
                self._overflow(
                    f"the client sent a {length}-byte frame; max_frame_size is {self._max_frame_size}"
                )
                return
            end = _LENGTH.size + length
            if len(buffer) < end:
                return
            body = bytes(buffer[_LENGTH.size : end])
            del buffer[:end]
            self._on_frame(body)

    def _on_frame(self, body: bytes) -> None:
        try:
            received = _parse_frame(body)
        except DecodeError:
            received = Received(UNDECODABLE, None, None, body)
        if received.payload_type == _HEARTBEAT:
            self.heartbeats += 1
        else:
            self.received.append(received)
            self._kept_bytes += len(body)
            if self._kept_bytes > self._max_buffer_bytes:
                self._overflow(f"the client sent more than max_buffer_bytes ({self._max_buffer_bytes})")
                return
            if len(self.received) > self._max_buffer_frames:
                self._overflow(f"the client sent more than max_buffer_frames ({self._max_buffer_frames})")
                return
            if self._serving_auth and self._auto_answer(received):
                return
        if len(self._inbox) + len(self.backlog) >= self._max_buffer_frames:
            self._overflow(f"more than max_buffer_frames ({self._max_buffer_frames}) frames unread")
            return
        self._inbox.append(received)
        self._arrival.set()

    def _overflow(self, reason: str) -> None:
        self.error = reason
        self.abort()

    def _mark_closed(self) -> None:
        self._closed.set()
        self._arrival.set()

    # -- auto answers ---------------------------------------------------------------------------

    def serve_auth(self) -> None:
        """From now on answer ``ProtoOAApplicationAuthReq``, ``ProtoOAAccountAuthReq`` (echoing the
        account id) and ``ProtoOAVersionReq`` (``version``) on arrival, ``clientMsgId`` echoed.

        Such frames already received but not handed out yet are answered at once. Answered
        frames stay in ``received`` but never come out of ``recv`` / ``expect``.
        ``ProtoOARefreshTokenReq`` is not answered: that is the test's to do.
        """
        self._serving_auth = True
        for queue in (self.backlog, self._inbox):
            for received in [r for r in queue if r.payload_type in _AUTO_ANSWERED]:
                if self._auto_answer(received):
                    queue.remove(received)

    def _auto_answer(self, request: Received) -> bool:
        """Answer an auth or version request; ``False`` for anything else (or an unparsable one)."""
        message = request.message
        answer: ProtobufMessage
        if request.payload_type == _APPLICATION_AUTH_REQ and message is not None:
            answer = pb.ProtoOAApplicationAuthRes()
        elif request.payload_type == _ACCOUNT_AUTH_REQ and isinstance(message, pb.ProtoOAAccountAuthReq):
            answer = pb.ProtoOAAccountAuthRes(ctidTraderAccountId=message.ctidTraderAccountId)
        elif request.payload_type == _VERSION_REQ and message is not None:
            answer = pb.ProtoOAVersionRes(version=self.version)
        else:
            return False
        self.answer(request, answer)
        return True

    @property
    def auto_heartbeat(self) -> bool:
        """While true, send a heartbeat every ``heartbeat_interval`` seconds (default off)."""
        return self._auto_heartbeat

    @auto_heartbeat.setter
    def auto_heartbeat(self, on: bool) -> None:
        self._auto_heartbeat = on
        if on and not self.closed and (self._heartbeat_task is None or self._heartbeat_task.done()):
            self._heartbeat_task = asyncio.get_running_loop().create_task(
                self._heartbeat_loop(), name=f"RawPeer {self.number} heartbeats"
            )

    async def _heartbeat_loop(self) -> None:
        while True:
            await self._pause(self.heartbeat_interval, None)
            if not self._auto_heartbeat or self.closed:
                return
            self.send_frame(_HEARTBEAT, b"")
            self.heartbeats_sent += 1

    # -- sending --------------------------------------------------------------------------------

    def send(self, message: ProtobufMessage, *, client_msg_id: str | None = None) -> None:
        """``message`` as a framed ``ProtoMessage`` (payload type from the schema; required
        fields may be missing, the payload is serialised partially)."""
        payload_type = _payload_type_of_class(type(message))
        self.send_frame(payload_type, message.SerializePartialToString(), client_msg_id=client_msg_id)

    def answer(self, request: Received, message: ProtobufMessage) -> None:
        """``send`` with the request's ``clientMsgId`` echoed (none if it had none)."""
        self.send(message, client_msg_id=request.client_msg_id)

    def send_frame(self, payload_type: int, payload: bytes, *, client_msg_id: str | None = None) -> None:
        """A ``ProtoMessage`` envelope of any payload type around any bytes."""
        self.send_bytes(_frame(payload_type, payload, client_msg_id))

    def send_bytes(self, data: bytes) -> None:
        """Bytes as they are on the TLS stream: half frames, garbage, lying length prefixes."""
        if self.closed or self._writer.is_closing() or not data:
            return
        self._writer.write(data)
        self.bytes_sent += len(data)

    async def drain(self) -> None:
        """Wait until what was sent is handed to the socket (returns at once when closed)."""
        if self.closed or self._writer.is_closing():
            return
        with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
            await self._writer.drain()

    async def trickle(self, data: bytes, *, interval: float, stop: asyncio.Event | None = None) -> None:
        """Send ``data`` one byte every ``interval`` seconds, until done, ``stop`` is set or the
        connection closed (a "frame one byte at a time" attack)."""
        if interval < 0:
            raise ValueError("interval must be >= 0")
        for index in range(len(data)):
            if index:
                await self._pause(interval, stop)
            if self.closed or (stop is not None and stop.is_set()):
                return
            self.send_bytes(data[index : index + 1])
            await self.drain()

    async def _pause(self, interval: float, stop: asyncio.Event | None) -> None:
        """Sleep ``interval`` seconds, or less if ``stop`` is set or the connection closes."""
        events = [self._closed] if stop is None else [self._closed, stop]
        waits = [asyncio.ensure_future(event.wait()) for event in events]
        try:
            await asyncio.wait(waits, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    # -- closing --------------------------------------------------------------------------------

    def close(self) -> None:
        """Close gracefully: what was sent goes out first, then TLS close_notify and FIN."""
        if not self._writer.is_closing():
            self._writer.close()
        self._mark_closed()

    def abort(self) -> None:
        """Reset the connection (TCP RST, nothing more is sent)."""
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._writer.transport.abort()
        self._mark_closed()

    async def _finish(self) -> None:
        """Abort and wait for the peer's tasks (``RawServer.close``)."""
        self.abort()
        self._auto_heartbeat = False
        tasks = [t for t in (self._reader_task, self._heartbeat_task) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class RawServer:
    """A TLS server on a throwaway CA for attacking a client frame by frame.

    Make one with ``await RawServer.start()``; ``ssl_context`` is a client-side context that
    trusts its CA (``ca_file``, deleted on ``close``) with hostname checks on; ``accept``
    hands out the connections in the order they came.
    """

    def __init__(
        self,
        host: str,
        directory: Path,
        *,
        cert_hosts: Sequence[str],
        max_connections: int,
        max_frame_size: int,
        max_buffer_bytes: int,
        max_buffer_frames: int,
    ) -> None:
        """Internal: use ``RawServer.start``."""
        self.host = host
        self.port = 0
        self.peers: list[RawPeer] = []
        """Every connection so far (after its TLS handshake), oldest first."""
        self.refused = 0
        """Connections reset at once because ``max_connections`` were reached."""
        self._directory = directory
        self._max_connections = max_connections
        self._limits = {
            "max_frame_size": max_frame_size,
            "max_buffer_bytes": max_buffer_bytes,
            "max_buffer_frames": max_buffer_frames,
        }
        self._pending: asyncio.Queue[RawPeer | None] = asyncio.Queue()
        self._sni: weakref.WeakKeyDictionary[ssl.SSLObject, str] = weakref.WeakKeyDictionary()
        self._server: asyncio.Server | None = None
        self._closed = False
        certificates = make_certificates(directory, hosts=cert_hosts)
        self.ca_file: Path = certificates.ca_file
        self.ssl_context: ssl.SSLContext = certificates.client_context()
        self._server_context = certificates.server_context()
        self._server_context.sni_callback = self._on_sni

    @classmethod
    async def start(
        cls,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        cert_hosts: Sequence[str] = ("localhost", "127.0.0.1"),
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_buffer_bytes: int = DEFAULT_MAX_BUFFER_BYTES,
        max_buffer_frames: int = DEFAULT_MAX_BUFFER_FRAMES,
    ) -> RawServer:
        """Listen on ``host``:``port`` (0: an ephemeral port; give ``host`` as an address) with
        a fresh CA and a server certificate valid for ``cert_hosts``."""
        if isinstance(cert_hosts, str):
            raise TypeError("cert_hosts must be a sequence of host names, not one string")
        for name, value in (
            ("max_connections", max_connections),
            ("max_frame_size", max_frame_size),
            ("max_buffer_bytes", max_buffer_bytes),
            ("max_buffer_frames", max_buffer_frames),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1")
        directory = Path(tempfile.mkdtemp(prefix="ctrader-raw-"))
        try:
            self = cls(
                host,
                directory,
                cert_hosts=cert_hosts,
                max_connections=max_connections,
                max_frame_size=max_frame_size,
                max_buffer_bytes=max_buffer_bytes,
                max_buffer_frames=max_buffer_frames,
            )
            self._server = await asyncio.start_server(
                self._on_connect, host, port, ssl=self._server_context, ssl_handshake_timeout=10.0
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        return self

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{self.host}:{self.port}"
        return f"<RawServer {state} peers={len(self.peers)}>"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _on_sni(self, ssl_object: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext) -> None:
        if server_name is not None:
            self._sni[ssl_object] = server_name

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closed or len(self.peers) >= self._max_connections:
            self.refused += 1
            writer.transport.abort()
            return
        ssl_object = writer.get_extra_info("ssl_object")
        sni = self._sni.pop(ssl_object, None) if ssl_object is not None else None
        peer = RawPeer(reader, writer, number=len(self.peers) + 1, sni=sni, **self._limits)
        self.peers.append(peer)
        self._pending.put_nowait(peer)

    async def accept(self, timeout: float | None = 10.0) -> RawPeer:
        """The next connection not accepted yet, in arrival order (``TimeoutError`` if none
        comes in ``timeout`` seconds; ``RuntimeError`` once the server is closed)."""
        async with asyncio.timeout(timeout):
            peer = await self._pending.get()
        if peer is None:
            self._pending.put_nowait(None)  # wake the next waiter too
            raise RuntimeError("the RawServer is closed")
        return peer

    async def close(self) -> None:
        """Stop listening, reset every connection and delete the CA files (safe twice)."""
        if self._closed:
            return
        self._closed = True
        if self._server is not None:
            self._server.close()
        await asyncio.gather(*(peer._finish() for peer in self.peers))
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await self._server.wait_closed()
        self._pending.put_nowait(None)
        shutil.rmtree(self._directory, ignore_errors=True)
