"""``RawClient``: a bare protocol client for tests at the frame level.

Plain ``asyncio`` TLS streams and the protobuf classes, nothing of the SDK: it frames with
``struct`` on its own (independently of both the simulator's and the client's framing), so
protocol tests of the simulator do not depend on the code they check.

::

    async with await RawClient.connect(sim.host, sim.port, sim.ssl_context) as raw:
        answer = await raw.request(ProtoOAVersionReq())
        assert answer.payload_type == 2105
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import ssl
import struct
from collections import deque
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Final, Self

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtobufMessage

from ctrader_typed._generated import OpenApiCommonMessages_pb2 as common_pb
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated.registry import PAYLOAD_TYPES, payload_type_of

__all__ = ["RawClient", "Received"]

_LENGTH: Final = struct.Struct(">I")
_HEARTBEAT: Final = 51


@dataclasses.dataclass(frozen=True, slots=True)
class Received:
    """One frame from the server. ``message`` is ``None`` if the payload could not be parsed."""

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
        envelope = common_pb.ProtoMessage.FromString(await self._reader.readexactly(length))
        client_msg_id = envelope.clientMsgId if envelope.HasField("clientMsgId") else None
        message: ProtobufMessage | None = None
        wrapper = PAYLOAD_TYPES.get(envelope.payloadType)
        if wrapper is not None:
            try:
                message = wrapper.PROTO.FromString(envelope.payload)
            except DecodeError:
                message = None
        return Received(envelope.payloadType, client_msg_id, message, envelope.payload)

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
