"""Sans-IO core of the Open API wire protocol: bytes in, envelopes out; requests in, bytes out.

Nothing here touches a socket, a clock or an event loop; the caller passes the time
(``now``, seconds on any monotonic clock) where timing matters. That keeps every rule
of the protocol testable without the network:

* ``FrameDecoder`` splits the TCP byte stream (a 4-byte big-endian length, then that
  many bytes of serialized ``ProtoMessage``) and parses each envelope. A length above
  ``max_frame_size``, an envelope protobuf cannot parse, or one without a payload type
  raises ``RemoteProtocolError``; after that the decoder refuses further input, since
  the stream can no longer be trusted. Given a ``BatchingSink``, it skips the envelope
  parse for the commonest frames (see "The envelope-skipping path" below).
* ``encode_frame`` / ``encode_envelope`` / ``encode_request`` build outgoing frames (the envelope
  encoded by hand, byte for byte what protobuf writes).
* ``KeepAlive`` decides when a heartbeat is due (nothing written for
  ``heartbeat_interval``) and when the link is dead (nothing read for
  ``dead_link_timeout``).
* ``PendingTable`` correlates answers with requests by ``clientMsgId`` and classifies
  what came back (the expected response, an error response, an order error).

What a session consists of (and what a reconnect re-makes) is the client's business:
``ctrader_typed._client.session``.

The envelope-skipping path
--------------------------
An unsolicited event (a spot quote, a depth update ...) is an envelope holding only its
payload type (field 1, a varint) and its payload (field 2, length-delimited); it has no
``clientMsgId`` (field 3). For a payload type of 128..16383 (every ``ProtoOA*`` type) and a
payload under 128 bytes, the first nine bytes of such a frame are always::

    [4-byte frame length] 0x08 [2-byte varint payload type] 0x12 [1-byte payload length]

so one ``struct`` read gives the frame length, the four header bytes as one integer (the
*head*, ``envelope_head(payload_type)``) and the payload length. When the head is one the
sink asked for (``BatchingSink.batch_routes``) and the frame ends exactly where the payload
does, the envelope can hold nothing else, and the payload is parsed straight from the
received buffer. Consecutive such frames of one type are parsed in a tight loop and handed
over as one list (``BatchRoute``). Anything else - another head, a ``clientMsgId``, a longer
payload, a non-canonical varint, a payload that does not parse or build - takes the full
envelope parse and the per-envelope callback, in order, so the sink sees exactly what the
full parse would have given it.
"""

from __future__ import annotations

import enum
import itertools
import struct
from collections.abc import Callable, Mapping
from typing import Any, Final, Generic, Protocol, TypeVar, cast

from google.protobuf.message import DecodeError

from ctrader_typed._generated.OpenApiCommonMessages_pb2 import ProtoMessage as _PbEnvelope
from ctrader_typed.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "ERROR_PAYLOAD_TYPES",
    "HEADER_SIZE",
    "HEARTBEAT_FRAME",
    "HEARTBEAT_PAYLOAD_TYPE",
    "ORDER_ERROR_PAYLOAD_TYPE",
    "Answer",
    "BatchRoute",
    "BatchingSink",
    "FrameDecoder",
    "KeepAlive",
    "KeepAliveAction",
    "PendingTable",
    "encode_envelope",
    "encode_frame",
    "encode_request",
    "envelope_head",
    "envelope_prefix",
]

HEADER_SIZE: Final = 4
DEFAULT_MAX_FRAME_SIZE: Final = 16 * 1024 * 1024
"""16 MiB: symbol lists and long histories can run to several MB; the official Python SDK allows 15 MB."""
MAX_WIRE_LENGTH: Final = 0xFFFFFFFF

HEARTBEAT_PAYLOAD_TYPE: Final = 51
COMMON_ERROR_PAYLOAD_TYPE: Final = 50
OA_ERROR_PAYLOAD_TYPE: Final = 2142
ORDER_ERROR_PAYLOAD_TYPE: Final = 2132
ERROR_PAYLOAD_TYPES: Final = frozenset({COMMON_ERROR_PAYLOAD_TYPE, OA_ERROR_PAYLOAD_TYPE})

_HEADER = struct.Struct(">I")
_unpack_header = _HEADER.unpack_from
_FAST_HEADER = struct.Struct(">IIB")
"""Frame length, the envelope's first four bytes (the head), the payload's one-byte length."""
_unpack_fast = _FAST_HEADER.unpack_from
FAST_PREFIX: Final = _FAST_HEADER.size
"""Bytes before the payload of a frame the envelope-skipping path takes (9)."""
_FAST_ENVELOPE_OVERHEAD: Final = FAST_PREFIX - HEADER_SIZE
"""Bytes of such an envelope that are not payload (5): tag, 2-byte varint, tag, length."""
_FAST_MAX_PAYLOAD: Final = 0x7F
_FAST_MAX_FRAME: Final = _FAST_ENVELOPE_OVERHEAD + _FAST_MAX_PAYLOAD
_pack_header = _HEADER.pack
# upb parses straight from any buffer; the stubs only admit bytes.
_parse_envelope = cast("Callable[[memoryview], _PbEnvelope]", _PbEnvelope.FromString)

Envelope = _PbEnvelope
"""The protobuf class of the envelope (``ProtoMessage``) the decoder hands out."""


def encode_frame(envelope: bytes) -> bytes:
    """Prefix a serialized ``ProtoMessage`` with its 4-byte big-endian length."""
    if len(envelope) > MAX_WIRE_LENGTH:
        raise LocalProtocolError(
            f"message of {len(envelope)} bytes cannot be framed (limit {MAX_WIRE_LENGTH})"
        )
    return _pack_header(len(envelope)) + envelope


_ONE_BYTE: Final = tuple(bytes((n,)) for n in range(0x80))
"""The varint of 0..127: one byte."""
_PAYLOAD_TAG: Final = b"\x12"
"""Field 2 (``payload``), length-delimited."""
_CLIENT_MSG_ID_TAG: Final = b"\x1a"
"""Field 3 (``clientMsgId``), length-delimited."""
_MAX_UINT32: Final = 0xFFFFFFFF


def _varint(value: int) -> bytes:
    """The protobuf base-128 varint of ``value`` (0 or more)."""
    if value < 0x80:
        return _ONE_BYTE[value]
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def envelope_prefix(payload_type: int) -> bytes:
    """The bytes every envelope carrying ``payload_type`` and a payload starts with: field 1 (the
    payload type, a varint) and the tag of field 2. ``encode_request`` takes it, so a sender can
    compute it once per payload type.

    Raises:
        ValueError: ``payload_type`` is not a uint32.
    """
    if type(payload_type) is not int or not 0 <= payload_type <= _MAX_UINT32:
        raise ValueError(f"payload type out of range: {payload_type!r}")
    return b"\x08" + _varint(payload_type) + _PAYLOAD_TAG


def encode_request(prefix: bytes, payload: bytes, client_msg_id: str) -> bytes:
    """One complete frame: the envelope that ``prefix`` (``envelope_prefix``) starts, with
    ``payload`` and ``client_msg_id``. Byte for byte what ``ProtoMessage.SerializeToString`` writes
    (fields in number order, each set field written even when empty), framed.

    Raises:
        LocalProtocolError: The frame would be longer than the length prefix can say.
        UnicodeEncodeError: ``client_msg_id`` is not valid text (a lone surrogate).
    """
    msg_id = client_msg_id.encode()
    size = len(payload)
    id_size = len(msg_id)
    if size < 0x80 and id_size < 0x80:  # the commonest case: both lengths one byte long
        length = len(prefix) + size + id_size + 3
        return (
            _pack_header(length)
            + prefix
            + _ONE_BYTE[size]
            + payload
            + _CLIENT_MSG_ID_TAG
            + _ONE_BYTE[id_size]
            + msg_id
        )
    body = b"".join((prefix, _varint(size), payload, _CLIENT_MSG_ID_TAG, _varint(id_size), msg_id))
    return encode_frame(body)


def encode_envelope(payload_type: int, payload: bytes, client_msg_id: str | None = None) -> bytes:
    """Build one complete frame: envelope with payload type, payload and optional clientMsgId.

    Encoded by hand (``encode_request``), byte for byte what protobuf writes; arguments of other
    types than ``int``, ``bytes`` and ``str`` go through protobuf itself, which accepts or refuses
    them as it always did (``ValueError`` for a payload type out of range, ``TypeError`` for a
    wrong type).
    """
    if (
        type(payload_type) is int
        and 0 <= payload_type <= _MAX_UINT32
        and type(payload) is bytes
        and (client_msg_id is None or type(client_msg_id) is str)
    ):
        prefix = envelope_prefix(payload_type)
        if client_msg_id is not None:
            return encode_request(prefix, payload, client_msg_id)
        return encode_frame(prefix + _varint(len(payload)) + payload)
    envelope = _PbEnvelope(payloadType=payload_type, payload=payload)
    if client_msg_id is not None:
        envelope.clientMsgId = client_msg_id
    return encode_frame(envelope.SerializeToString())


HEARTBEAT_FRAME: Final = encode_envelope(HEARTBEAT_PAYLOAD_TYPE, b"")
"""A ready-made heartbeat frame (``ProtoHeartbeatEvent`` has no fields)."""


def envelope_head(payload_type: int) -> int | None:
    """The first four bytes of an envelope carrying ``payload_type`` and a payload, as a big-endian
    integer (``0x08``, the payload type as a two-byte varint, ``0x12``); ``None`` for a payload
    type whose varint is not two bytes long (below 128 or above 16383), which the
    envelope-skipping path does not take."""
    if not 0x80 <= payload_type <= 0x3FFF:
        return None
    return 0x08 << 24 | (payload_type & 0x7F | 0x80) << 16 | (payload_type >> 7) << 8 | 0x12


BatchRoute = tuple[Callable[[Any], Any], Callable[[Any, bool], Any], Callable[[list[Any]], object]]
"""What a ``BatchingSink`` does with the frames of one head: ``parse`` (the payload's protobuf
``FromString``, given a ``memoryview``), ``build`` (``build(parsed, True)`` makes the object to
deliver) and ``deliver`` (takes a list of those, in order; a run of consecutive frames comes
as one list)."""


class BatchingSink(Protocol):
    """An envelope callback that also takes runs of unsolicited events in batches.

    ``FrameDecoder`` calls it with every envelope, as any ``on_message``; when it also has
    ``batch_routes`` (head, see ``envelope_head``, -> ``BatchRoute``), the frames of those
    heads that carry nothing but a payload type and a short payload skip the envelope parse
    and reach the route's ``deliver`` in lists. The mapping is read at every frame: the sink
    may change it at any time (as streams come and go).
    """

    @property
    def batch_routes(self) -> Mapping[int, BatchRoute]: ...

    def __call__(self, envelope: _PbEnvelope, /) -> object: ...


class FrameDecoder:
    """Turns a byte stream into parsed envelopes, handed one by one to ``on_message``.

    Messages that precede a violation in the same chunk are delivered before the error
    is raised. Frames are parsed straight out of the received bytes when they are whole;
    only a frame split across reads is kept back. When ``on_message`` is a ``BatchingSink``,
    the frames its ``batch_routes`` name skip the envelope parse and reach their route in
    lists (see the module docstring); everything reaches the sink in the order received.
    """

    __slots__ = (
        "_buf",
        "_error",
        "_max",
        "_on_message",
        "_progress",
        "_routes",
        "_stopped",
    )

    def __init__(
        self,
        on_message: Callable[[_PbEnvelope], object],
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        if not 1 <= max_frame_size <= MAX_WIRE_LENGTH:
            raise ValueError(f"max_frame_size must be between 1 and {MAX_WIRE_LENGTH}, not {max_frame_size}")
        self._buf = bytearray()
        self._progress = 0
        self._max = max_frame_size
        self._on_message = on_message
        routes: Mapping[int, BatchRoute] | None = getattr(on_message, "batch_routes", None)
        # Frames the fast path takes are at most 132 bytes: under a smaller limit every frame
        # takes the checked path (where a too-long one is refused).
        self._routes = routes if max_frame_size >= _FAST_MAX_FRAME else None
        self._error: RemoteProtocolError | None = None
        self._stopped = False

    @property
    def max_frame_size(self) -> int:
        return self._max

    @property
    def buffered(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Consume ``data``; call ``on_message`` for every complete envelope in it (or hand the
        runs of frames ``batch_routes`` names to their route, in order).

        Raises:
            RemoteProtocolError: A frame announced more than ``max_frame_size`` bytes, its
                envelope could not be parsed, or it named no payload type. The decoder is
                unusable afterwards.
        """
        if self._error is not None:
            raise self._error
        if self._stopped:
            return
        buf = self._buf
        if buf:
            buf += data
            src: bytes | bytearray | memoryview = buf
        else:
            src = data
        end = len(src)
        pos = 0
        try:
            with memoryview(src) as view:
                pos = self._consume(view, end)
        except BaseException:
            pos = self._progress
            raise
        finally:
            # Keep the unconsumed tail (if any) for the next call, even when raising.
            if self._halted():  # a delivery may have stopped us, or a frame failed
                buf.clear()
            elif src is buf:
                del buf[:pos]
            elif pos < end:
                buf += memoryview(src)[pos:]

    def _consume(self, view: memoryview, end: int) -> int:
        """Deliver every complete frame in ``view[:end]``; return where the first incomplete one
        starts (on an exception, that is in ``self._progress``)."""
        pos = 0
        deliver = self._on_message
        limit = self._max
        routes = self._routes
        unpack_fast = _unpack_fast
        overhead = _FAST_ENVELOPE_OVERHEAD
        try:
            while end - pos >= HEADER_SIZE and not self._stopped:
                if routes and end - pos >= FAST_PREFIX:
                    length, head, size = unpack_fast(view, pos)
                    route = routes.get(head)
                    if route is not None and length == size + overhead and size <= _FAST_MAX_PAYLOAD:
                        stop = pos + HEADER_SIZE + length
                        if stop > end:
                            break  # the rest of this frame is still to come
                        # A run of frames of this head: payloads parsed from the buffer, one list.
                        parse, build, batch = route
                        events: list[Any] = []
                        append = events.append
                        checked = False
                        try:
                            while True:
                                append(build(parse(view[pos + FAST_PREFIX : stop]), True))
                                pos = stop
                                if end - pos < FAST_PREFIX:
                                    break
                                length, following, size = unpack_fast(view, pos)
                                if following != head or length != size + overhead or size > _FAST_MAX_PAYLOAD:
                                    break
                                stop = pos + HEADER_SIZE + length
                                if stop > end:
                                    break
                        except Exception:  # the checked path below reports it as it should
                            checked = True  # the frame at pos did not parse or build
                        if events:
                            batch(events)
                        if not checked or self._stopped:
                            continue
                (length,) = _unpack_header(view, pos)
                if length > limit:
                    raise self._fail(
                        f"frame announces {length} bytes, more than max_frame_size={limit}; "
                        "the stream is corrupt or not an Open API protobuf stream"
                    )
                stop = pos + HEADER_SIZE + length
                if stop > end:
                    break
                try:
                    envelope = _parse_envelope(view[pos + HEADER_SIZE : stop])
                except DecodeError as exc:
                    raise self._fail(f"undecodable envelope in a frame of {length} bytes: {exc}") from exc
                if not envelope.payloadType:
                    raise self._fail(f"envelope without a payload type in a frame of {length} bytes")
                pos = stop
                deliver(envelope)
        except BaseException:
            self._progress = pos
            raise
        return pos

    def _halted(self) -> bool:
        return self._error is not None or self._stopped

    def stop(self) -> None:
        """Deliver nothing more, not even the rest of the chunk being fed (the link is closing)."""
        self._stopped = True  # the buffer is emptied by feed(), which may be holding a view of it now

    def eof(self) -> None:
        """The peer closed the stream.

        Raises:
            RemoteProtocolError: The stream ended inside a frame.
        """
        held_back = self._buf
        held = len(held_back)
        if self._error is None and not self._stopped and held:
            if held >= HEADER_SIZE:
                (length,) = _unpack_header(held_back, 0)
                detail = f"{held - HEADER_SIZE} of {length} bytes of a frame"
            else:
                detail = f"{held} of the {HEADER_SIZE} bytes of a frame header"
            raise self._fail(f"connection closed after {detail}")

    def _fail(self, message: str) -> RemoteProtocolError:
        self._error = RemoteProtocolError(message)
        return self._error


class KeepAliveAction(enum.Enum):
    """What ``KeepAlive.poll`` asks the transport to do."""

    NOTHING = "nothing"
    SEND_HEARTBEAT = "send_heartbeat"
    DEAD = "dead"


class KeepAlive:
    """Heartbeat and dead-link bookkeeping for one connection.

    The transport sets ``last_write`` after every write and ``last_read`` after every
    complete frame read; ``poll(now)`` returns what to do and when to poll next. ``dead_link_timeout=None`` disables the
    dead-link check.
    """

    __slots__ = ("dead_link_timeout", "heartbeat_interval", "last_read", "last_write")

    def __init__(self, *, heartbeat_interval: float, dead_link_timeout: float | None, now: float) -> None:
        if heartbeat_interval <= 0:
            raise ValueError("heartbeat_interval must be positive")
        if dead_link_timeout is not None and dead_link_timeout <= 0:
            raise ValueError("dead_link_timeout must be positive or None")
        self.heartbeat_interval = heartbeat_interval
        self.dead_link_timeout = dead_link_timeout
        self.last_read = now
        self.last_write = now

    def poll(self, now: float) -> tuple[KeepAliveAction, float]:
        """Return the action due at ``now`` and the time of the next poll.

        When a heartbeat is due the caller sends it; the heartbeat counts as a write
        (``last_write`` is set to ``now``), and the returned deadline assumes it.
        """
        if self.dead_link_timeout is not None and now - self.last_read >= self.dead_link_timeout:
            return KeepAliveAction.DEAD, now
        action = KeepAliveAction.NOTHING
        if now - self.last_write >= self.heartbeat_interval:
            action = KeepAliveAction.SEND_HEARTBEAT
            self.last_write = now
        deadline = self.last_write + self.heartbeat_interval
        if self.dead_link_timeout is not None:
            deadline = min(deadline, self.last_read + self.dead_link_timeout)
        return action, deadline

    def silence(self, now: float) -> float:
        """Seconds since the last read."""
        return now - self.last_read


class Answer(enum.Enum):
    """How an inbound message relates to the request it correlates with."""

    RESPONSE = "response"
    ERROR = "error"
    ORDER_ERROR = "order_error"


T = TypeVar("T")


class PendingTable(Generic[T]):
    """Requests in flight, keyed by the ``clientMsgId`` this table hands out.

    Each entry keeps the payload type that answers it and an opaque handle (the client
    stores its future there). Ids are never reused within one table, so an answer that
    arrives after its request was cancelled finds nothing and is treated as an event.
    """

    __slots__ = ("_counter", "_entries", "_prefix")

    def __init__(self, prefix: str = "c") -> None:
        self._prefix = prefix
        self._counter = itertools.count(1)
        self._entries: dict[str, tuple[int, T]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, client_msg_id: object) -> bool:
        return client_msg_id in self._entries

    def add(self, response_payload_type: int, handle: T) -> str:
        """Register a request; return the fresh ``clientMsgId`` to send it with."""
        client_msg_id = f"{self._prefix}{next(self._counter)}"
        self._entries[client_msg_id] = (response_payload_type, handle)
        return client_msg_id

    def discard(self, client_msg_id: str) -> None:
        """Forget a request (answered, timed out or cancelled); unknown ids are ignored."""
        self._entries.pop(client_msg_id, None)

    def match(self, payload_type: int, client_msg_id: str) -> tuple[Answer, T] | None:
        """Classify an inbound message carrying ``client_msg_id``.

        Returns the kind of answer and the request's handle, removing the entry, or
        ``None`` when the message does not answer a pending request (unknown id, or a
        message of another type that merely echoes the id, such as the first spot event
        after a subscription).
        """
        entry = self._entries.get(client_msg_id)
        if entry is None:
            return None
        expected, handle = entry
        if payload_type == expected:
            kind = Answer.RESPONSE
        elif payload_type in ERROR_PAYLOAD_TYPES:
            kind = Answer.ERROR
        elif payload_type == ORDER_ERROR_PAYLOAD_TYPE:
            kind = Answer.ORDER_ERROR
        else:
            return None
        del self._entries[client_msg_id]
        return kind, handle

    def handles(self) -> list[T]:
        """Every pending handle, in the order the requests were added."""
        return [handle for _, handle in self._entries.values()]

    def drain(self) -> list[T]:
        """Remove and return every pending handle (the link dropped)."""
        handles = self.handles()
        self._entries.clear()
        return handles
