"""Spot events per second, end to end: simulator burst -> TLS loopback -> client -> ``async for``.

The simulator runs in its own process (``_simproc``), so the consumer has a core to
itself. Three accounts of the simulator are used at once, each subscribed to every
symbol with timestamps on its own connection, and each burst targets one of them:

* ours: ``AsyncClient`` + ``client.events(SpotEvent)`` + ``async for``, reading ``bid``;
* raw: a bare asyncio TLS protocol that only splits frames (the floor of asyncio + TLS), and
  one that splits and parses envelope + spot event (a hand-written client at best);
* OpenApiPy (``ctrader-open-api`` 0.9.2 in its own virtualenv), ``Protobuf.extract`` per event.

The baseline of the target is the bare loop: split + ``ProtoMessage`` parse +
``ProtoOASpotEvent`` parse over the same frames (captured from a burst), in memory, with
the same protobuf runtime. A rate is ``N / (time of the N-th event - time the burst was
asked for)``, on ``time.monotonic`` (one clock for all processes).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import struct
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

from benchmarks._harness import ROOT, Row, log, median
from benchmarks._raw import raw_spot_session
from benchmarks._simproc import SimProcess
from ctrader_typed import AsyncClient, SpotEvent
from ctrader_typed._framing import FrameDecoder
from ctrader_typed._generated import OpenApiCommonMessages_pb2 as common_pb
from ctrader_typed._generated import OpenApiMessages_pb2 as pb

SPOT_EVENT = 2131
_HEADER = struct.Struct(">I")
# upb parses straight from any buffer; the stubs only admit bytes.
_parse_envelope = cast("Callable[[memoryview], common_pb.ProtoMessage]", common_pb.ProtoMessage.FromString)


def bare_loop(data: bytes) -> int:
    """Split frames, parse each envelope and each spot event, read the bid: no I/O, no SDK."""
    unpack = _HEADER.unpack_from
    parse_envelope = _parse_envelope
    parse_spot = pb.ProtoOASpotEvent.FromString
    view = memoryview(data)
    end = len(data)
    pos = 0
    n = 0
    while end - pos >= 4:
        (length,) = unpack(view, pos)
        start = pos + 4
        pos = start + length
        envelope = parse_envelope(view[start:pos])
        if envelope.payloadType == SPOT_EVENT:
            parse_spot(envelope.payload).bid  # noqa: B018
            n += 1
    return n


def sdk_in_memory(data: bytes, chunk: int = 256 * 1024) -> int:
    """The SDK's own receive path without a socket: FrameDecoder -> client dispatch -> stream.

    Fed in 256 KiB chunks (what asyncio's TLS transport hands over at most), draining the
    stream after each, as the consumer task would.
    """
    client = AsyncClient("localhost", rate_limits=False)
    stream = client.events(SpotEvent, maxsize=1 << 20)
    decoder = FrameDecoder(client._on_envelope)
    n = 0
    get = stream.get_nowait
    for offset in range(0, len(data), chunk):
        decoder.feed(data[offset : offset + chunk])
        while (event := get()) is not None:
            event.bid  # noqa: B018
            n += 1
    stream.close()
    return n


def breakdown(data: bytes, repeats: int = 5) -> dict[str, float]:
    """Microseconds per event of the parts of the SDK's receive path, in memory (best of ``repeats``).

    ``split_and_envelope``: FrameDecoder over the frames, handing envelopes to a no-op;
    ``parse_and_wrap``: ``ProtoOASpotEvent`` parse + ``SpotEvent`` build of each payload;
    ``bare_loop``: the baseline. Their sum without dispatch is the floor of any design that
    hands out wrappers.
    """
    payloads: list[bytes] = []
    FrameDecoder(lambda envelope: payloads.append(envelope.payload)).feed(data)
    n = len(payloads)
    parse, build = pb.ProtoOASpotEvent.FromString, SpotEvent._from_proto

    def split() -> None:
        FrameDecoder(lambda envelope: None).feed(data)

    def wrap() -> None:
        for payload in payloads:
            build(parse(payload), True)

    def bare() -> None:
        bare_loop(data)

    out: dict[str, float] = {}
    for name, fn in (("split_and_envelope", split), ("parse_and_wrap", wrap), ("bare_loop", bare)):
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - started)
        out[name] = best / n * 1e6
    return out


def _load_interop() -> Any:
    path = ROOT / "tests" / "interop" / "run_interop.py"
    spec = importlib.util.spec_from_file_location("_ctrader_interop_runner", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def openapipy_python() -> Path:
    """The interop virtualenv's python (created by the interop runner if needed)."""
    runner = _load_interop()
    venv = Path(os.environ.get("CTRADER_INTEROP_VENV", runner.DEFAULT_VENV))
    python: Path = runner.ensure_venv(venv)
    return python


async def ainterleave(
    sides: dict[str, Callable[[], Awaitable[float]]], repeats: int, warmup: int = 1
) -> dict[str, list[float]]:
    """``_harness.interleave`` for coroutines."""
    for _ in range(warmup):
        for run in sides.values():
            await run()
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for round_ in range(repeats):
        names = list(sides)
        if round_ % 2:
            names.reverse()
        for name in names:
            rate = await sides[name]()
            samples[name].append(rate)
            log(f"  stream {name}: {rate:,.0f} events/s")
    return samples


async def run(
    n: int = 200_000, repeats: int = 5, openapipy_n: int = 20_000, openapipy: bool = True
) -> list[Row]:
    async with SimProcess() as sim:
        info = sim.info
        ours_account, raw_account, their_account = (int(a) for a in info["accounts"][:3])
        context = sim.ssl_context()

        # The frames of the bare loop: one burst, captured as received.
        raw = await raw_spot_session(sim.host, sim.port, context, info, raw_account)
        await asyncio.sleep(0.3)
        raw.mode = "capture"
        reached = raw.expect(n)
        await sim.burst(n, account_id=raw_account)
        await reached
        data = bytes(raw.captured)
        raw.captured.clear()
        log(f"  stream: captured {n:,} spot frames, {len(data) / n:.1f} bytes each")

        client = AsyncClient(
            sim.host,
            sim.port,
            ssl_context=context,
            client_id=info["client_id"],
            client_secret=info["client_secret"],
            rate_limits=False,
        )
        await client.connect()
        theirs: asyncio.subprocess.Process | None = None
        try:
            await client.send_account_auth_req(ours_account, info["access_token"])
            await client.send_subscribe_spots_req(
                ours_account, list(range(1, 11)), subscribe_to_spot_timestamp=True
            )
            await asyncio.sleep(0.3)  # the subscription's first events go by before any stream exists

            cpu: dict[str, list[float]] = {"ours": [], "bare": [], "sdk_in_memory": [], "openapipy": []}

            async def ours() -> float:
                async with client.events(SpotEvent, maxsize=n) as stream:
                    cpu_started = time.process_time()
                    started = time.monotonic()
                    burst = asyncio.create_task(sim.burst(n, account_id=ours_account))
                    count = 0
                    async for event in stream:
                        event.bid  # noqa: B018
                        count += 1
                        if count == n:
                            break
                    finished = time.monotonic()
                    cpu["ours"].append(n / (time.process_time() - cpu_started))
                    await burst
                    if stream.dropped:
                        raise RuntimeError(f"the stream dropped {stream.dropped} events")
                return n / (finished - started)

            async def raw_mode(mode: Any) -> float:
                raw.mode = mode
                reached = raw.expect(n)
                started = time.monotonic()
                await sim.burst(n, account_id=raw_account)
                return n / (await reached - started)

            async def bare() -> float:
                cpu_started = time.process_time()
                started = time.perf_counter()
                count = bare_loop(data)
                cpu["bare"].append(count / (time.process_time() - cpu_started))
                return count / (time.perf_counter() - started)

            async def in_memory() -> float:
                cpu_started = time.process_time()
                started = time.perf_counter()
                count = sdk_in_memory(data)
                cpu["sdk_in_memory"].append(count / (time.process_time() - cpu_started))
                return count / (time.perf_counter() - started)

            sides: dict[str, Callable[[], Awaitable[float]]] = {
                "ours": ours,
                "bare": bare,
                "sdk_in_memory": in_memory,
                "raw_split": lambda: raw_mode("count"),
                "raw_parse": lambda: raw_mode("parse"),
            }
            if openapipy:
                python = openapipy_python()
                theirs = await asyncio.create_subprocess_exec(
                    str(python),
                    str(Path(__file__).with_name("openapipy_stream.py")),
                    str(their_account),
                    str(openapipy_n),
                    str(repeats + 1),
                    stdout=asyncio.subprocess.PIPE,
                    env={**os.environ, "CTRADER_SIM_INFO": _json_line(info)},
                )
                ready = (await _line(theirs, 120.0)).split()
                if ready[0] != "ready":
                    raise RuntimeError(f"OpenApiPy: {' '.join(ready)}")
                process = theirs
                their_cpu = [float(ready[1])]

                async def openapipy_side() -> float:
                    started = time.monotonic()
                    await sim.burst(openapipy_n, account_id=their_account)
                    words = (await _line(process, 300.0)).split()
                    if words[0] != "done":
                        raise RuntimeError(f"OpenApiPy: {' '.join(words)}")
                    cpu["openapipy"].append(openapipy_n / (float(words[2]) - their_cpu[-1]))
                    their_cpu.append(float(words[2]))
                    return openapipy_n / (float(words[1]) - started)

                sides["openapipy"] = openapipy_side
            samples = await ainterleave(sides, repeats)
        finally:
            await client.close()
            await raw.close()
            if theirs is not None:
                try:
                    await asyncio.wait_for(theirs.wait(), 10.0)
                except TimeoutError:
                    theirs.kill()
                    await theirs.wait()

    ours_rate = median(samples["ours"])
    bare_rate = median(samples["bare"])
    extra: dict[str, Any] = {name: median(values) for name, values in samples.items()}
    extra["frame_bytes"] = len(data) / n
    extra["breakdown_us"] = parts = breakdown(data)
    log(f"  stream breakdown (us/event): {parts}")
    # Events per CPU second of the consuming process (the warm-up round left out): the same
    # comparison, robust to the other process (the simulator) and anything else on the machine
    # taking the core away.
    per_cpu = {name: median(values[1:]) for name, values in cpu.items() if len(values) > 1}
    extra["events_per_cpu_second"] = per_cpu
    extra["cpu_samples"] = cpu
    cpu_ratio = per_cpu["ours"] / per_cpu["bare"]
    rows = [
        Row(
            key="spot_stream",
            what="spot events/s end to end (sim burst -> TLS -> client -> async for)",
            ours=ours_rate,
            unit="events/s",
            baseline=bare_rate,
            baseline_label="bare loop: split + ProtoMessage + SpotEvent parse, in memory",
            ratio=ours_rate / bare_rate,
            ratio_label="of the bare loop",
            target=">= 0.5x",
            met=ours_rate / bare_rate >= 0.5,
            samples=samples,
            extra=extra,
            notes=[
                f"same run, {n:,} events per burst ({extra['frame_bytes']:.0f}-byte frames), median of "
                f"{repeats}. Per CPU second of the consuming process: ours {per_cpu['ours']:,.0f}, bare loop "
                f"{per_cpu['bare']:,.0f} ({cpu_ratio:.2f}x). The SDK's receive path without a socket "
                f"(FrameDecoder -> dispatch -> wrapper -> stream) runs at {extra['sdk_in_memory']:,.0f}/s; "
                f"a bare asyncio TLS protocol that only splits frames receives {extra['raw_split']:,.0f}/s "
                f"from the simulator, one that also parses envelope + spot {extra['raw_parse']:,.0f}/s."
            ],
        )
    ]
    if openapipy:
        theirs_rate = median(samples["openapipy"])
        rows.append(
            Row(
                key="openapipy_stream",
                what="the same stream consumed by OpenApiPy (ctrader-open-api 0.9.2, own virtualenv)",
                ours=ours_rate,
                unit="events/s",
                baseline=theirs_rate,
                baseline_label="OpenApiPy, Protobuf.extract per event",
                ratio=ours_rate / theirs_rate,
                ratio_label="ours / theirs",
                target=">= 10x",
                met=ours_rate / theirs_rate >= 10,
                samples={"ours": samples["ours"], "openapipy": samples["openapipy"]},
                extra={
                    "events_per_cpu_second": {k: per_cpu[k] for k in ("ours", "openapipy") if k in per_cpu}
                },
                notes=[
                    f"OpenApiPy bursts are {openapipy_n:,} events (it is slower); its virtualenv pins "
                    "protobuf 3.20.1, which has no compiled extension for this Python, so it parses "
                    "in pure Python. Per CPU second: ours "
                    f"{per_cpu['ours']:,.0f}, OpenApiPy {per_cpu.get('openapipy', float('nan')):,.0f} "
                    f"({per_cpu['ours'] / per_cpu.get('openapipy', float('nan')):.1f}x)."
                ],
            )
        )
    return rows


def _json_line(info: dict[str, Any]) -> str:
    import json

    return json.dumps(info)


async def _line(process: asyncio.subprocess.Process, timeout: float) -> str:
    assert process.stdout is not None
    raw = await asyncio.wait_for(process.stdout.readline(), timeout)
    if not raw:
        raise RuntimeError("OpenApiPy's process ended early")
    return raw.decode().strip()
