"""Request round trips: sequential ``VersionReq`` latency and 1,000 requests in flight at once.

The baseline is a bare asyncio client against the same simulator: a TLS protocol that writes
the request frame and resolves a future when the answer's frame arrives, nothing else. What
the SDK controls is the latency it adds over that (timeout, correlation, encode, wrap,
session bookkeeping); the target is on that difference. A bare asyncio TLS echo (frames of
the same size written back from ``data_received``) is reported too: the floor of a round
trip on this machine. The echo server and the simulator run in the same helper process
(``_simproc``), on the other core.

The three take turns one request at a time (the order rotating through every permutation),
so each pair of ours and the bare client's sees the same state of the machine - idle cores
here wake slowly, and a round trip's latency moves by a factor of two or more from one
moment to the next. The headline is the median of the per-request differences. Without a
socket (``in_memory``), the SDK against an instant in-memory server and a bare future give
the SDK's own work per request.
"""

from __future__ import annotations

import asyncio
import itertools
import selectors
import time
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks._harness import Row, load_average, log, median, percentile
from benchmarks._raw import EchoClient, RawLink, open_raw
from benchmarks._simproc import SimProcess
from ctrader_typed import AsyncClient
from ctrader_typed._framing import Envelope, FrameDecoder, encode_envelope
from ctrader_typed._generated.OpenApiMessages_pb2 import ProtoOAApplicationAuthReq, ProtoOAVersionRes
from ctrader_typed._transport import Link, OnClosed, OnEnvelope
from ctrader_typed.errors import CTraderError

_VERSION_RES = ProtoOAVersionRes(version="in-memory").SerializeToString()
_WARMUP = 300
"""Round trips per side before the measured ones."""


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


def _load_text() -> str:
    load = load_average()
    return f"{load[0]:.2f}" if load else "unknown"


async def answer_handled(client: AsyncClient, n: int = 1_000) -> float:
    """Median microseconds the client spends on an answer once its envelope is parsed: routing it,
    correlating it with its request, parsing and wrapping the response, resolving the request's
    future (a diagnostic, like ``until_written``: the router's entry point is wrapped for it)."""
    receiver: Any = client._router.on_envelope
    deliver = receiver._deliver
    spent: list[float] = []

    def timed(envelope: Envelope) -> None:
        started = time.perf_counter()
        deliver(envelope)
        spent.append(time.perf_counter() - started)

    receiver._deliver = timed
    try:
        for _ in range(n):
            await client.send_version_req()
    finally:
        receiver._deliver = deliver
    return median(spent) * 1e6


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
        figures["answer_handled"] = await answer_handled(client)
    finally:
        await client.close()
    return figures


async def _in_turns(sides: dict[str, Callable[[], Awaitable[float]]], samples: int) -> dict[str, list[float]]:
    """``samples`` timed calls per side after ``_WARMUP`` untimed ones, one call per side at a time,
    the order rotating through every permutation of the sides."""
    orders = list(itertools.permutations(sides))
    times: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(_WARMUP + samples):
        for name in orders[i % len(orders)]:
            elapsed = await sides[name]()
            if i >= _WARMUP:
                times[name].append(elapsed)
    return times


class SpinningSelector(selectors.DefaultSelector):
    """A selector that never sleeps: it polls without a timeout until something is ready (or the
    timeout it was given has passed), so the event loop's thread keeps its core busy."""

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        clock = time.monotonic
        until = None if timeout is None else clock() + timeout
        poll = super().select
        while True:
            ready = poll(0)
            if ready or (until is not None and clock() >= until):
                return ready


def spinning_loop() -> asyncio.AbstractEventLoop:
    """An event loop over ``SpinningSelector`` (``asyncio.Runner(loop_factory=spinning_loop)``)."""
    return asyncio.SelectorEventLoop(SpinningSelector())


class _Pair:
    """The SDK's client and the bare client, both application-authorised against one simulator;
    each ``*_once`` makes one ``VersionReq`` round trip and returns how long it took."""

    def __init__(self, client: AsyncClient, bare: RawLink) -> None:
        self.client = client
        self.bare = bare

    @classmethod
    async def open(cls, sim: SimProcess) -> _Pair:
        info = sim.info
        client = AsyncClient(
            sim.host,
            sim.port,
            ssl_context=sim.ssl_context(),
            client_id=info["client_id"],
            client_secret=info["client_secret"],
            rate_limits=False,
        )
        bare = await open_raw(sim.host, sim.port, sim.ssl_context())
        await bare.request(
            2100,
            ProtoOAApplicationAuthReq(
                clientId=info["client_id"], clientSecret=info["client_secret"]
            ).SerializeToString(),
            2101,
        )
        await client.connect()
        return cls(client, bare)

    async def ours_once(self) -> float:
        started = time.perf_counter()
        await self.client.send_version_req()
        return time.perf_counter() - started

    async def bare_once(self) -> float:
        started = time.perf_counter()
        await self.bare.round_trip(2104, b"", 2105)
        return time.perf_counter() - started

    async def close(self) -> None:
        await self.client.close()
        await self.bare.close()


async def added_while_spinning(samples: int = 3_000) -> Row:
    """The latency the SDK adds over the bare client, measured as in ``run`` but on an event loop
    that never sleeps (``spinning_loop``): how much of the added latency comes from running right
    after the process woke from waiting on the socket."""
    async with SimProcess() as sim:
        pair = await _Pair.open(sim)
        try:
            times = await _in_turns({"ours": pair.ours_once, "bare": pair.bare_once}, samples)
        finally:
            await pair.close()
    ours = [x * 1e6 for x in times["ours"]]
    bare_us = [x * 1e6 for x in times["bare"]]
    added = median([a - b for a, b in zip(ours, bare_us, strict=True)])
    log(f"  roundtrip, spinning event loop: added {added:+.1f} us (ours p50 {median(ours):.0f} us)")
    return Row(
        key="roundtrip_spinning",
        what="request round trip (VersionReq) on an event loop that never sleeps: latency the SDK adds",
        ours=added,
        unit="us",
        baseline=median(bare_us),
        baseline_label=f"bare asyncio client's p50 on the same loop; ours {median(ours):.0f} us",
        ratio=median(ours) / median(bare_us),
        ratio_label="(p50, ours / bare client)",
        target="context",
        samples={"ours_us": ours, "bare_client_simulator_us": bare_us},
        notes=[
            f"{len(ours):,} round trips per side, paired as in the round-trip row, with the client's event "
            "loop polling the socket instead of sleeping on it (its core stays busy): what the SDK adds "
            "when its code does not run right after a wake-up."
        ],
    )


async def run(samples: int = 3_000, repeats: int = 5, concurrent: int = 1_000) -> list[Row]:
    """``samples`` sequential round trips per side, taken one request per side at a time (the
    order rotating through every permutation), then ``repeats`` bursts of ``concurrent``."""
    async with SimProcess() as sim:
        info = sim.info
        loop = asyncio.get_running_loop()
        _, echo = await loop.create_connection(
            EchoClient, sim.host, int(info["echo_port"]), ssl=sim.echo_ssl_context(), server_hostname=sim.host
        )
        pair = await _Pair.open(sim)
        client = pair.client
        # What the client writes for a VersionReq (its ids run c1, c2 ...: use one of that length).
        frame = encode_envelope(2104, b"", f"c{samples}")
        try:
            clock = time.perf_counter

            async def echo_once() -> float:
                started = clock()
                await echo.round_trip(frame)
                return clock() - started

            async def burst() -> float:
                started = clock()
                answers = await asyncio.gather(*(client.send_version_req() for _ in range(concurrent)))
                elapsed = clock() - started
                if len(answers) != concurrent or any(a.version != answers[0].version for a in answers):
                    raise RuntimeError("not every concurrent request got its answer")
                return concurrent / elapsed

            times = await _in_turns(
                {"ours": pair.ours_once, "bare": pair.bare_once, "echo": echo_once}, samples
            )
            await burst()  # warm-up
            rates = []
            for _ in range(repeats):
                rates.append(await burst())
                log(f"  roundtrip: {concurrent} concurrent -> {rates[-1]:,.0f} requests/s")
            written = await until_written(client)
            handled = await answer_handled(client)
        finally:
            await pair.close()
            assert echo.transport is not None
            echo.transport.close()

    us = {name: [x * 1e6 for x in values] for name, values in times.items()}
    ours, bare_sim, raw = us["ours"], us["bare"], us["echo"]
    p50, p99 = percentile(ours, 50), percentile(ours, 99)
    s50, s99 = percentile(bare_sim, 50), percentile(bare_sim, 99)
    b50, b99 = percentile(raw, 50), percentile(raw, 99)
    differences = [a - b for a, b in zip(ours, bare_sim, strict=True)]
    added = median(differences)
    # The same median over consecutive slices of the run: how much it moves within one run.
    chunk = max(1, len(differences) // repeats)
    slices = [median(differences[i : i + chunk]) for i in range(0, chunk * repeats, chunk)]
    log(
        f"  roundtrip: ours p50 {p50:.0f} us p99 {p99:.0f} us; bare client <-> simulator p50 {s50:.0f} us "
        f"p99 {s99:.0f} us; echo p50 {b50:.0f} us p99 {b99:.0f} us; added (median of paired differences) "
        f"{added:+.1f} us, per slice {', '.join(f'{x:+.1f}' for x in slices)}"
    )
    memory = await in_memory()
    own = memory["ours"] - memory["bare"]
    log(f"  roundtrip in memory (us per request): {memory}")
    return [
        Row(
            key="roundtrip_p50",
            what=(
                "request round trip (VersionReq), sequential: latency the SDK adds over a bare client "
                "(median of per-request paired differences)"
            ),
            ours=added,
            unit="us",
            baseline=s50,
            baseline_label=f"bare asyncio client's p50, same simulator; ours {p50:.0f} us",
            ratio=p50 / s50,
            ratio_label="(p50, ours / bare client)",
            target="<= +10 us",
            met=added <= 10.0,
            samples={
                "ours_us": ours,
                "echo_us": raw,
                "bare_client_simulator_us": bare_sim,
            },
            extra={
                "added_p50_us": added,
                "added_per_slice_us": slices,
                "difference_of_p50s_us": p50 - s50,
                "ours_p50_us": p50,
                "ours_p99_us": p99,
                "bare_client_simulator_p50_us": s50,
                "bare_client_simulator_p99_us": s99,
                "echo_p50_us": b50,
                "echo_p99_us": b99,
                "in_memory_us": memory,
                "until_written_us": written,
                "answer_handled_us": handled,
                "load_average_after": load_average(),
            },
            notes=[
                f"{len(ours):,} round trips per side, one request per side at a time (the order of ours, the "
                "bare client and the echo rotating through every permutation), so both sides see the same "
                "state of the machine; the figure is the median of the per-request differences "
                f"(over {repeats} consecutive slices of the run: {', '.join(f'{x:+.1f}' for x in slices)} us). "
                f"p50 {p50:.0f} us against {s50:.0f} us (difference of the p50s {p50 - s50:+.1f} us), "
                f"p99 {p99:.0f} us against {s99:.0f} us. From the call to the frame's write the SDK takes "
                f"{written:.1f} us over TLS (median), {memory['until_written']:.1f} us in memory; handling the "
                f"answer's envelope (routing, correlation, parsing and wrapping the response) "
                f"{handled:.1f} us over TLS, {memory['answer_handled']:.1f} us in memory. On a busy machine "
                "the figure grows and moves between slices (load average after this benchmark: "
                f"{_load_text()})."
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
            key="roundtrip_echo",
            what=f"raw asyncio TLS echo of a {len(frame)}-byte frame, p50 (context: the floor of a round trip)",
            ours=b50,
            unit="us",
            target="context",
            extra={"echo_p50_us": b50, "echo_p99_us": b99},
            notes=[
                f"no server work at all; p99 {b99:.0f} us. Taken in turn with the two clients above; the bare "
                f"client's p50 is {s50 / b50:.2f}x it."
            ],
        ),
        Row(
            key="roundtrip_in_memory",
            what="request round trip without a socket (instant in-memory server): the SDK's own work",
            ours=memory["ours"],
            unit="us",
            baseline=memory["bare"],
            baseline_label="bare future, same frame encode and parse",
            ratio=memory["ours"] / memory["bare"],
            ratio_label="of the bare future",
            target="report",
            extra={"own_work_us": own, **memory},
            notes=[
                f"the SDK's own work is {own:.1f} us per request ({memory['ours']:.1f} us against "
                f"{memory['bare']:.1f} us; medians of interleaved blocks of 5,000 sequential requests)."
            ],
        ),
        Row(
            key="concurrent_requests",
            what=f"{concurrent:,} concurrent in-flight VersionReq (limits off)",
            ours=median(rates),
            unit="requests/s",
            target="all complete; report",
            met=True,
            samples={"requests_per_second": rates},
            extra={"in_flight": concurrent},
            notes=[f"all {concurrent:,} answered in each of {repeats} rounds; median shown."],
        ),
    ]
