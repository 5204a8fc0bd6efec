"""Replay speed: spot events per second that a ``ReplayServer`` plays into our client, against the
bare decode loop over the same frames.

A recording is made once (in memory, by the ``Recorder``): application auth, a spot
subscription and ``n`` spot events. Each round starts a ``ReplayServer`` on it (``pace=None``:
as fast as the client reads) and times our ``AsyncClient`` from the subscription's answer to the
last spot event taken from an event stream - the server's reading of the recording, TLS on
loopback, the client's decode, wrap and dispatch all included. The baseline, in the same rounds,
is the bare decode loop: the same frames fed to a ``FrameDecoder`` whose callback parses each
payload with protobuf (``ProtoOASpotEvent.FromString``), no I/O. No target: the ratio says what
share of the bare decode rate survives the replay's round trip through a real socket.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from benchmarks._harness import Row, interleave, log, median
from ctrader_typed import AsyncClient, SpotEvent
from ctrader_typed._framing import Envelope, FrameDecoder, encode_envelope
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.recording import Recorder
from ctrader_typed.testing.replay import ReplayServer

_ACCOUNT = 44_000_001


def _record(path: Path, n: int) -> list[bytes]:
    """Write the recording; return the spot frames it holds."""
    recorder = Recorder(path, overwrite=True)
    recorder.record_boundary(1, "open")
    auth = pb.ProtoOAApplicationAuthReq(clientId="bench-client", clientSecret="bench-secret-0123")
    recorder.record_frame(
        1, "out", encode_envelope(model_pb.PROTO_OA_APPLICATION_AUTH_REQ, auth.SerializeToString(), "c1")[4:]
    )
    recorder.record_frame(1, "in", encode_envelope(model_pb.PROTO_OA_APPLICATION_AUTH_RES, b"", "c1")[4:])
    subscribe = pb.ProtoOASubscribeSpotsReq(ctidTraderAccountId=_ACCOUNT, symbolId=[1])
    recorder.record_frame(
        1,
        "out",
        encode_envelope(model_pb.PROTO_OA_SUBSCRIBE_SPOTS_REQ, subscribe.SerializeToString(), "c2")[4:],
    )
    answer = pb.ProtoOASubscribeSpotsRes(ctidTraderAccountId=_ACCOUNT).SerializeToString()
    recorder.record_frame(1, "in", encode_envelope(model_pb.PROTO_OA_SUBSCRIBE_SPOTS_RES, answer, "c2")[4:])
    frames = []
    for i in range(n):
        spot = pb.ProtoOASpotEvent(ctidTraderAccountId=_ACCOUNT, symbolId=1, bid=108_000 + i % 50)
        if i % 3 == 0:
            spot.ask = 108_010 + i % 50
        frame = encode_envelope(model_pb.PROTO_OA_SPOT_EVENT, spot.SerializeToString())
        frames.append(frame)
        recorder.record_frame(1, "in", frame[4:])
    recorder.record_boundary(1, "close")
    recorder.close()
    return frames


async def _replay_rate(path: Path, n: int) -> float:
    async with ReplayServer(path) as replay:
        client = AsyncClient(**replay.client_options(), reconnect=False, request_timeout=60.0)
        async with client, client.events(SpotEvent) as spots:
            await client.send_subscribe_spots_req(_ACCOUNT, [1])
            started = time.perf_counter()
            for _ in range(n):
                await spots.get(60.0)
            elapsed = time.perf_counter() - started
        await replay.finished(timeout=60.0)
    return n / elapsed


def _decode_rate(frames: list[bytes]) -> float:
    data = b"".join(frames)
    parse = pb.ProtoOASpotEvent.FromString
    count = 0

    def deliver(envelope: Envelope) -> None:
        nonlocal count
        parse(envelope.payload)
        count += 1

    decoder = FrameDecoder(deliver)
    started = time.perf_counter()
    for offset in range(0, len(data), 65_536):  # socket-sized chunks
        decoder.feed(data[offset : offset + 65_536])
    elapsed = time.perf_counter() - started
    assert count == len(frames), count
    return count / elapsed


def run(n: int = 50_000, repeats: int = 5) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as folder:
        path = Path(folder) / "spots.ctrec"
        frames = _record(path, n)
        samples = interleave(
            {"ours": lambda: asyncio.run(_replay_rate(path, n)), "bare": lambda: _decode_rate(frames)},
            repeats,
        )
    ours, bare = median(samples["ours"]), median(samples["bare"])
    log(f"  replay: {ours:,.0f} spot events/s into the client; bare decode loop: {bare:,.0f}/s")
    return [
        Row(
            key="replay_events",
            what=f"replay: {n:,} recorded spot events played into AsyncClient over TLS (pace=None)",
            ours=ours,
            unit="events/s",
            baseline=bare,
            baseline_label="bare FrameDecoder + ProtoOASpotEvent parse of the same frames",
            ratio=ours / bare,
            ratio_label="of the bare decode rate",
            samples=samples,
        )
    ]
