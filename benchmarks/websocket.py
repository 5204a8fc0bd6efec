"""The WebSocket transport next to TLS: spot stream throughput and request round trips.

Both clients are ``AsyncClient``s in this process talking to the same simulator, which runs in
its own process (``_simproc``) on the other core: one with ``transport="tls"``, one with
``transport="websocket"`` (the same port, upgraded). Each authorises its own account and
subscribes to EURUSD, so a burst for one account reaches only its client. Sides alternate
round by round:

* stream: a burst of ``n`` spot events from the simulator read with ``async for`` from
  ``client.events(SpotEvent)``; events per CPU second of this process (the headline: it does
  not move with how the two processes share the cores) and per wall-clock second;
* round trip: sequential ``VersionReq`` latencies, pooled over interleaved blocks (p50, p99).

The simulator builds and writes each event as it goes (over WebSocket it also frames each as a
message), so wall-clock rates are capped by the producer; the CPU figure is the client's cost.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any

from benchmarks._harness import Row, load_average, log, median, percentile
from benchmarks._simproc import SimProcess
from ctrader_typed import AsyncClient, SpotEvent
from ctrader_typed._client.options import Transport

EURUSD = 1
TRANSPORTS: tuple[Transport, ...] = ("tls", "websocket")


async def _client(
    sim: SimProcess, context: ssl.SSLContext, account: int, transport: Transport
) -> AsyncClient:
    info = sim.info
    client = AsyncClient(
        sim.host,
        sim.port,
        ssl_context=context,
        transport=transport,
        client_id=info["client_id"],
        client_secret=info["client_secret"],
        rate_limits=False,
    )
    await client.connect()
    await client.send_account_auth_req(account, info["access_token"])
    await client.send_subscribe_spots_req(account, [EURUSD])
    return client


async def run(n: int = 100_000, repeats: int = 5, samples: int = 2_000) -> list[Row]:
    load_before = load_average()
    cpu: dict[str, list[float]] = {t: [] for t in TRANSPORTS}
    wall: dict[str, list[float]] = {t: [] for t in TRANSPORTS}
    latencies: dict[str, list[float]] = {t: [] for t in TRANSPORTS}
    async with SimProcess() as sim:
        accounts = [int(a) for a in sim.info["accounts"][:2]]
        context = sim.ssl_context()
        clients = {
            transport: await _client(sim, context, account, transport)
            for transport, account in zip(TRANSPORTS, accounts, strict=True)
        }
        account_of = dict(zip(TRANSPORTS, accounts, strict=True))
        await asyncio.sleep(0.3)  # the first event of each subscription goes by before any stream
        try:

            async def stream(transport: Transport, count: int, record: bool) -> None:
                client = clients[transport]
                async with client.events(SpotEvent, maxsize=count) as events:
                    cpu_started = time.process_time()
                    started = time.monotonic()
                    burst = asyncio.create_task(sim.burst(count, account_id=account_of[transport]))
                    seen = 0
                    async for event in events:
                        event.bid  # noqa: B018
                        seen += 1
                        if seen == count:
                            break
                    finished = time.monotonic()
                    cpu_seconds = time.process_time() - cpu_started
                    await burst
                    if events.dropped:
                        raise RuntimeError(f"the {transport} stream dropped {events.dropped} events")
                if record:
                    cpu[transport].append(count / cpu_seconds)
                    wall[transport].append(count / (finished - started))

            async def round_trips(transport: Transport, count: int, record: bool) -> None:
                client = clients[transport]
                out = []
                for _ in range(count):
                    started = time.perf_counter()
                    await client.send_version_req()
                    out.append(time.perf_counter() - started)
                if record:
                    latencies[transport] += out

            for transport in TRANSPORTS:  # warm-up
                await stream(transport, min(n, 10_000), False)
                await round_trips(transport, 100, False)
            block = max(1, samples // repeats)
            for round_ in range(repeats):
                order = TRANSPORTS if round_ % 2 == 0 else TRANSPORTS[::-1]
                for transport in order:
                    await stream(transport, n, True)
                    log(
                        f"  websocket: {transport} stream {cpu[transport][-1]:,.0f} events/CPU s, "
                        f"{wall[transport][-1]:,.0f} events/s wall"
                    )
                for transport in order:
                    await round_trips(transport, block, True)
        finally:
            for client in clients.values():
                await client.close()
    load_after = load_average()

    stream_tls, stream_ws = median(cpu["tls"]), median(cpu["websocket"])
    p50 = {t: percentile(latencies[t], 50) * 1e6 for t in TRANSPORTS}
    p99 = {t: percentile(latencies[t], 99) * 1e6 for t in TRANSPORTS}
    log(
        f"  websocket: stream tls {stream_tls:,.0f} / websocket {stream_ws:,.0f} events per CPU s; "
        f"round trip p50 tls {p50['tls']:.0f} us / websocket {p50['websocket']:.0f} us"
    )
    extra: dict[str, Any] = {
        "events_per_burst": n,
        "wall_events_per_second": {t: median(wall[t]) for t in TRANSPORTS},
        "load_average_before": load_before,
        "load_average_after": load_after,
    }
    return [
        Row(
            key="websocket_stream",
            what="spot stream over WebSocket (async for, simulator as producer), per CPU second",
            ours=stream_ws,
            unit="events/CPU s",
            baseline=stream_tls,
            baseline_label="the same over TLS (length-prefixed frames)",
            ratio=stream_ws / stream_tls,
            ratio_label="of TLS",
            target="report",
            samples={f"{t}_events_per_cpu_second": cpu[t] for t in TRANSPORTS}
            | {f"{t}_events_per_wall_second": wall[t] for t in TRANSPORTS},
            extra=extra,
            notes=[
                f"{n:,} events per burst, medians of {repeats} interleaved rounds; wall clock: "
                f"TLS {median(wall['tls']):,.0f} events/s, WebSocket {median(wall['websocket']):,.0f} events/s "
                "(capped by the simulator, which builds every event as it goes)."
            ],
        ),
        Row(
            key="websocket_roundtrip_p50",
            what="request round trip (VersionReq) over WebSocket, sequential, p50",
            ours=p50["websocket"],
            unit="us",
            baseline=p50["tls"],
            baseline_label="the same over TLS",
            ratio=p50["websocket"] / p50["tls"],
            ratio_label="of TLS",
            target="report",
            samples={f"{t}_us": [x * 1e6 for x in latencies[t]] for t in TRANSPORTS},
            extra={"p99_us": p99},
            notes=[
                f"{len(latencies['websocket']):,} round trips per side, interleaved blocks; p99: "
                f"WebSocket {p99['websocket']:.0f} us, TLS {p99['tls']:.0f} us."
            ],
        ),
    ]
