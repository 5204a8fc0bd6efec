"""Bare asyncio TLS endpoints with no SDK code in the path: the baselines' plumbing.

* ``RawLink``: an ``asyncio.Protocol`` over TLS that frames with ``struct`` itself. It can
  hand whole envelopes to a queue (for a handshake), or just count spot frames, or count
  and keep the raw bytes, or count, parse and keep nothing (what a hand-written client
  would do at best).
* ``EchoServer``: a TLS server that writes back whatever it reads.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
from collections.abc import Callable
from typing import Final, Literal, cast

from ctrader_typed._generated import OpenApiCommonMessages_pb2 as common_pb
from ctrader_typed._generated import OpenApiMessages_pb2 as pb

HEADER: Final = struct.Struct(">I")
SPOT_EVENT: Final = 2131

Mode = Literal["handshake", "count", "capture", "parse"]
# upb parses straight from any buffer; the stubs only admit bytes.
_parse_envelope = cast("Callable[[memoryview], common_pb.ProtoMessage]", common_pb.ProtoMessage.FromString)


def frame(payload_type: int, payload: bytes, client_msg_id: str | None = None) -> bytes:
    envelope = common_pb.ProtoMessage(payloadType=payload_type, payload=payload)
    if client_msg_id is not None:
        envelope.clientMsgId = client_msg_id
    body = envelope.SerializeToString()
    return HEADER.pack(len(body)) + body


class RawLink(asyncio.Protocol):
    """One raw connection; see the module docstring for the modes."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.mode: Mode = "handshake"
        self.envelopes: asyncio.Queue[common_pb.ProtoMessage] = asyncio.Queue()
        self.spots = 0
        self.target = 0
        self.reached: asyncio.Future[float] | None = None
        self.captured = bytearray()
        self._buf = bytearray()
        self._answer: asyncio.Future[common_pb.ProtoMessage] | None = None
        self._answer_type = 0
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def expect(self, spots: int) -> asyncio.Future[float]:
        """A future resolved with ``perf_counter()`` once ``spots`` more spot frames arrived."""
        self.spots = 0
        self.target = spots
        self.reached = asyncio.get_running_loop().create_future()
        return self.reached

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        end = len(buf)
        pos = 0
        unpack = HEADER.unpack_from
        mode = self.mode
        spots = 0
        parse_envelope = _parse_envelope
        parse_spot = pb.ProtoOASpotEvent.FromString
        with memoryview(buf) as view:
            while end - pos >= 4:
                (length,) = unpack(view, pos)
                start = pos + 4
                stop = start + length
                if stop > end:
                    break
                if mode == "count" or mode == "capture":
                    spots += 1
                elif mode == "parse":
                    envelope = parse_envelope(view[start:stop])
                    if envelope.payloadType == SPOT_EVENT:
                        parse_spot(envelope.payload).bid  # noqa: B018 - read a field, as a consumer would
                        spots += 1
                else:
                    envelope = parse_envelope(view[start:stop])
                    waiter = self._answer
                    if waiter is not None and envelope.payloadType == self._answer_type:
                        self._answer = None
                        waiter.set_result(envelope)
                    elif envelope.payloadType != 51:
                        self.envelopes.put_nowait(envelope)
                pos = stop
            if mode == "capture":
                self.captured += view[:pos]
        del buf[:pos]
        if spots:
            self.spots += spots
            if self.reached is not None and self.spots >= self.target and not self.reached.done():
                self.reached.set_result(asyncio.get_running_loop().time())

    def send(self, payload_type: int, payload: bytes, client_msg_id: str | None = None) -> None:
        assert self.transport is not None
        self.transport.write(frame(payload_type, payload, client_msg_id))

    async def request(self, payload_type: int, payload: bytes, answer: int) -> common_pb.ProtoMessage:
        """Send and wait for the envelope of payload type ``answer`` (handshake mode)."""
        self.send(payload_type, payload)
        while True:
            envelope = await asyncio.wait_for(self.envelopes.get(), 30.0)
            if envelope.payloadType == answer:
                return envelope
            if envelope.payloadType in (50, 2142):
                raise RuntimeError(f"error answer {envelope.payloadType}: {envelope.payload!r}")

    async def round_trip(self, payload_type: int, payload: bytes, answer: int) -> common_pb.ProtoMessage:
        """Send and wait for the answer's envelope, with nothing in between (handshake mode):
        the leanest request a hand-written asyncio client can make."""
        waiter: asyncio.Future[common_pb.ProtoMessage] = asyncio.get_running_loop().create_future()
        self._answer = waiter
        self._answer_type = answer
        self.send(payload_type, payload, "c1")
        return await waiter

    async def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        await asyncio.wait_for(asyncio.shield(self.closed), 10.0)


async def open_raw(host: str, port: int, context: ssl.SSLContext) -> RawLink:
    loop = asyncio.get_running_loop()
    _, link = await loop.create_connection(RawLink, host, port, ssl=context, server_hostname=host)
    return link


async def raw_spot_session(
    host: str, port: int, context: ssl.SSLContext, info: dict[str, object], account_id: int
) -> RawLink:
    """Application + account auth and a spot subscription to every symbol, with timestamps."""
    link = await open_raw(host, port, context)
    await link.request(
        2100,
        pb.ProtoOAApplicationAuthReq(
            clientId=str(info["client_id"]), clientSecret=str(info["client_secret"])
        ).SerializeToString(),
        2101,
    )
    await link.request(
        2102,
        pb.ProtoOAAccountAuthReq(
            ctidTraderAccountId=account_id, accessToken=str(info["access_token"])
        ).SerializeToString(),
        2103,
    )
    await link.request(
        2127,
        pb.ProtoOASubscribeSpotsReq(
            ctidTraderAccountId=account_id, symbolId=list(range(1, 11)), subscribeToSpotTimestamp=True
        ).SerializeToString(),
        2128,
    )
    return link


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def echo_server(host: str, context: ssl.SSLContext) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(_Echo, host, 0, ssl=context)


class EchoClient(asyncio.Protocol):
    """Writes one frame and waits until as many bytes came back: the round trip's floor."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._want = 0
        self._got = 0
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._got += len(data)
        if self._got >= self._want and self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def round_trip(self, data: bytes) -> None:
        assert self.transport is not None
        self._want = len(data)
        self._got = 0
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        await self._waiter
