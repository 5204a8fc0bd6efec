"""Request round trips: sequential ``VersionReq`` latency and 1,000 requests in flight at once.

The baseline is a bare asyncio TLS echo on loopback: the client writes a frame of the same
size as our ``VersionReq`` frame and waits until as many bytes came back. The echo server
and the simulator run in the same helper process (``_simproc``), on the other core.
Latencies of both sides are pooled over interleaved blocks of sequential round trips.
"""

from __future__ import annotations

import asyncio
import time

from benchmarks._harness import Row, log, median, percentile
from benchmarks._raw import EchoClient, open_raw
from benchmarks._simproc import SimProcess
from ctrader_typed import AsyncClient
from ctrader_typed._framing import encode_envelope
from ctrader_typed._generated.OpenApiMessages_pb2 import ProtoOAApplicationAuthReq


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
    return [
        Row(
            key="roundtrip_p50",
            what="request round trip (VersionReq), sequential, p50",
            ours=p50,
            unit="us",
            baseline=b50,
            baseline_label=f"raw asyncio TLS echo of a {len(frame)}-byte frame",
            ratio=p50 / b50,
            ratio_label="of the echo",
            target="<= 1.3x",
            met=p50 / b50 <= 1.3,
            samples={
                "ours_us": [x * 1e6 for x in ours],
                "echo_us": [x * 1e6 for x in raw],
                "bare_client_simulator_us": [x * 1e6 for x in bare_sim],
            },
            extra={"bare_client_simulator_p50_us": s50, "bare_client_simulator_p99_us": s99},
            notes=[
                f"{len(ours):,} round trips per side, interleaved blocks. The simulator's own handling "
                "(parse, queue, answer) is inside our figure; the echo server does none of it. A bare "
                f"asyncio client (no SDK) against the same simulator: p50 {s50:.0f} us, p99 {s99:.0f} us, "
                "so the simulator accounts for "
                f"{s50 - b50:.0f} us of the p50 and the SDK client for {p50 - s50:.0f} us."
            ],
        ),
        Row(
            key="roundtrip_p99",
            what="request round trip (VersionReq), sequential, p99",
            ours=p99,
            unit="us",
            baseline=b99,
            baseline_label="raw asyncio TLS echo",
            ratio=p99 / b99,
            ratio_label="of the echo",
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
