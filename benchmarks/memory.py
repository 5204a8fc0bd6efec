"""Memory of one connection with 5 accounts and 1,000 spot subscriptions (200 symbols each).

Measured in a fresh child process (``python -m benchmarks.memory``), against the stub
endpoint of ``_stubproc`` (the simulator has 3 accounts and 10 symbols): resident set
after ``import ctrader_typed``, after connecting, authorising and subscribing (and the
Python heap that added, by ``tracemalloc``), the heap held by a full event queue, and the
resident set and its peak after streaming spot events through ``async for``.
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


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


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
    return [
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
        )
    ]


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_child(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000))))
