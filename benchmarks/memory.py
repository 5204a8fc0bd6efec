"""Memory of one connection with 5 accounts and 1,000 spot subscriptions (200 symbols each).

Measured in a fresh child process (``python -m benchmarks.memory``), against the stub
endpoint of ``_stubproc`` (the simulator has 3 accounts and 10 symbols): resident set
after ``import ctrader_typed``, after connecting, authorising and subscribing (and the
Python heap that added, by ``tracemalloc``), the heap held by a full event queue, and the
resident set and its peak after streaming spot events through ``async for``.

Last, the Python heap held per retained ``SpotEvent`` (the wrapper
and the int objects of its fields), built by ``from_bytes`` from 10,000 distinct spot
events with bid, ask and timestamp set, against the 216 B per event that a full event
queue held before the wrapper work of issue 15 (target: at most twice that).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from benchmarks._harness import Row, log

ACCOUNTS = 5
SYMBOLS_PER_ACCOUNT = 200
RETAINED = 10_000
# Bytes per spot event a full event queue held before issue 15 (README, 2026-12-05 run).
SPOT_EVENT_BYTES_BEFORE = 216


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _retained_spot_event_bytes() -> float:
    """Python heap per ``SpotEvent`` kept alive (wrapper and field values), by tracemalloc."""
    from ctrader_typed import SpotEvent
    from ctrader_typed._generated import OpenApiMessages_pb2 as pb

    payloads = [
        pb.ProtoOASpotEvent(
            ctidTraderAccountId=90_000_001,
            symbolId=1 + i % 200,
            bid=108_000 + i,
            ask=108_020 + i,
            timestamp=1_764_979_200_000 + i,
        ).SerializeToString()
        for i in range(RETAINED)
    ]
    SpotEvent.from_bytes(payloads[0])  # warm-up (first-use caches are not per event)
    # The list is made before tracing starts: only what each event holds is counted.
    kept = [SpotEvent(ctid_trader_account_id=0, symbol_id=0)] * RETAINED
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i, payload in enumerate(payloads):
        kept[i] = SpotEvent.from_bytes(payload)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert all(event.bid is not None for event in kept)
    return held / RETAINED


async def _child(events: int) -> dict[str, Any]:
    import ctrader_typed
    from ctrader_typed import AsyncClient, SpotEvent

    del ctrader_typed
    figures: dict[str, Any] = {"rss_after_import_mib": _status_kib("VmRSS") / 1024}
    stub = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks._stubproc", stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert stub.stdin is not None
    assert stub.stdout is not None
    try:
        info = json.loads(await stub.stdout.readline())
        tracemalloc.start()
        client = AsyncClient(
            info["host"],
            info["port"],
            ssl_context=ssl.create_default_context(cafile=info["ca_file"]),
            client_id="bench",
            client_secret="bench-secret",
            rate_limits=False,
        )
        await client.connect()
        accounts = [90_000_001 + i for i in range(ACCOUNTS)]
        for account in accounts:
            await client.send_account_auth_req(account, "bench-token")
            symbols = list(range(1, SYMBOLS_PER_ACCOUNT + 1))
            await client.send_subscribe_spots_req(account, symbols, subscribe_to_spot_timestamp=True)
        subscriptions = sum(len(client.subscribed_spots(a)) for a in accounts)
        session_heap = tracemalloc.get_traced_memory()[0]
        figures["subscriptions"] = subscriptions
        figures["session_heap_kib"] = session_heap / 1024
        figures["rss_after_subscribe_mib"] = _status_kib("VmRSS") / 1024

        # A full queue: 10,000 events (the default event_queue_size) waiting in a stream.
        async with client.events(SpotEvent) as stream:
            before = tracemalloc.get_traced_memory()[0]
            stub.stdin.write(f"burst {stream.maxsize}\n".encode())
            await stub.stdin.drain()
            await stub.stdout.readline()
            deadline = time.monotonic() + 30
            while stream.queued < stream.maxsize and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            figures["full_queue_events"] = stream.queued
            figures["full_queue_heap_kib"] = (tracemalloc.get_traced_memory()[0] - before) / 1024
        tracemalloc.stop()

        # Steady state: stream events through async for; RSS and its peak afterwards.
        async with client.events(SpotEvent) as stream:
            stub.stdin.write(f"burst {events}\n".encode())
            await stub.stdin.drain()
            count = 0
            async for event in stream:
                event.bid  # noqa: B018
                count += 1
                if count == events:
                    break
            await stub.stdout.readline()
            figures["streamed_events"] = count
            figures["dropped"] = stream.dropped
        figures["rss_after_stream_mib"] = _status_kib("VmRSS") / 1024
        figures["rss_peak_mib"] = _status_kib("VmHWM") / 1024
        await client.close()
        # Last, so that the resident-set figures above are not moved by it.
        figures["retained_spot_event_bytes"] = _retained_spot_event_bytes()
    finally:
        stub.stdin.write(b"quit\n")
        await stub.stdin.drain()
        try:
            await asyncio.wait_for(stub.wait(), 10)
        except TimeoutError:
            stub.kill()
            await stub.wait()
    return figures


def run(events: int = 200_000) -> list[Row]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", str(events)], capture_output=True, text=True, check=True
    )
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    log(f"  memory: {figures}")
    per_sub = figures["session_heap_kib"] * 1024 / max(1, figures["subscriptions"])
    per_event = figures["full_queue_heap_kib"] * 1024 / max(1, figures["full_queue_events"])
    retained = figures["retained_spot_event_bytes"]
    return [
        Row(
            key="spot_event_memory",
            what="memory: one retained SpotEvent (wrapper and field values, from_bytes)",
            ours=retained,
            unit="B",
            baseline=SPOT_EVENT_BYTES_BEFORE,
            baseline_label="bytes per event a full event queue held before issue 15",
            ratio=retained / SPOT_EVENT_BYTES_BEFORE,
            ratio_label="of the earlier figure",
            target="<= 2x",
            met=retained / SPOT_EVENT_BYTES_BEFORE <= 2,
            extra={"events": RETAINED},
            notes=[
                f"{RETAINED:,} distinct spot events (bid, ask, timestamp set) kept in a list, Python heap "
                f"by tracemalloc: {retained:.0f} B each; a full event queue adds its own slot per event "
                f"({per_event:.0f} B per event there)."
            ],
        ),
        Row(
            key="memory",
            what=f"memory: 1 connection, {ACCOUNTS} accounts, {figures['subscriptions']:,} spot subscriptions",
            ours=figures["rss_after_subscribe_mib"],
            unit="MiB RSS",
            baseline=figures["rss_after_import_mib"],
            baseline_label="RSS right after import ctrader_typed",
            target="report",
            extra=figures,
            notes=[
                f"the session (connection, {ACCOUNTS} accounts, subscriptions) holds "
                f"{figures['session_heap_kib']:.0f} KiB of Python heap ({per_sub:.0f} B per subscription, "
                "tracemalloc); "
                f"a full default event queue ({figures['full_queue_events']:,} spot events) holds "
                f"{figures['full_queue_heap_kib'] / 1024:.1f} MiB ({per_event:.0f} B per event); after "
                f"streaming {figures['streamed_events']:,} events RSS is {figures['rss_after_stream_mib']:.1f} MiB, "
                f"peak {figures['rss_peak_mib']:.1f} MiB."
            ],
        ),
    ]


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_child(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000))))
