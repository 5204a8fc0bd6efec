"""Fuzzing the inbound path: arbitrary byte streams, split at arbitrary points, give frames or a
``ProtocolError`` - never another exception, a hang or unbounded buffering - and arbitrary payloads
give a fully readable message or a decode error.

Each property runs ``CTRADER_FUZZ_EXAMPLES`` examples: 200 by default, a quick pass in the everyday run;
``.ci/run`` runs 2,000 (``nox -s fuzz -- 2000``) and ``nox -s fuzz`` alone 100,000.

* ``test_framing_matches_a_reference_whatever_the_split``: the sans-IO ``FrameDecoder`` against a
  ten-line reference reading of the wire format, over streams mixing valid frames, truncated
  frames, arbitrary length prefixes and garbage, fed in arbitrary chunks, with frame limits from
  16 bytes to the default 16 MiB.
* ``test_the_client_inbound_path_yields_events_or_a_protocol_error``: the same streams through the
  decoder into the callback the client installs on every link (``AsyncClient._on_envelope``), with
  a stream listening to every event type: exactly the events the reference predicts come out, or
  ``RemoteProtocolError``.
* ``test_payloads_decode_to_readable_messages_or_fail_cleanly``: every message wrapper of the schema
  over valid, mutated and random payloads.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctrader_typed import AsyncClient, ClientDisconnectEvent, UnknownMessage
from ctrader_typed._base import Wrapper
from ctrader_typed._framing import (
    DEFAULT_MAX_FRAME_SIZE,
    HEADER_SIZE,
    Envelope,
    FrameDecoder,
    encode_envelope,
)
from ctrader_typed._generated.messages import CommonErrorRes, ErrorRes
from ctrader_typed._generated.registry import PAYLOAD_TYPES
from ctrader_typed.errors import ProtocolError, RemoteProtocolError, api_error_from
from tests.unit.strategies import messages_of

pytestmark = pytest.mark.fuzz

DEFAULT_EXAMPLES = 200
"""Examples per property when ``CTRADER_FUZZ_EXAMPLES`` is not set."""

EXAMPLES = int(os.environ.get("CTRADER_FUZZ_EXAMPLES", str(DEFAULT_EXAMPLES)))
"""Examples per property (``nox -s fuzz`` sets 100,000, or the count given after ``--``)."""

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

HEADER = struct.Struct(">I")
CLASSES: list[tuple[int, type[Wrapper]]] = sorted(PAYLOAD_TYPES.items())
EVENT_TYPES: tuple[type[Any], ...] = (*(cls for _, cls in CLASSES), UnknownMessage)
UNKNOWN_PAYLOAD_TYPES = st.sampled_from([1, 49, 52, 2099, 2300, 9999, 2**31 - 1])


# -- strategies -----------------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, raw: bytes) -> bytes:
    """``raw`` with one edit: a flipped byte, a cut, an insertion or a deletion."""
    if not raw:
        return draw(st.binary(min_size=1, max_size=8))
    at = draw(st.integers(0, len(raw) - 1))
    edit = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
    if edit == "flip":
        return raw[:at] + bytes([raw[at] ^ draw(st.integers(1, 255))]) + raw[at + 1 :]
    if edit == "cut":
        return raw[:at]
    if edit == "insert":
        return raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    return raw[:at] + raw[at + draw(st.integers(1, 8)) :]


@st.composite
def payloads(draw: st.DrawFn) -> tuple[int, bytes]:
    """A payload type (known or not) and a payload: valid for that type, mutated, or random."""
    if draw(st.integers(0, 9)) == 0:
        return draw(UNKNOWN_PAYLOAD_TYPES), draw(st.binary(max_size=24))
    payload_type, cls = draw(st.sampled_from(CLASSES))
    kind = draw(st.sampled_from(["valid", "mutated", "random"]))
    if kind == "random":
        return payload_type, draw(st.binary(max_size=48))
    raw = draw(messages_of(cls.PROTO)).SerializeToString()
    return payload_type, draw(mutated(raw)) if kind == "mutated" else raw


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """One valid frame: an envelope with a payload type, a payload and maybe a clientMsgId."""
    payload_type, payload = draw(payloads())
    envelope = Envelope(payloadType=payload_type, payload=payload)
    if draw(st.booleans()):
        envelope.clientMsgId = draw(st.text(max_size=8))
    body = envelope.SerializeToString()
    return HEADER.pack(len(body)) + body


SEGMENTS = st.one_of(
    frames(),
    frames(),  # twice as likely as each kind of breakage
    frames().flatmap(lambda f: st.integers(0, len(f) - 1).map(lambda n: f[:n])),  # truncated
    st.integers(0, 2**32 - 1).map(HEADER.pack),  # any length prefix
    st.binary(min_size=1, max_size=32),  # garbage
)
STREAMS = st.lists(SEGMENTS, max_size=8).map(b"".join)
LIMITS = st.sampled_from([16, 64, 1024, DEFAULT_MAX_FRAME_SIZE])


def split(stream: bytes, cuts: list[int]) -> Iterator[bytes]:
    bounds = [0, *sorted(c % (len(stream) + 1) for c in cuts), len(stream)]
    for start, stop in itertools.pairwise(bounds):
        yield stream[start:stop]


# -- the reference reading of the wire format ------------------------------------------------------


def reference(stream: bytes, max_frame_size: int) -> tuple[list[Envelope], bool]:
    """Every envelope a correct decoder delivers from the whole stream, and whether it must then
    report a protocol error (a length over the limit, an unparsable or untyped envelope, or the
    stream ending inside a frame)."""
    envelopes: list[Envelope] = []
    pos = 0
    while len(stream) - pos >= HEADER_SIZE:
        (length,) = HEADER.unpack_from(stream, pos)
        end = pos + HEADER_SIZE + length
        if length > max_frame_size or end > len(stream):
            return envelopes, True
        try:
            envelope = Envelope.FromString(stream[pos + HEADER_SIZE : end])
        except DecodeError:
            return envelopes, True
        if not envelope.payloadType:
            return envelopes, True
        envelopes.append(envelope)
        pos = end
    return envelopes, pos != len(stream)


def decode(chunks: Iterator[bytes], decoder: FrameDecoder, max_frame_size: int) -> bool:
    """Feed the chunks and then the end of the stream; True if a protocol error was raised. The
    buffer never holds more than one incomplete frame of at most the limit."""
    fed = 0
    try:
        for chunk in chunks:
            decoder.feed(chunk)
            fed += len(chunk)
            assert decoder.buffered <= min(fed, HEADER_SIZE + max_frame_size - 1)
        decoder.eof()
    except RemoteProtocolError:
        return True
    assert decoder.buffered == 0
    return False


def read_everything(value: object) -> None:
    """Read every field, nested messages and lazily wrapped repeated fields included, and the repr:
    a decoding problem must surface when decoding, not when the caller reads a field."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            read_everything(getattr(value, field.name))
        repr(value)
    elif isinstance(value, tuple):
        for item in value:
            read_everything(item)


# -- properties -----------------------------------------------------------------------------------


@FUZZ
@given(stream=STREAMS, cuts=st.lists(st.integers(0, 2**16), max_size=12), limit=LIMITS)
def test_framing_matches_a_reference_whatever_the_split(stream: bytes, cuts: list[int], limit: int) -> None:
    delivered: list[Envelope] = []
    failed = decode(split(stream, cuts), FrameDecoder(delivered.append, max_frame_size=limit), limit)
    expected, must_fail = reference(stream, limit)
    assert [e.SerializeToString() for e in delivered] == [e.SerializeToString() for e in expected]
    assert failed == must_fail


def expected_events(envelopes: list[Envelope]) -> tuple[list[object], bool]:
    """What a client listening to every event type delivers for these envelopes (none answers a
    request), and whether a payload it cannot decode ends the link first."""
    events: list[object] = []
    for envelope in envelopes:
        cls = PAYLOAD_TYPES.get(envelope.payloadType)
        unknown = UnknownMessage(
            payload_type=envelope.payloadType,
            payload=envelope.payload,
            client_msg_id=envelope.clientMsgId or None,
        )
        if cls is None:
            events.append(unknown)
            continue
        try:
            event = cls.from_bytes(envelope.payload)
        except DecodeError:
            return events, True
        except ValueError:  # a value the schema cannot represent: delivered raw
            events.append(unknown)
            continue
        events.append(event)
        if isinstance(event, ErrorRes | CommonErrorRes):
            assert maintenance_end_in_range(event)  # every server error becomes an APIError
    return events, False


def maintenance_end_in_range(error: ErrorRes | CommonErrorRes) -> bool:
    try:
        api_error_from(error)
    except (ValueError, OverflowError, OSError):
        return False
    return True


def comparable(event: object) -> object:
    """``event`` in a form that compares equal to the same event decoded again: a double field may
    hold NaN, which is never equal to itself, so decoded messages compare by type and bytes."""
    return (type(event), event.to_bytes()) if isinstance(event, Wrapper) else event


@FUZZ
@given(stream=STREAMS, cuts=st.lists(st.integers(0, 2**16), max_size=12), limit=LIMITS)
def test_the_client_inbound_path_yields_events_or_a_protocol_error(
    stream: bytes, cuts: list[int], limit: int
) -> None:
    envelopes, framing_fails = reference(stream, limit)
    expected, payload_fails = expected_events(envelopes)
    client = AsyncClient("127.0.0.1", 1)  # never connected: only its inbound dispatch is used
    events = client.events(*EVENT_TYPES, maxsize=1_000)
    # The callback every link of the client feeds its decoded envelopes to.
    decoder = FrameDecoder(client._on_envelope, max_frame_size=limit)
    failed = decode(split(stream, cuts), decoder, limit)
    events.close()
    delivered = []
    while (event := events.get_nowait()) is not None:
        read_everything(event)
        delivered.append(event)
    assert [comparable(e) for e in delivered] == [comparable(e) for e in expected]
    assert failed == (framing_fails or payload_fails)
    assert events.dropped == 0


def strings_holding_str(wrapper: object) -> bool:
    """Every str-typed field of a wrapper (nested ones too) holds a str, even after invalid UTF-8."""
    if not dataclasses.is_dataclass(wrapper) or isinstance(wrapper, type):
        return True
    for field in dataclasses.fields(wrapper):
        value = getattr(wrapper, field.name)
        for item in value if isinstance(value, tuple) else (value,):
            if re.search(r"\bstr\b", str(field.type)) and item is not None and not isinstance(item, str):
                return False
            if dataclasses.is_dataclass(item) and not strings_holding_str(item):
                return False
    return True


@FUZZ
@given(data=st.data())
def test_payloads_decode_to_readable_messages_or_fail_cleanly(data: st.DataObject) -> None:
    _, cls = data.draw(st.sampled_from(CLASSES))
    kind = data.draw(st.sampled_from(["valid", "mutated", "random"]))
    if kind == "random":
        payload = data.draw(st.binary(max_size=64))
    else:
        raw = data.draw(messages_of(cls.PROTO)).SerializeToString()
        payload = data.draw(mutated(raw)) if kind == "mutated" else raw
    try:
        message = cls.from_bytes(payload)
    except (DecodeError, ValueError):  # what the client turns into RemoteProtocolError / UnknownMessage
        assert kind != "valid"
        return
    read_everything(message)
    assert strings_holding_str(message)
    again = cls.from_bytes(message.to_bytes())
    read_everything(again)
    assert again.to_bytes() == message.to_bytes()


# proto2 strings are not UTF-8-checked when parsed: protobuf hands invalid UTF-8 out as bytes.
# The generated wrappers decode such values with U+FFFD, so fields typed str hold str.


def test_a_client_disconnect_reason_in_invalid_utf8_does_not_break_dispatch() -> None:
    """Found by the inbound-path property at 100,000 examples: the client's own reaction to a
    ``ClientDisconnectEvent`` calls ``reason.lower()``, which raises ``TypeError`` on bytes - an
    exception other than ``ProtocolError`` escapes the dispatch (over a socket, the link then
    closes as after an internal error)."""
    client = AsyncClient("127.0.0.1", 1)
    events = client.events(ClientDisconnectEvent)
    decoder = FrameDecoder(client._on_envelope)
    frame = b"\x00\x00\x00\t\x08\xe4\x10\x12\x04\x12\x02\xe2\x80"  # reason: b"\xe2\x80"
    try:
        decoder.feed(frame)
    except RemoteProtocolError:
        return  # rejecting the payload is fine too
    finally:
        events.close()
    event = events.get_nowait()
    assert event is not None
    assert isinstance(event.reason, str)


def test_invalid_utf8_in_a_string_field_is_rejected_or_decoded() -> None:
    payload = b"\x1a\x02\xe2\x80\x22\x02\xff\xfe"  # ErrorRes: errorCode and description, both invalid UTF-8
    try:
        error = ErrorRes.from_bytes(payload)
    except DecodeError:
        return
    assert isinstance(error.error_code, str)
    assert isinstance(error.description, str)


def test_the_example_count_is_what_the_environment_asks_for() -> None:
    assert FUZZ.max_examples == EXAMPLES >= 1
    assert issubclass(RemoteProtocolError, ProtocolError)


@pytest.mark.parametrize("payload_type", [50, 2142])
def test_an_error_with_a_maintenance_end_out_of_range_does_not_break_dispatch(payload_type: int) -> None:
    """Found by the inbound-path property at 100,000 examples (``ProtoErrorRes`` with
    ``maintenanceEndTimestamp`` 253402300800000 ms, i.e. year 10000)."""
    cls = PAYLOAD_TYPES[payload_type]
    assert cls is CommonErrorRes or cls is ErrorRes
    error = cls(error_code="SERVER_IS_UNDER_MAINTENANCE", maintenance_end_timestamp=253_402_300_800_000)
    client = AsyncClient("127.0.0.1", 1)
    events = client.events(cls)
    try:
        FrameDecoder(client._on_envelope).feed(encode_envelope(payload_type, error.to_bytes()))
    except RemoteProtocolError:
        return  # rejecting the message is fine too
    finally:
        events.close()
    assert events.get_nowait() == error
    end = api_error_from(error).maintenance_end
    assert end is None or end.year == 9999
