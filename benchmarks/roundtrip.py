"""Request round trips: sequential ``VersionReq`` latency and 1,000 requests in flight at once.

The baseline is a bare asyncio client against the same simulator: a TLS protocol that writes
the request frame and resolves a future when the answer's frame arrives, nothing else. What
the SDK controls is the latency it adds over that (timeout, correlation, encode, wrap,
session bookkeeping); the target is on that difference. A bare asyncio TLS echo (frames of
the same size written back from ``data_received``) is reported too: the floor of a round
trip on this machine. The echo server and the simulator run in the same helper process
(``_simproc``), on the other core. Latencies of every side are pooled over interleaved blocks
of sequential round trips.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from benchmarks._harness import Row, log, median, percentile
from benchmarks._raw import EchoClient, open_raw
from benchmarks._simproc import SimProcess
from ctrader_typed import AsyncClient
from ctrader_typed._framing import Envelope, FrameDecoder, encode_envelope
from ctrader_typed._generated.OpenApiMessages_pb2 import ProtoOAApplicationAuthReq, ProtoOAVersionRes
from ctrader_typed._transport import Link, OnClosed, OnEnvelope
from ctrader_typed.errors import CTraderError

_VERSION_RES = ProtoOAVersionRes(version="in-memory").SerializeToString()


class _InstantLink:
    """A link whose server answers every request on the next turn of the event loop, through the
    real codec: what is left of a round trip is the client's own work."""

    def __init__(self, on_envelope: OnEnvelope, on_closed: OnClosed) -> None:
        self._decoder = FrameDecoder(on_envelope)
        self._on_closed: OnClosed | None = on_closed
        self._loop = asyncio.get_running_loop()
        self.is_open = True
        self.error: CTraderError | None = None

    def send(self, frame: bytes) -> None:
        envelope = Envelope.FromString(frame[4:])
        answer = {2100: (2101, b""), 2104: (2105, _VERSION_RES)}.get(envelope.payloadType)
        if answer is not None:
            self._loop.call_soon(self._decoder.feed, encode_envelope(*answer, envelope.clientMsgId))

    def close(self, error: CTraderError | None = None) -> None:
        self.is_open = False
        callback, self._on_closed = self._on_closed, None
        if callback is not None:
            callback(self, error)

    async def wait_closed(self) -> CTraderError | None:
        return None


async def _instant(on_envelope: OnEnvelope, on_closed: OnClosed) -> Link:
    return _InstantLink(on_envelope, on_closed)


async def until_written(client: AsyncClient, n: int = 1_000) -> float:
    """Median microseconds from calling ``send_version_req`` to the frame's write on the client's
    link (a diagnostic: the link's ``send`` is wrapped for it, outside the measured blocks)."""
    link: Any = client._state.link
    written: list[float] = []
    send = link.send

    def timed(frame: bytes) -> None:
        written.append(time.perf_counter())
        send(frame)

    link.send = timed
    out = []
    try:
        for _ in range(n):
            started = time.perf_counter()
            await client.send_version_req()
            out.append(written[-1] - started)
    finally:
        del link.send
    return median(out) * 1e6


async def in_memory(rounds: int = 5, block: int = 5_000) -> dict[str, float]:
    """Microseconds per sequential request without a socket: the SDK against an instant in-memory
    server, and a bare future resolved the same way (same frame encode and parse on both sides).
    Medians of ``rounds`` interleaved blocks."""
    client = AsyncClient(
        "in-memory", link_factory=_instant, client_id="id", client_secret="secret", rate_limits=False
    )
    await client.connect()
    loop = asyncio.get_running_loop()
    waiting: list[asyncio.Future[Envelope]] = []
    decoder = FrameDecoder(lambda envelope: waiting.pop().set_result(envelope))

    async def bare() -> Envelope:
        future: asyncio.Future[Envelope] = loop.create_future()
        waiting.append(future)
        envelope = Envelope.FromString(encode_envelope(2104, b"", "c1")[4:])
        loop.call_soon(decoder.feed, encode_envelope(2105, _VERSION_RES, envelope.clientMsgId))
        return await future

    async def ours() -> object:
        return await client.send_version_req()

    sides = {"ours": ours, "bare": bare}
    out: dict[str, list[float]] = {name: [] for name in sides}
    try:
        for round_ in range(rounds + 1):
            for name, call in sides.items() if round_ % 2 else reversed(sides.items()):
                started = time.perf_counter()
                for _ in range(block):
                    await call()
                if round_:  # the first round warms up
                    out[name].append((time.perf_counter() - started) / block * 1e6)
        figures = {name: median(values) for name, values in out.items()}
        figures["until_written"] = await until_written(client)
    finally:
        await client.close()
    return figures


async def run(samples: int = 3_000, repeats: int = 5, concurrent: int = 1_000) -> list[Row]:
    async with SimProcess() as sim:
        info = sim.info
        client = AsyncClient(
            sim.host,
            sim.port,
            ssl_context=sim.ssl_context(),
            client_id=info["client_id"],
            client_secret=info["client_secret"],
            rate_limits=False,
        )
        loop = asyncio.get_running_loop()
        _, echo = await loop.create_connection(
            EchoClient, sim.host, int(info["echo_port"]), ssl=sim.echo_ssl_context(), server_hostname=sim.host
        )
        bare = await open_raw(sim.host, sim.port, sim.ssl_context())
        await bare.request(
            2100,
            ProtoOAApplicationAuthReq(
                clientId=info["client_id"], clientSecret=info["client_secret"]
            ).SerializeToString(),
            2101,
        )
        # What the client writes for a VersionReq (its ids run c1, c2 ...: use one of that length).
        frame = encode_envelope(2104, b"", f"c{samples}")
        await client.connect()
        try:
            block = max(1, samples // repeats)

            async def ours_block() -> list[float]:
                out = []
                for _ in range(block):
                    started = time.perf_counter()
                    await client.send_version_req()
                    out.append(time.perf_counter() - started)
                return out

            async def echo_block() -> list[float]:
                out = []
                for _ in range(block):
                    started = time.perf_counter()
                    await echo.round_trip(frame)
                    out.append(time.perf_counter() - started)
                return out

            async def bare_block() -> list[float]:
                out = []
                for _ in range(block):
                    started = time.perf_counter()
                    await bare.round_trip(2104, b"", 2105)
                    out.append(time.perf_counter() - started)
                return out

            async def burst() -> float:
                started = time.perf_counter()
                answers = await asyncio.gather(*(client.send_version_req() for _ in range(concurrent)))
                elapsed = time.perf_counter() - started
                if len(answers) != concurrent or any(a.version != answers[0].version for a in answers):
                    raise RuntimeError("not every concurrent request got its answer")
                return concurrent / elapsed

            await ours_block()
            await echo_block()  # warm-up
            await bare_block()
            ours: list[float] = []
            raw: list[float] = []
            bare_sim: list[float] = []
            for round_ in range(repeats):
                if round_ % 2:
                    bare_sim += await bare_block()
                    raw += await echo_block()
                    ours += await ours_block()
                else:
                    ours += await ours_block()
                    raw += await echo_block()
                    bare_sim += await bare_block()
            await burst()  # warm-up
            rates = []
            for _ in range(repeats):
                rates.append(await burst())
                log(f"  roundtrip: {concurrent} concurrent -> {rates[-1]:,.0f} requests/s")
            in_flight_peak = concurrent
            written = await until_written(client)
        finally:
            await client.close()
            assert echo.transport is not None
            echo.transport.close()
            await bare.close()

    p50, p99 = percentile(ours, 50) * 1e6, percentile(ours, 99) * 1e6
    b50, b99 = percentile(raw, 50) * 1e6, percentile(raw, 99) * 1e6
    s50, s99 = percentile(bare_sim, 50) * 1e6, percentile(bare_sim, 99) * 1e6
    log(
        f"  roundtrip: ours p50 {p50:.0f} us p99 {p99:.0f} us; echo p50 {b50:.0f} us p99 {b99:.0f} us; "
        f"bare client <-> simulator p50 {s50:.0f} us p99 {s99:.0f} us"
    )
    added = p50 - s50
    memory = await in_memory()
    log(f"  roundtrip in memory (us per request): {memory}")
    return [
        Row(
            key="roundtrip_p50",
            what="request round trip (VersionReq), sequential, p50: latency the SDK adds over a bare client",
            ours=p50,
            unit="us",
            baseline=s50,
            baseline_label="bare asyncio client, same simulator",
            ratio=p50 / s50,
            ratio_label="of the bare client",
            target="<= +10 us",
            met=added <= 10.0,
            samples={
                "ours_us": [x * 1e6 for x in ours],
                "echo_us": [x * 1e6 for x in raw],
                "bare_client_simulator_us": [x * 1e6 for x in bare_sim],
            },
            extra={
                "added_p50_us": added,
                "bare_client_simulator_p50_us": s50,
                "bare_client_simulator_p99_us": s99,
                "echo_p50_us": b50,
                "echo_p99_us": b99,
                "in_memory_us": memory,
                "until_written_us": written,
            },
            notes=[
                f"the SDK adds {added:.0f} us at the median ({p50:.0f} us against {s50:.0f} us). "
                f"{len(ours):,} round trips per side, interleaved blocks. A raw asyncio TLS echo of a "
                f"{len(frame)}-byte frame (no server work at all) takes p50 {b50:.0f} us, p99 {b99:.0f} us. "
                f"Without a socket (an instant in-memory server), a request costs {memory['ours']:.1f} us "
                f"through the SDK and {memory['bare']:.1f} us as a bare future. From the call to the "
                f"frame's write the SDK takes {written:.1f} us over TLS (median), "
                f"{memory['until_written']:.1f} us in memory."
            ],
        ),
        Row(
            key="roundtrip_p99",
            what="request round trip (VersionReq), sequential, p99",
            ours=p99,
            unit="us",
            baseline=s99,
            baseline_label="bare asyncio client, same simulator",
            ratio=p99 / s99,
            ratio_label="of the bare client",
            target="report",
        ),
        Row(
            key="concurrent_requests",
            what=f"{concurrent:,} concurrent in-flight VersionReq (limits off)",
            ours=median(rates),
            unit="requests/s",
            target="all complete; report",
            met=True,
            samples={"requests_per_second": rates},
            extra={"in_flight": in_flight_peak},
            notes=[f"all {concurrent:,} answered in each of {repeats} rounds; median shown."],
        ),
    ]
