"""One client connection to the simulator: framing, heartbeats, idle timeout, test hooks.

Three tasks per connection: the reader (frames in, heartbeats and rate limits handled on
arrival), the worker (requests answered one at a time, in order, optionally delayed) and
the ticker (server heartbeats after outbound silence, close after inbound silence).
All writes go through ``send_frames`` so that ``drop_after_frames`` counts every frame.

Memory stays bounded whatever a client does (the numbers are ``Simulator`` options):

* Backpressure, as a server would apply it: after each answer the worker waits while the
  transport's write buffer is above ``write_buffer_high_water`` (it resumes below a quarter
  of it), so a client that does not read its answers stops having requests answered. The
  requests read meanwhile wait in a queue of at most ``request_queue_limit``; when it is
  full the reader stops reading, and TCP flow control stops the client. Nothing is dropped:
  every request read is answered once the client reads again. (Pushed events - spots,
  executions, heartbeats - do not wait; a connection whose write buffer passes 64 MiB
  (``_MAX_BUFFERED``) is dropped as a client that does not read.)
* Inbound frames: a length prefix above ``max_frame_size`` gets ``ProtoErrorRes``
  ``FRAME_TOO_LONG`` and a close. A frame body of more than ``_SMALL_FRAME`` (4 KiB) bytes
  first reserves its announced length from one budget shared by every connection
  (``inbound_buffer_limit``), held while the body is read and until the request has been
  answered; a frame that does not fit waits (the connection is not read meanwhile) for
  reservations to be released, first come first served. Smaller frames are bounded per
  connection by the queue limit (``request_queue_limit`` x 4 KiB).
* Time spent with reading paused for either reason does not count towards ``idle_timeout``;
  a connection that stops mid-frame does not complete a frame, so it is closed as idle,
  which releases its reservation.
* ``received`` keeps the last ``received_log_limit`` frames (``frames_received`` counts
  them all) and logs at most ``_LOGGED_CMID`` (128) characters of a clientMsgId.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import random
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Final

from google.protobuf.message import Message as ProtobufMessage

from ctrader_typed._generated import OpenApiCommonMessages_pb2 as common_pb
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed._generated.registry import REQUEST_POLICIES
from ctrader_typed.testing._endpoint import TransportName
from ctrader_typed.testing._market import Market
from ctrader_typed.testing._ratelimit import ConnectionLimits, Verdict
from ctrader_typed.testing._settings import Environment, FaultSwitches, SimulatorSettings
from ctrader_typed.testing._wire import HEADER, CorruptFrame, decode_envelope, encode_varint, envelope, frame

__all__ = ["ConnectionContext", "InboundBudget", "Request", "SimConnection", "SpotSubscription", "Token"]

log = logging.getLogger("ctrader_typed.testing")

ERROR_RES: Final = 50
HEARTBEAT: Final = 51
SPOT_EVENT: Final = model_pb.PROTO_OA_SPOT_EVENT
_HEARTBEAT_FRAME: Final = frame(envelope(HEARTBEAT, b""))
_TRENDBAR_TAG: Final = b"\x32"  # ProtoOASpotEvent.trendbar, field 6, length-delimited
_BURST_BATCH: Final = 512
_BURST_WALK: Final = 2048
_SPOT_HEAD: Final = envelope(SPOT_EVENT, b"")[:-1]  # payloadType, then the payload tag; its length follows
_TIMESTAMP_TAG: Final = b"\x40"  # ProtoOASpotEvent.timestamp, field 8, varint
_MAX_BUFFERED: Final = 64 * 1024 * 1024
_SMALL_FRAME: Final = 4 * 1024
"""Frame bodies above this many bytes reserve their length from the shared inbound budget."""
_LOGGED_CMID: Final = 128
"""Characters of a clientMsgId kept in ``SimConnection.received``."""
_REQUESTS: Final = frozenset(REQUEST_POLICIES)
"""Payload types of the schema's requests: only these can be blocked by payload type."""
_ids = itertools.count(1)


class Token(str):
    """An access token that does not show itself in reprs (dicts of them included)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<access token>"


@dataclasses.dataclass(slots=True)
class SpotSubscription:
    account_id: int
    symbol_id: int
    timestamps: bool
    periods: set[int] = dataclasses.field(default_factory=set)


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    """One frame read from a client, waiting to be answered."""

    payload_type: int
    payload: bytes = dataclasses.field(repr=False)  # may carry a secret or a token
    client_msg_id: str | None
    verdict: Verdict | None
    """Why the rate limits refuse it (decided when it was read), or ``None``."""
    reserved: int = 0
    """Bytes of the inbound budget this request holds until it is answered."""


class InboundBudget:
    """Bytes of large inbound frames held by the simulator (being read, or read and not yet
    answered), over all its connections; ``acquire`` waits, first come first served, while a
    reservation would take ``used`` above ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def waiting(self) -> int:
        """Reservations waiting for room."""
        return sum(1 for _, future in self._waiters if not future.done())

    async def acquire(self, size: int) -> None:
        if not self._waiters and self.used + size <= self.limit:
            self.used += size
            return
        future = asyncio.get_running_loop().create_future()
        entry = (size, future)
        self._waiters.append(entry)
        try:
            await future  # granted by _wake, which has added ``size`` to ``used``
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(size)  # granted, but the waiter is gone
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(entry)
                self._wake()
            raise

    def release(self, size: int) -> None:
        if size:
            self.used -= size
            self._wake()

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters:
            size, future = waiters[0]
            if future.done():
                waiters.popleft()
                continue
            if self.used + size > self.limit:
                return
            waiters.popleft()
            self.used += size
            future.set_result(None)


@dataclasses.dataclass(frozen=True, slots=True)
class ConnectionContext:
    """What every connection of one simulator shares with it."""

    settings: SimulatorSettings
    switches: FaultSwitches
    """Server-wide hook state; a connection's own ``answer_delay``/``heartbeats_paused`` win."""
    inbound: InboundBudget
    market: Market
    """Where bursts start their walk from."""
    answer: Callable[[SimConnection, Request], Awaitable[None]]
    """Answers one request (the dispatcher); awaited by the worker, in arrival order."""
    environment: Environment | None = None
    """The accounts the endpoint serves: demo or live only, or ``None`` for both."""


class SimConnection:
    """A live client connection. Public attributes are for tests to inspect.

    Attributes:
        id: Unique, increasing per simulator process.
        transport: How the client reached the endpoint: ``"tls"`` (length-prefixed protobuf),
            ``"websocket"`` (protobuf over WSS), ``"json-websocket"`` or ``"json-tls"``.
        environment: What the endpoint the client connected to serves: ``"demo"`` or
            ``"live"`` accounts only (with ``live_endpoint``), or ``None``: both.
        app_authenticated: ``ProtoOAApplicationAuthReq`` succeeded on this connection.
        accounts: Authorised accounts -> the access token that authorised them (a ``Token``,
            a ``str`` whose repr hides it).
        spots_sent: Spot events pushed so far (technical first events and bursts included).
        spot_log: ``(sequence, symbol_id, bid, ask)`` of every spot event pushed, as sent
            (a side that was not sent is ``None``).
        spot_timestamp_base: With ``spot_timestamps="sequence"`` (an opt-in; the default is
            wall-clock), a spot event's ``timestamp`` is ``spot_timestamp_base + sequence``.
        received: ``(monotonic time, payload type, clientMsgId)`` of the last
            ``received_log_limit`` frames received (a ``deque``; clientMsgIds cut to 128
            characters).
        frames_received: Frames received in all (heartbeats included).
        frames_sent: Frames written to the socket.
        reading_paused: The reader is waiting: the request queue is full (answers are not
            being read) or a large frame waits for room in the inbound budget.
        answers_paused: The worker is waiting for the write buffer to drain.
        inbound_reserved: Bytes of the shared inbound budget this connection holds.
    """

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, context: ConnectionContext
    ) -> None:
        settings = context.settings
        self.id = next(_ids)
        self._context = context
        self._settings = settings
        self._reader = reader
        self._writer = writer
        self.environment = context.environment
        self.peer = writer.get_extra_info("peername")
        self.transport: TransportName = writer.get_extra_info("ctrader_transport", "tls")
        self.opened_at = time.time()
        self.app_authenticated = False
        self.accounts: dict[int, Token] = {}
        self.spot_subscriptions: dict[tuple[int, int], SpotSubscription] = {}
        self.depth_subscriptions: set[tuple[int, int]] = set()
        self.spots_sent = 0
        self.spot_log: deque[tuple[int, int, int | None, int | None]] = deque(maxlen=settings.spot_log_limit)
        self.spot_timestamp_base = int(self.opened_at * 1000)
        self._last_spot_timestamp = 0
        self.received: deque[tuple[float, int, str | None]] = deque(maxlen=settings.received_log_limit)
        self.frames_received = 0
        self.frames_sent = 0
        self.reading_paused = False
        self.answers_paused = False
        self.inbound_reserved = 0
        self.answer_delay: float | None = None
        self.heartbeats_paused: bool | None = None
        self.closed = False
        self._drop_after: int | None = None
        self._drop_instead_of_answering = False
        self._limiter = ConnectionLimits(
            limit=settings.request_limit,
            historical_limit=settings.historical_limit,
            block_seconds=settings.rate_limit_block,
            clock=settings.rate_limit_clock,
        )
        self._queue: asyncio.Queue[Request] = asyncio.Queue(maxsize=settings.request_queue_limit)
        self._reading: asyncio.Task[None] | None = None
        writer.transport.set_write_buffer_limits(high=settings.write_buffer_high_water)
        self._last_in = time.monotonic()
        self._last_out = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []
        self._burst_rng = random.Random(settings.seed * 65_537 + self.id)  # noqa: S311 - simulation only

    def __repr__(self) -> str:
        return f"<SimConnection id={self.id} accounts={sorted(self.accounts)} closed={self.closed}>"

    @property
    def requests_queued(self) -> int:
        """Requests read and not yet taken by the worker."""
        return self._queue.qsize()

    @property
    def write_buffer_size(self) -> int:
        """Bytes written and not yet taken by the socket (TLS and transport buffers)."""
        return self._writer.transport.get_write_buffer_size()

    # -- lifecycle ------------------------------------------------------------------------------

    async def serve(self) -> None:
        """Run the connection until the peer or the simulator closes it."""
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._work()), loop.create_task(self._tick())]
        reading = self._reading = loop.create_task(self._read())
        try:
            await asyncio.wait({reading})
            if not reading.cancelled():
                reading.result()  # a reader bug surfaces here
        finally:
            self.closed = True
            for task in (reading, *self._tasks):
                task.cancel()
            await asyncio.gather(reading, *self._tasks, return_exceptions=True)
            self._context.inbound.release(self.inbound_reserved)
            self.inbound_reserved = 0
            self._abort_if_open()

    def close(self) -> None:
        """Close gracefully: flush what was written, then TLS close_notify and FIN."""
        if self.closed:
            return
        self.closed = True
        self._writer.close()
        self._stop_paused_reader()

    def abort(self) -> None:
        """Drop the connection at once, discarding unsent data."""
        self.closed = True
        self._abort_if_open()
        self._stop_paused_reader()

    def _stop_paused_reader(self) -> None:
        """A reader waiting for room reads no socket, so a close would not reach it."""
        if self.reading_paused and self._reading is not None:
            self._reading.cancel()

    def _abort_if_open(self) -> None:
        transport = self._writer.transport
        if not transport.is_closing():
            transport.abort()
        else:
            # A graceful close may hang on an unresponsive peer: make sure it ends.
            asyncio.get_running_loop().call_later(2.0, transport.abort)

    # -- reading --------------------------------------------------------------------------------

    async def _read(self) -> None:
        reader = self._reader
        max_frame_size = self._settings.max_frame_size
        inbound = self._context.inbound
        queue = self._queue
        try:
            while not self.closed:
                header = await reader.readexactly(HEADER.size)
                (length,) = HEADER.unpack(header)
                if length > max_frame_size:
                    self.send_common_error("FRAME_TOO_LONG", "Frame size exceeds allowed limit.")
                    self.close()
                    return
                reserved = 0
                if length > _SMALL_FRAME:
                    if length > inbound.limit:  # would never fit (the limit was lowered)
                        self.send_common_error("FRAME_TOO_LONG", "Frame size exceeds allowed limit.")
                        self.close()
                        return
                    await self._paused(inbound.acquire(length))
                    reserved = length
                    self.inbound_reserved += length
                body = await reader.readexactly(length)
                self._last_in = time.monotonic()
                try:
                    message = decode_envelope(body)
                except CorruptFrame:
                    self.send_common_error("UNKNOWN_ERROR", "Corrupted frame.")
                    self.close()
                    return
                del body
                request = self._on_message(message, reserved)
                if request is None:
                    self._release(reserved)
                elif queue.full():
                    await self._paused(queue.put(request))
                else:
                    queue.put_nowait(request)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, OSError):
            return

    async def _paused(self, waiting: Coroutine[object, object, None]) -> None:
        """Wait with reading paused; the pause does not count as idle time."""
        self.reading_paused = True
        try:
            await waiting
        finally:
            self.reading_paused = False
            self._last_in = time.monotonic()

    def _release(self, reserved: int) -> None:
        if reserved:
            self.inbound_reserved -= reserved
            self._context.inbound.release(reserved)

    def _on_message(self, message: common_pb.ProtoMessage, reserved: int) -> Request | None:
        """Log and rate-limit one frame; the request to queue (``None`` for a heartbeat)."""
        client_msg_id = message.clientMsgId if message.HasField("clientMsgId") else None
        payload_type = message.payloadType
        self.frames_received += 1
        logged = (
            client_msg_id
            if client_msg_id is None or len(client_msg_id) <= _LOGGED_CMID
            else client_msg_id[:_LOGGED_CMID]
        )
        self.received.append((time.monotonic(), payload_type, logged))
        if payload_type == HEARTBEAT:
            return None
        switches = self._context.switches
        verdict = self._limiter.check(  # every frame but heartbeats counts, refused or not
            payload_type,
            enabled=switches.rate_limits,
            mode=switches.rate_limit_mode,
            blockable=payload_type in _REQUESTS,
        )
        return Request(payload_type, message.payload, client_msg_id, verdict, reserved)

    async def _work(self) -> None:
        high_water = self._settings.write_buffer_high_water
        switches = self._context.switches
        answer = self._context.answer
        transport = self._writer.transport
        while True:
            request = await self._queue.get()
            delay = self.answer_delay if self.answer_delay is not None else switches.answer_delay
            if delay > 0:
                await asyncio.sleep(delay)
            if self.closed:
                return  # serve() releases what the queue still holds
            if self._drop_instead_of_answering:
                self.closed = True  # mute: the request takes effect, its answers are never written
            try:
                await answer(self, request)
            except Exception:  # a simulator bug must not look like a protocol answer
                log.exception("simulator failed to handle payload type %s", request.payload_type)
                self.send_common_error("UNKNOWN_ERROR", "Internal simulator error", request.client_msg_id)
            finally:
                self._release(request.reserved)
            del request
            if self._drop_instead_of_answering:
                self._abort_if_open()
                return
            if transport.get_write_buffer_size() >= high_water:
                self.answers_paused = True
                try:
                    await self._drain()
                finally:
                    self.answers_paused = False
            else:
                await self._drain()

    async def _tick(self) -> None:
        settings = self._settings
        switches = self._context.switches
        while not self.closed:
            interval = max(0.005, min(1.0, settings.heartbeat_interval / 4, settings.idle_timeout / 4))
            await asyncio.sleep(interval)
            now = time.monotonic()
            if not self.reading_paused and now - self._last_in >= settings.idle_timeout:
                log.info("connection %s idle for %.1fs: closing", self.id, now - self._last_in)
                self.close()
                return
            paused = (
                self.heartbeats_paused if self.heartbeats_paused is not None else switches.heartbeats_paused
            )
            if not paused and now - self._last_out >= settings.heartbeat_interval:
                self.send_frames([_HEARTBEAT_FRAME])

    async def _drain(self) -> None:
        if self.closed:
            return
        with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
            await self._writer.drain()

    # -- writing --------------------------------------------------------------------------------

    def send_frames(self, frames: list[bytes]) -> int:
        """Write whole frames; honours ``drop_after_frames``. Returns how many were written."""
        if self.closed or self._writer.transport.is_closing():
            return 0
        if self._drop_after is not None:
            frames = frames[: self._drop_after]
            self._drop_after -= len(frames)
        if frames:
            self._writer.write(b"".join(frames) if len(frames) > 1 else frames[0])
            self.frames_sent += len(frames)
            self._last_out = time.monotonic()
        if self._drop_after == 0:
            self._drop_after = None
            self.close()
        elif self._writer.transport.get_write_buffer_size() > _MAX_BUFFERED:
            log.warning("connection %s does not read: dropping it", self.id)
            self.abort()
        return len(frames)

    def send(self, payload_type: int, message: ProtobufMessage, client_msg_id: str | None = None) -> None:
        self.send_frames([frame(envelope(payload_type, message.SerializeToString(), client_msg_id))])

    def send_error(
        self,
        code: str,
        description: str,
        client_msg_id: str | None = None,
        *,
        account_id: int | None = None,
        retry_after: int | None = None,
        maintenance_end_s: int | None = None,
    ) -> None:
        """``ProtoOAErrorRes``."""
        error = pb.ProtoOAErrorRes(errorCode=code, description=description)
        if account_id is not None:
            error.ctidTraderAccountId = account_id
        if retry_after is not None:
            error.retryAfter = retry_after
        if maintenance_end_s is not None:
            error.maintenanceEndTimestamp = maintenance_end_s
        self.send(model_pb.PROTO_OA_ERROR_RES, error, client_msg_id)

    def send_common_error(self, code: str, description: str, client_msg_id: str | None = None) -> None:
        """``ProtoErrorRes`` (payload type 50): protocol-level failures."""
        self.send(ERROR_RES, common_pb.ProtoErrorRes(errorCode=code, description=description), client_msg_id)

    # -- spots ----------------------------------------------------------------------------------

    def _spot_frame(
        self,
        account_id: int,
        symbol_id: int,
        bid: int | None,
        ask: int | None,
        timestamps: bool,
        trendbars: Iterable[bytes] = (),
        session_close: int | None = None,
    ) -> bytes:
        self.spots_sent += 1
        sequence = self.spots_sent
        event = pb.ProtoOASpotEvent(ctidTraderAccountId=account_id, symbolId=symbol_id)
        if bid is not None:
            event.bid = bid
        if ask is not None:
            event.ask = ask
        if session_close is not None:
            event.sessionClose = session_close
        if timestamps:
            if self._settings.spot_timestamps == "sequence":
                event.timestamp = self.spot_timestamp_base + sequence
            else:
                stamp = max(self._context.market.now(), self._last_spot_timestamp + 1)
                self._last_spot_timestamp = stamp
                event.timestamp = stamp
        payload = event.SerializeToString()
        if trendbars:
            payload += b"".join(_TRENDBAR_TAG + encode_varint(len(bar)) + bar for bar in trendbars)
        self.spot_log.append((sequence, symbol_id, bid, ask))
        return frame(envelope(SPOT_EVENT, payload))

    def send_spot(
        self,
        subscription: SpotSubscription,
        bid: int | None,
        ask: int | None,
        trendbars: Iterable[bytes] = (),
        session_close: int | None = None,
    ) -> None:
        if self.closed or self._writer.transport.is_closing():
            return  # not sent: it must not take a sequence number (spots_sent counts what was written)
        self.send_frames(
            [
                self._spot_frame(
                    subscription.account_id,
                    subscription.symbol_id,
                    bid,
                    ask,
                    subscription.timestamps,
                    trendbars,
                    session_close,
                )
            ]
        )

    async def burst(self, count: int, account_id: int | None, symbol_id: int | None) -> int:
        """Push ``count`` spot events as fast as the socket takes them; returns how many were sent."""
        targets = [
            (s.account_id, s.symbol_id, s.timestamps)
            for s in self.spot_subscriptions.values()
            if (account_id is None or s.account_id == account_id)
            and (symbol_id is None or s.symbol_id == symbol_id)
        ]
        if not targets and account_id is not None and symbol_id is not None and account_id in self.accounts:
            targets = [(account_id, symbol_id, True)]
        if not targets or count <= 0:
            return 0
        plans = [self._burst_plan(*target) for target in targets]
        clock_stamps = self._settings.spot_timestamps == "clock"
        base = self.spot_timestamp_base
        last_stamp = self._last_spot_timestamp
        sequence = self.spots_sent
        log = self.spot_log
        pack = HEADER.pack
        sent = 0
        while sent < count and not self.closed:
            batch: list[bytes] = []
            entries: list[tuple[int, int, int | None, int | None]] = []
            now = self._context.market.now()
            for n in range(sent, min(count, sent + _BURST_BATCH)):
                prefix, symbol_id, timestamps, prices, bids, asks = plans[n % len(plans)]
                step = (n // len(plans)) % (2 * len(prices))
                index = step if step < len(prices) else 2 * len(prices) - 1 - step  # walk there and back
                sequence += 1
                payload = prefix + prices[index]
                if timestamps:
                    if clock_stamps:
                        last_stamp = stamp = max(now, last_stamp + 1)
                    else:
                        stamp = base + sequence
                    payload += _TIMESTAMP_TAG + encode_varint(stamp)
                body = _SPOT_HEAD + bytes((len(payload),)) + payload  # at most 55 bytes: one-byte length
                batch.append(pack(len(body)) + body)
                entries.append((sequence, symbol_id, bids[index], asks[index]))
            written = self.send_frames(batch)
            sent += written
            self.spots_sent += written
            log.extend(entries[:written])
            if written < len(batch):
                break  # dropped mid-burst: what was built but not written was never sent
            await self._drain()
        self._last_spot_timestamp = last_stamp
        return sent

    def _burst_plan(
        self, account_id: int, symbol_id: int, timestamps: bool
    ) -> tuple[bytes, int, bool, list[bytes], list[int], list[int]]:
        """Pre-encoded pieces of one burst target's spot events: a short random walk of quotes
        from the current one (walked back and forth), with the fixed fields encoded once."""
        state = self._context.market.symbols[symbol_id]
        step, spread = state.spec.step, state.ask - state.bid
        rng = self._burst_rng
        bids: list[int] = []
        bid = state.bid
        for _ in range(_BURST_WALK):
            bid = max(step, bid + step * rng.randint(-3, 3))
            bids.append(bid)
        asks = [b + spread for b in bids]
        prices = [
            b"\x20" + encode_varint(b) + b"\x28" + encode_varint(a) for b, a in zip(bids, asks, strict=True)
        ]
        prefix = b"\x10" + encode_varint(account_id) + b"\x18" + encode_varint(symbol_id)
        return prefix, symbol_id, timestamps, prices, bids, asks

    # -- hooks ----------------------------------------------------------------------------------

    def drop_after_frames(self, count: int) -> None:
        """Close the connection right after ``count`` more frames have been written."""
        if count <= 0:
            self.close()
        else:
            self._drop_after = count

    def drop_instead_of_answering(self) -> None:
        """Handle the next request as usual (an order is executed) but drop the connection
        instead of writing its answers: the client cannot know whether it was acted on."""
        self._drop_instead_of_answering = True

    def block_payload_type(self, payload_type: int, seconds: float) -> None:
        self._limiter.block(payload_type, seconds)

    def send_garbage(self) -> None:
        """A well-framed body that is not a ``ProtoMessage``."""
        self.send_frames([frame(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff")])

    def send_oversized_frame(self, size: int = 256 * 1024 * 1024) -> None:
        """Announce a frame of ``size`` bytes and send only its first KiB."""
        self.send_frames([HEADER.pack(size) + bytes(1024)])

    def send_half_frame_then_close(self) -> None:
        """Write the first half of a spot event's frame, then close: the peer sees a truncated frame."""
        full = frame(
            envelope(SPOT_EVENT, pb.ProtoOASpotEvent(ctidTraderAccountId=1, symbolId=1).SerializeToString())
        )
        self.send_frames([full[: len(full) // 2]])
        self.close()

    def send_undecodable_payload(self, payload_type: int = SPOT_EVENT) -> None:
        """A valid envelope whose payload cannot be parsed as ``payload_type``."""
        self.send_frames([frame(envelope(payload_type, b"\x0a\xff\xff\xff"))])

    def send_unknown_payload_type(self, payload_type: int = 9999) -> None:
        self.send_frames([frame(envelope(payload_type, b"\x08\x01"))])
