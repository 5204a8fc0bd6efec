"""The client's event dispatch (parse + build bound per payload type, clientMsgId read only when
present) hands out the same wrappers as ``from_proto`` of the parsed payloads, in order."""

from __future__ import annotations

from ctrader_typed import AsyncClient, DepthEvent, SpotEvent
from ctrader_typed._framing import FrameDecoder, encode_envelope
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb


def _spots() -> list[pb.ProtoOASpotEvent]:
    bar = model_pb.ProtoOATrendbar(volume=9, period=model_pb.M1, low=100, deltaClose=3)
    return [
        pb.ProtoOASpotEvent(ctidTraderAccountId=7, symbolId=1, bid=100, ask=102, timestamp=5),
        pb.ProtoOASpotEvent(ctidTraderAccountId=7, symbolId=2, ask=0),
        pb.ProtoOASpotEvent(ctidTraderAccountId=8, symbolId=3, bid=1, trendbar=[bar, bar], sessionClose=4),
    ]


def test_spot_events_arrive_as_from_proto_would_build_them() -> None:
    client = AsyncClient("localhost", rate_limits=False)
    spots = client.events(SpotEvent, maxsize=100)
    depth = client.events(DepthEvent, maxsize=100)
    messages = _spots()
    frames = [
        encode_envelope(2131, messages[0].SerializeToString()),
        # A clientMsgId that answers nothing (the first event after a subscription echoes it).
        encode_envelope(2131, messages[1].SerializeToString(), "c99"),
        encode_envelope(2155, pb.ProtoOADepthEvent(ctidTraderAccountId=7, symbolId=1).SerializeToString()),
        # Present but empty: treated as absent, as before.
        encode_envelope(2131, messages[2].SerializeToString(), ""),
    ]
    decoder = FrameDecoder(client._on_envelope)
    stream = b"".join(frames)
    for cut in range(0, len(stream), 7):  # arbitrary read boundaries
        decoder.feed(stream[cut : cut + 7])
    got = [event for _ in range(spots.queued) if (event := spots.get_nowait()) is not None]
    assert got == [SpotEvent.from_proto(m) for m in messages]
    assert got[1].bid is None
    assert got[1].ask == 0
    assert len(got[2].trendbar) == 2
    assert depth.queued == 1
    spots.close()
    depth.close()
