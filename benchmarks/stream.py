"""Spot events end to end: producer -> TLS loopback -> client -> ``async for``, per CPU second.

The producer is a pre-encoded firehose in its own process (``_firehose``): it writes frames
encoded once, in 256 KiB writes, so the client under test is the bottleneck. The simulator
(which builds and writes every event as it goes, and caps a wall-clock figure well below a
fast reader) is kept as a second, labelled row. Sides, interleaved round by round:

* ours: ``AsyncClient`` + ``client.events(SpotEvent)`` + ``async for``, reading ``bid``; the
  same stream read with ``stream.batches()``; the same ``async for`` against the simulator;
* the bare loop: split + ``ProtoMessage`` parse + ``ProtoOASpotEvent`` parse + read ``bid``,
  in memory over the same frames (captured from the firehose), same protobuf runtime;
* the envelope-skipping bare loop: the payload type read from the frame's header bytes and
  the spot event parsed straight from the buffer (the full parse for any other frame);
* a bare asyncio TLS protocol fed by the firehose that only splits frames (what the producer
  and asyncio's TLS can deliver) and one that also parses envelope + spot;
* OpenApiPy (``ctrader-open-api`` 0.9.2, ``Protobuf.extract`` per event) fed by the firehose,
  in two virtualenvs: with its protobuf 3.20.1 pin (no compiled extension for this Python:
  pure-Python parsing) and with the pin overridden to the upb protobuf we run on.

The headline is events per CPU second of the consuming process: it compares code, and does
not move with how the producer and the consumer share the machine's cores. Wall-clock rates
(``N / (time of the N-th event - time the burst was asked for)``, on ``time.monotonic``)
are reported beside them, with the machine's load.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import struct
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, cast

from benchmarks._firehose import Firehose
from benchmarks._harness import ROOT, Row, load_average, log, median
from benchmarks._raw import RawLink, raw_spot_session
from benchmarks._simproc import SimProcess
from ctrader_typed import AsyncClient, SpotEvent
from ctrader_typed._framing import FrameDecoder
from ctrader_typed._generated import OpenApiCommonMessages_pb2 as common_pb
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated.messages import LITE_BUILDERS
from ctrader_typed._lite import lite_class
from ctrader_typed._transport import READ_SLICE

SPOT_EVENT = 2131
_HEADER = struct.Struct(">I")
_HEAD = struct.Struct(">IIB")
SPOT_HEAD = 0x08 << 24 | (SPOT_EVENT & 0x7F | 0x80) << 16 | (SPOT_EVENT >> 7) << 8 | 0x12
"""The first four bytes of a spot event's envelope: tag 1, the payload type's 2-byte varint, tag 2."""
# upb parses straight from any buffer; the stubs only admit bytes.
_parse_envelope = cast("Callable[[memoryview], common_pb.ProtoMessage]", common_pb.ProtoMessage.FromString)
_parse_spot = cast("Callable[[memoryview], pb.ProtoOASpotEvent]", pb.ProtoOASpotEvent.FromString)


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


def bare_skip_loop(data: bytes) -> int:
    """The bare loop without the envelope parse: a spot frame is recognised by its header bytes
    (payload type, then a payload that ends the frame) and the spot event parsed from the buffer;
    any other frame takes the full parse."""
    unpack = _HEAD.unpack_from
    parse_envelope = _parse_envelope
    parse_spot = _parse_spot
    view = memoryview(data)
    end = len(data)
    pos = 0
    n = 0
    while end - pos >= 9:
        length, head, size = unpack(view, pos)
        stop = pos + 4 + length
        if head == SPOT_HEAD and length == size + 5 and size < 0x80:
            parse_spot(view[pos + 9 : stop]).bid  # noqa: B018
            n += 1
        else:
            envelope = parse_envelope(view[pos + 4 : stop])
            if envelope.payloadType == SPOT_EVENT:
                pb.ProtoOASpotEvent.FromString(envelope.payload).bid  # noqa: B018
                n += 1
        pos = stop
    return n


def sdk_in_memory(data: bytes, chunk: int = READ_SLICE) -> int:
    """The SDK's own receive path without a socket: FrameDecoder -> client dispatch -> stream.

    Fed in chunks of the TLS link's read size, draining the stream after each, as the
    consumer task would.
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


class _Parsed:
    """A ``BatchingSink`` that parses spot payloads and builds nothing (the breakdown's split part)."""

    def __init__(self, parse: Callable[[Any], Any]) -> None:
        self.n = 0
        self.batch_routes = {SPOT_HEAD: (parse, self._keep, self._count)}

    @staticmethod
    def _keep(message: Any, owned: bool) -> Any:
        return message

    def _count(self, events: list[Any]) -> None:
        self.n += len(events)

    def __call__(self, envelope: common_pb.ProtoMessage, /) -> None:
        self.n += 1


def breakdown(data: bytes, repeats: int = 5) -> dict[str, float]:
    """Microseconds per event of the parts of the SDK's receive path, in memory (best of ``repeats``).

    ``split_and_parse``: the SDK's FrameDecoder taking the envelope-skipping path and parsing
    each spot payload into one lite message as the stream path does (``ctrader_typed._lite``),
    fed as the TLS link reads (nothing built, nothing queued); ``wrap``: building ``SpotEvent``
    from that message, once per event; ``sdk_in_memory``: the whole path without
    a socket (decoder, dispatch, wrapper, stream queue, ``get_nowait``); and both bare loops.
    """
    payloads = _payloads(data)
    n = len(payloads)
    lite = LITE_BUILDERS[SPOT_EVENT]
    reused = lite_class(pb.ProtoOASpotEvent, lite.refused)()
    build = lite.builder(reused)
    reused.ParseFromString(payloads[0])  # every event of the burst has the same fields set

    def split() -> None:
        decoder = FrameDecoder(_Parsed(reused.ParseFromString))
        for offset in range(0, len(data), READ_SLICE):  # as the TLS link reads
            decoder.feed(data[offset : offset + READ_SLICE])

    def wrap() -> None:
        for _ in range(n):
            build(None, True)

    out: dict[str, float] = {}
    parts: tuple[tuple[str, Callable[[], object]], ...] = (
        ("split_and_parse", split),
        ("wrap", wrap),
        ("sdk_in_memory", lambda: sdk_in_memory(data)),
        ("bare_loop", lambda: bare_loop(data)),
        ("bare_skip_loop", lambda: bare_skip_loop(data)),
    )
    for name, fn in parts:
        best = float("inf")
        for _ in range(repeats):
            started = time.process_time()
            fn()
            best = min(best, time.process_time() - started)
        out[name] = best / n * 1e6
    return out


def _payloads(data: bytes) -> list[bytes]:
    payloads: list[bytes] = []
    FrameDecoder(lambda envelope: payloads.append(envelope.payload)).feed(data)
    return payloads


# -- OpenApiPy's two virtualenvs ---------------------------------------------------------------


def _load_interop() -> Any:
    name = "_ctrader_interop_runner"
    if name in sys.modules:
        return sys.modules[name]
    path = ROOT / "tests" / "interop" / "run_interop.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def openapipy_python() -> Path:
    """The interop virtualenv's python: OpenApiPy with its protobuf 3.20.1 pin (created if needed)."""
    runner = _load_interop()
    venv = Path(os.environ.get("CTRADER_INTEROP_VENV", runner.DEFAULT_VENV))
    python: Path = runner.ensure_venv(venv)
    return python


def openapipy_upb_python() -> Path:
    """A second OpenApiPy virtualenv whose protobuf pin is overridden with the protobuf we run on
    (upb), created next to the interop one (``$CTRADER_OPENAPIPY_UPB_VENV``) if needed."""
    from google.protobuf import __version__ as ours

    runner = _load_interop()
    default = Path(runner.DEFAULT_VENV).parent.parent / "openapipy-upb" / "venv"
    venv = Path(os.environ.get("CTRADER_OPENAPIPY_UPB_VENV", default))
    python: Path = runner.ensure_python_venv(
        venv, runner.OPENAPIPY_REQUIREMENTS, "ctrader_open_api, service_identity", sys.executable
    )
    probe = "import google.protobuf as p; from google.protobuf.internal import api_implementation as a; "
    probe += "print(p.__version__, a.Type())"
    found = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, check=False
    ).stdout.split()
    if found != [ours, "upb"]:
        log(f"  stream: overriding OpenApiPy's protobuf pin with protobuf=={ours} in {venv}")
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                f"protobuf=={ours}",
            ],
            capture_output=True,
            check=True,
        )
    return python


class _OpenApiPy:
    """OpenApiPy consuming bursts in its own process (``openapipy_stream.py``)."""

    def __init__(self, process: asyncio.subprocess.Process, cpu: float) -> None:
        self.process = process
        self.cpu = cpu

    @classmethod
    async def start(cls, python: Path, info: dict[str, Any], account: int, n: int, bursts: int) -> _OpenApiPy:
        process = await asyncio.create_subprocess_exec(
            str(python),
            str(Path(__file__).with_name("openapipy_stream.py")),
            str(account),
            str(n),
            str(bursts),
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "CTRADER_SIM_INFO": json.dumps(info)},
        )
        words = (await _line(process, 120.0)).split()
        if words[0] != "ready":
            raise RuntimeError(f"OpenApiPy: {' '.join(words)}")
        return cls(process, float(words[1]))

    async def done(self) -> tuple[float, float]:
        """Wait for the end of a burst: (monotonic time of its last event, CPU seconds it took)."""
        words = (await _line(self.process, 300.0)).split()
        if words[0] != "done":
            raise RuntimeError(f"OpenApiPy: {' '.join(words)}")
        cpu = float(words[2])
        spent, self.cpu = cpu - self.cpu, cpu
        return float(words[1]), spent

    async def stop(self) -> None:
        try:
            await asyncio.wait_for(self.process.wait(), 10.0)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


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


async def _client(host: str, port: int, context: Any, info: dict[str, Any], account: int) -> AsyncClient:
    client = AsyncClient(
        host,
        port,
        ssl_context=context,
        client_id=info["client_id"],
        client_secret=info["client_secret"],
        rate_limits=False,
    )
    await client.connect()
    await client.send_account_auth_req(account, info["access_token"])
    await client.send_subscribe_spots_req(account, list(range(1, 11)), subscribe_to_spot_timestamp=True)
    return client


async def run(
    n: int = 200_000, repeats: int = 9, openapipy_n: int = 50_000, openapipy: bool = True
) -> list[Row]:
    load_before = load_average()
    cpu: dict[str, list[float]] = {}
    theirs: dict[str, _OpenApiPy] = {}
    async with Firehose() as hose, SimProcess() as sim:
        info = hose.info
        ours_account, raw_account, upb_account, pinned_account = (int(a) for a in info["accounts"][:4])
        sim_account = int(sim.info["accounts"][0])
        context = hose.ssl_context()

        # The frames of the bare loops: one firehose burst, captured as received.
        raw = await raw_spot_session(hose.host, hose.port, context, info, raw_account)
        raw.mode = "capture"
        reached = raw.expect(n)
        await hose.burst(n, raw_account)
        await reached
        data = bytes(raw.captured)
        raw.captured.clear()
        log(f"  stream: captured {n:,} spot frames from the firehose, {len(data) / n:.1f} bytes each")

        client = await _client(hose.host, hose.port, context, info, ours_account)
        sim_client = await _client(sim.host, sim.port, sim.ssl_context(), sim.info, sim_account)
        await asyncio.sleep(0.3)  # the simulator's first event after subscribing goes by before any stream
        try:

            def measured(name: str, count: int, cpu_started: float) -> None:
                cpu.setdefault(name, []).append(count / (time.process_time() - cpu_started))

            async def ours_events(
                name: str, source: AsyncClient, burst: Callable[[], Coroutine[Any, Any, int]], batches: bool
            ) -> float:
                async with source.events(SpotEvent, maxsize=n) as stream:
                    cpu_started = time.process_time()
                    started = time.monotonic()
                    burst_task = asyncio.create_task(burst())
                    count = 0
                    if batches:
                        async for batch in stream.batches():
                            for event in batch:
                                event.bid  # noqa: B018
                            count += len(batch)
                            if count >= n:
                                break
                    else:
                        async for event in stream:
                            event.bid  # noqa: B018
                            count += 1
                            if count == n:
                                break
                    finished = time.monotonic()
                    measured(name, count, cpu_started)
                    await burst_task
                    if stream.dropped:
                        raise RuntimeError(f"the stream dropped {stream.dropped} events")
                return n / (finished - started)

            async def raw_mode(name: str, mode: Any) -> float:
                link: RawLink = raw
                link.mode = mode
                reached = link.expect(n)
                cpu_started = time.process_time()
                started = time.monotonic()
                await hose.burst(n, raw_account)
                at = await reached
                measured(name, n, cpu_started)
                return n / (at - started)

            def in_memory(name: str, loop: Callable[[bytes], int]) -> Callable[[], Awaitable[float]]:
                async def side() -> float:
                    cpu_started = time.process_time()
                    started = time.perf_counter()
                    count = loop(data)
                    measured(name, count, cpu_started)
                    return count / (time.perf_counter() - started)

                return side

            sides: dict[str, Callable[[], Awaitable[float]]] = {
                "ours": lambda: ours_events("ours", client, lambda: hose.burst(n, ours_account), False),
                "ours_batches": lambda: ours_events(
                    "ours_batches", client, lambda: hose.burst(n, ours_account), True
                ),
                "ours_simulator": lambda: ours_events(
                    "ours_simulator", sim_client, lambda: sim.burst(n, account_id=sim_account), False
                ),
                "bare": in_memory("bare", bare_loop),
                "bare_skip": in_memory("bare_skip", bare_skip_loop),
                "sdk_in_memory": in_memory("sdk_in_memory", sdk_in_memory),
                "raw_split": lambda: raw_mode("raw_split", "count"),
                "raw_parse": lambda: raw_mode("raw_parse", "parse"),
            }
            if openapipy:
                for name, python, account in (
                    ("openapipy_upb", openapipy_upb_python(), upb_account),
                    ("openapipy_pinned", openapipy_python(), pinned_account),
                ):
                    process = theirs[name] = await _OpenApiPy.start(
                        python, info, account, openapipy_n, repeats + 1
                    )

                    def side(name: str = name, process: _OpenApiPy = process, account: int = account) -> Any:
                        async def measure() -> float:
                            started = time.monotonic()
                            await hose.burst(openapipy_n, account)
                            at, spent = await process.done()
                            cpu.setdefault(name, []).append(openapipy_n / spent)
                            return openapipy_n / (at - started)

                        return measure

                    sides[name] = side()
            samples = await ainterleave(sides, repeats)
        finally:
            await client.close()
            await sim_client.close()
            await raw.close()
            for process in theirs.values():
                await process.stop()

    wall = {name: median(values) for name, values in samples.items()}
    # Per CPU second of the consuming process; the warm-up round left out.
    per_cpu = {name: median(values[1:]) for name, values in cpu.items() if len(values) > 1}
    parts = breakdown(data)
    log(f"  stream breakdown (us/event): {parts}")
    extra: dict[str, Any] = {
        "wall": wall,
        "events_per_cpu_second": per_cpu,
        "cpu_samples": cpu,
        "frame_bytes": len(data) / n,
        "breakdown_us": parts,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "events_per_burst": n,
        "openapipy_events_per_burst": openapipy_n,
        # Wall-clock rates in memory, under the names results/before.json uses.
        "sdk_in_memory": wall["sdk_in_memory"],
        "bare": wall["bare"],
    }

    def row(
        key: str, what: str, side: str, base: str, label: str, target: float | None, ratio_label: str
    ) -> Row:
        ours_rate, base_rate = per_cpu[side], per_cpu[base]
        ratio = ours_rate / base_rate
        return Row(
            key=key,
            what=what,
            ours=ours_rate,
            unit="events/CPU-s",
            baseline=base_rate,
            baseline_label=label,
            ratio=ratio,
            ratio_label=ratio_label,
            target=f">= {target:g}x" if target is not None else "report",
            met=ratio >= target if target is not None else None,
            samples={side: cpu[side], base: cpu[base]},
            # The whole run's figures once (the first row); the others name their two sides.
            extra=extra
            if key == "spot_stream"
            else {
                "events_per_cpu_second": {side: ours_rate, base: base_rate},
                "wall": {side: wall[side], base: wall[base]},
            },
            notes=[
                f"wall clock: {wall[side]:,.0f} against {wall[base]:,.0f} events/s "
                f"({wall[side] / wall[base]:.2f}x)."
            ],
        )

    rows = [
        row(
            "spot_stream",
            "spot stream, firehose -> TLS -> client -> async for, per CPU second",
            "ours",
            "bare",
            "bare loop: split + ProtoMessage + SpotEvent parse, in memory",
            0.6,
            "of the bare loop",
        ),
        row(
            "spot_stream_skip",
            "the same, against the envelope-skipping bare loop",
            "ours",
            "bare_skip",
            "bare loop reading the payload type from the frame header, spot parsed from the buffer",
            0.45,
            "of the skipping loop",
        ),
        row(
            "spot_stream_batches",
            "the same stream read with stream.batches(), per CPU second",
            "ours_batches",
            "bare",
            "bare loop",
            0.8,
            "of the bare loop",
        ),
        row(
            "spot_stream_simulator",
            "spot stream with the simulator as producer (async for), per CPU second",
            "ours_simulator",
            "bare",
            "bare loop",
            None,
            "of the bare loop",
        ),
    ]
    rows[0].notes.append(
        f"{n:,} events per burst ({extra['frame_bytes']:.0f}-byte frames), medians of {repeats} interleaved "
        f"rounds. Without a socket the SDK's receive path (decoder, dispatch, wrapper, queue) runs at "
        f"{per_cpu['sdk_in_memory']:,.0f} events per CPU second. From the firehose, a bare asyncio TLS "
        f"protocol that only splits frames receives {wall['raw_split']:,.0f} events/s (wall), one that "
        f"also parses envelope + spot {wall['raw_parse']:,.0f}/s ({per_cpu['raw_parse']:,.0f} per CPU "
        f"second). Load average before/after the stream benchmark: {_load(load_before)} / "
        f"{_load(extra['load_average_after'])}."
    )
    rows[3].notes.append(
        f"the simulator builds, encodes and writes each event as it goes: it delivered "
        f"{wall['ours_simulator']:,.0f} events/s (wall) to the same client that took "
        f"{wall['ours']:,.0f}/s from the firehose."
    )
    if openapipy:
        rows.append(
            row(
                "openapipy_stream",
                "the same firehose stream consumed by OpenApiPy on upb protobuf (pin overridden), per CPU second",
                "ours",
                "openapipy_upb",
                "OpenApiPy 0.9.2, Protobuf.extract per event, protobuf upb",
                2.0,
                "ours / theirs",
            )
        )
        rows.append(
            row(
                "openapipy_stream_pinned",
                "the same, OpenApiPy with its pinned protobuf 3.20.1 (pure Python here), per CPU second",
                "ours",
                "openapipy_pinned",
                "OpenApiPy 0.9.2, protobuf 3.20.1",
                None,
                "ours / theirs",
            )
        )
        for r in rows[-2:]:
            r.notes.append(
                f"OpenApiPy bursts are {openapipy_n:,} events; it runs in a virtualenv of its own."
            )
    return rows


def _load(values: list[float] | None) -> str:
    return "?" if not values else f"{values[0]:.2f}"


async def _line(process: asyncio.subprocess.Process, timeout: float) -> str:
    assert process.stdout is not None
    raw = await asyncio.wait_for(process.stdout.readline(), timeout)
    if not raw:
        raise RuntimeError("OpenApiPy's process ended early")
    return raw.decode().strip()
