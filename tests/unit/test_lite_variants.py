"""The lite variant of ``ProtoOASpotEvent`` (``ctrader_typed._lite``) and its generated builder:
the same wrapper as the full parse for any spot event without bars, a refusal for one with bars,
and a client whose stream fast path switches to the full parse once bars show up - every event
delivered, in order, as ``from_bytes`` builds it."""

from __future__ import annotations

import pytest
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st

from ctrader_typed import AsyncClient, SpotEvent
from ctrader_typed._base import LiteMessageRefused
from ctrader_typed._framing import FrameDecoder, encode_envelope, envelope_head
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed._generated.messages import LITE_BUILDERS
from ctrader_typed._lite import LITE_PACKAGE, REFUSED_ONEOF, lite_class

SPOT = 2131
uint64 = st.integers(min_value=0, max_value=2**64 - 1)
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
NO_BARS = st.just(0)
NEVER = st.just(False)
REFUSED = LITE_BUILDERS[SPOT].refused


def lite_spot() -> type[Message]:
    return lite_class(pb.ProtoOASpotEvent, REFUSED)


@st.composite
def spot_events(
    draw: st.DrawFn, bars: st.SearchStrategy[int] = NO_BARS, session_close: st.SearchStrategy[bool] = NEVER
) -> pb.ProtoOASpotEvent:
    event = pb.ProtoOASpotEvent(ctidTraderAccountId=draw(int64), symbolId=draw(int64))
    for name in ("bid", "ask"):
        if draw(st.booleans()):
            setattr(event, name, draw(uint64))
    if draw(session_close):
        event.sessionClose = draw(uint64)
    if draw(st.booleans()):
        event.timestamp = draw(int64)
    for _ in range(draw(bars)):
        event.trendbar.add(volume=draw(int64), period=model_pb.M1, low=draw(int64), deltaClose=draw(uint64))
    return event


def test_the_lite_class_is_made_once_reads_the_bars_as_bytes_and_gathers_the_refused_fields() -> None:
    lite = lite_spot()
    assert REFUSED == ("trendbar", "sessionClose")
    assert lite is lite_spot()
    assert lite.DESCRIPTOR.full_name.startswith(f"{LITE_PACKAGE}.ProtoOASpotEvent")
    bars = lite.DESCRIPTOR.fields_by_name["trendbar"]
    assert bars.number == 6
    assert bars.type == bars.TYPE_BYTES
    numbers = [f.number for f in pb.ProtoOASpotEvent.DESCRIPTOR.fields]
    assert [f.number for f in lite.DESCRIPTOR.fields] == numbers
    oneof = lite.DESCRIPTOR.oneofs_by_name[REFUSED_ONEOF]
    assert [f.name for f in oneof.fields] == ["trendbar", "sessionClose"]


@pytest.mark.parametrize(
    ("proto", "refused", "message"),
    [
        (pb.ProtoOASpotEvent, ("sessionClose",), "must be refused"),
        (pb.ProtoOASpotEvent, ("trendbar", "nope"), "no field 'nope'"),
        (pb.ProtoOASymbolChangedEvent, ("symbolId",), "repeated scalar"),
        (pb.ProtoOAVersionRes, (), "at least one field"),
    ],
)
def test_a_lite_variant_that_cannot_serve_is_refused(
    proto: type[Message], refused: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        lite_class(proto, refused)


@given(spot_events())
def test_without_refused_fields_the_lite_builder_builds_what_from_bytes_builds(
    message: pb.ProtoOASpotEvent,
) -> None:
    payload = message.SerializeToString()
    wrapper, builder, _, turns_off = LITE_BUILDERS[SPOT]
    assert turns_off == ("trendbar",)
    assert wrapper is SpotEvent
    reused = lite_spot()()
    build = builder(reused)
    earlier = pb.ProtoOASpotEvent(ctidTraderAccountId=1, symbolId=2, bid=3, sessionClose=4, timestamp=5)
    reused.ParseFromString(earlier.SerializeToString())
    with pytest.raises(LiteMessageRefused):
        build(None, True)
    reused.ParseFromString(payload)  # an earlier message parsed into the same one leaves nothing behind
    built = build(None, True)
    expected = SpotEvent.from_bytes(payload)
    assert type(built) is SpotEvent
    assert built == expected
    assert repr(built) == repr(expected)


@given(
    st.one_of(
        spot_events(bars=st.integers(min_value=1, max_value=3), session_close=st.booleans()),
        spot_events(session_close=st.just(True)),
    )
)
def test_with_bars_or_a_session_close_the_lite_builder_refuses(message: pb.ProtoOASpotEvent) -> None:
    _, builder, _, _ = LITE_BUILDERS[SPOT]
    reused = lite_spot().FromString(message.SerializeToString())
    with pytest.raises(LiteMessageRefused, match=r"trendbar|sessionClose"):
        builder(reused)(None, True)


@given(
    st.lists(
        st.tuples(
            spot_events(
                bars=st.sampled_from([0, 0, 0, 1, 2]), session_close=st.sampled_from([False] * 4 + [True])
            ),
            st.sampled_from([None, None, "c7"]),
        ),
        min_size=1,
        max_size=40,
    ),
    st.integers(min_value=1, max_value=300),
)
def test_the_client_delivers_every_spot_event_in_order_and_leaves_the_lite_route_at_the_first_bar(
    frames: list[tuple[pb.ProtoOASpotEvent, str | None]], read_size: int
) -> None:
    # A clientMsgId (the first spot event after a subscription echoes the request's) sends a frame
    # the full way, but only bars turn the lite route off.
    messages = [message for message, _ in frames]
    client = AsyncClient("localhost", rate_limits=False)
    stream = client.events(SpotEvent, maxsize=1000)
    router = client._router
    head = envelope_head(SPOT)
    assert head is not None
    lite = lite_spot()

    def parses_into() -> object:
        parse = router.batch_routes[head][0]
        return getattr(parse, "__self__", None)

    first = parses_into()
    assert isinstance(first, lite)  # the fast path starts lite
    decoder = FrameDecoder(client._on_envelope)
    data = b"".join(
        encode_envelope(SPOT, m.SerializeToString(), client_msg_id) for m, client_msg_id in frames
    )
    for cut in range(0, len(data), read_size):
        decoder.feed(data[cut : cut + read_size])
    got = [event for _ in range(stream.queued) if (event := stream.get_nowait()) is not None]
    assert got == [SpotEvent.from_bytes(m.SerializeToString()) for m in messages]
    with_bars = any(len(m.trendbar) for m in messages)
    assert (router.batch_routes[head][0] == pb.ProtoOASpotEvent.FromString) is with_bars
    assert (SPOT in router._lite) is not with_bars
    fast = [m for m, client_msg_id in frames if client_msg_id is None and not m.HasField("sessionClose")]
    if not with_bars and fast:
        now = parses_into()
        assert isinstance(now, lite)
        assert now is not first  # a new message for each run: unknown fields cannot pile up in one
    if with_bars:
        # A new stream re-makes the route: still the full parse.
        other = client.events(SpotEvent)
        assert router.batch_routes[head][0] == pb.ProtoOASpotEvent.FromString
        other.close()
    stream.close()
