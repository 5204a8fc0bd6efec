"""Decode + wrap of large answers against a bare protobuf parse of the same bytes.

* a ``SymbolsListRes`` of 20,000 light symbols;
* a ``GetTrendbarsRes`` of 100,000 bars.

Per message: ``from_bytes`` alone against the bare parse (``PROTO.FromString``; repeated
sub-messages are wrapped on first access), and ``from_bytes`` then reading every field of
every element against the bare parse then the same reads on the protobuf objects (the
target: <= 1.5x). The read loop is the same function on both sides.

A third side, ``floor``, is the cheapest eager wrapping there can be in CPython: read every
field of every protobuf element into a new slotted object with straight-line code (no
presence test, no enum or text conversion, no frozen class; the garbage collector paused
as ours pauses it), then read every field back. Whatever reads a field's value out
of protobuf once and hands it out from a Python object of its own pays at least that; its
ratio to the bare reads is reported beside ours.

A fourth side, ``compiled``, builds the very same wrappers in C (``_compiled.c``: each instance
allocated and its slots filled with the generated code's presence tests and conversions, no
Python per element), then reads every field back: the lowest a compiled accelerator of these
wrappers could go. It needs this Python's C compiler and headers; without them the side is
left out and the row says why.
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks._compiled import compiled_builder, why_not
from benchmarks._harness import Row, interleave, log, median
from ctrader_typed import GetTrendbarsRes, SymbolsListRes
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb


def symbols_list_bytes(n: int = 20_000) -> bytes:
    rng = random.Random(1)  # noqa: S311 - sample data
    res = pb.ProtoOASymbolsListRes(ctidTraderAccountId=44_000_001)
    for i in range(1, n + 1):
        res.symbol.add(
            symbolId=i,
            symbolName=f"SYM{i:05d}",
            enabled=True,
            baseAssetId=rng.randint(1, 300),
            quoteAssetId=rng.randint(1, 300),
            symbolCategoryId=rng.randint(1, 40),
            description=f"Symbol number {i}",
            sortingNumber=float(i),
        )
    return res.SerializeToString()


def trendbars_bytes(n: int = 100_000) -> bytes:
    rng = random.Random(2)  # noqa: S311 - sample data
    res = pb.ProtoOAGetTrendbarsRes(
        ctidTraderAccountId=44_000_001, period=model_pb.M1, symbolId=1, hasMore=False
    )
    minute = 29_000_000
    low = 108_000
    for i in range(n):
        low = max(1_000, low + rng.randint(-20, 20))
        res.trendbar.add(
            volume=rng.randint(1, 5_000),
            period=model_pb.M1,
            low=low,
            deltaOpen=rng.randint(0, 30),
            deltaClose=rng.randint(0, 30),
            deltaHigh=rng.randint(0, 40),
            utcTimestampInMinutes=minute + i,
        )
    return res.SerializeToString()


_SYMBOL_PROTO_FIELDS = [f.name for f in model_pb.ProtoOALightSymbol.DESCRIPTOR.fields]
_BAR_PROTO_FIELDS = [f.name for f in model_pb.ProtoOATrendbar.DESCRIPTOR.fields]


def _touch(items: Any, names: list[str]) -> int:
    n = 0
    for item in items:
        for name in names:
            getattr(item, name)
        n += 1
    return n


def _floor_builder(proto_fields: list[str], element_fields: list[str]) -> Callable[[Any], list[Any]]:
    """The floor side's build: straight-line code, one plain slot store per field.

    The source is written out for these fields (as a code generator would) so that the
    floor pays no per-field loop; the class has no ``__setattr__`` of its own.
    """
    floor = type("Floor", (), {"__slots__": tuple(element_fields)})
    stores = "".join(
        f"        o.{name} = m.{proto_name}\n"
        for name, proto_name in zip(element_fields, proto_fields, strict=True)
    )
    source = (
        "def build(items):\n"
        "    out = []\n"
        "    append = out.append\n"
        "    for m in items:\n"
        "        o = new(Floor)\n"
        f"{stores}"
        "        append(o)\n"
        "    return out\n"
    )
    namespace: dict[str, Any] = {"new": object.__new__, "Floor": floor}
    exec(source, namespace)  # noqa: S102 - our own text, built from the schema's field names
    build: Callable[[Any], list[Any]] = namespace["build"]
    return build


def _timed(fn: Callable[[], object]) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started

    return run


def _case(
    key: str, label: str, data: bytes, wrapper: Any, repeated: str, proto_fields: list[str], repeats: int
) -> list[Row]:
    proto_cls = wrapper.PROTO
    element_fields = list(type(getattr(wrapper.from_bytes(data), repeated)[0]).__dataclass_fields__)

    def bare() -> None:
        proto_cls.FromString(data)

    def ours() -> None:
        wrapper.from_bytes(data)

    def ours_all() -> None:
        _touch(getattr(wrapper.from_bytes(data), repeated), element_fields)

    def bare_all() -> None:
        _touch(getattr(proto_cls.FromString(data), repeated), proto_fields)

    def built_then_read(build: Callable[[Any], Sequence[Any]]) -> Callable[[], None]:
        """A side that parses, wraps the repeated field's messages with ``build`` (the collector
        paused, as ours pauses it for a large repeated field), then reads every field back."""

        def side() -> None:
            items = getattr(proto_cls.FromString(data), repeated)
            gc.disable()
            try:
                built = build(items)
            finally:
                gc.enable()
            _touch(built, element_fields)

        return side

    sides = {
        "bare": _timed(bare),
        "ours": _timed(ours),
        "ours_all": _timed(ours_all),
        "bare_all": _timed(bare_all),
        "floor_all": _timed(built_then_read(_floor_builder(proto_fields, element_fields))),
    }
    element_class = type(getattr(wrapper.from_bytes(data), repeated)[0])
    compiled = compiled_builder(element_class)
    if compiled is not None:
        expected = getattr(wrapper.from_bytes(data), repeated)
        if compiled(getattr(proto_cls.FromString(data), repeated)) != expected:
            raise RuntimeError(f"the compiled builder does not build what from_bytes builds ({label})")
        sides["compiled_all"] = _timed(built_then_read(compiled))
    samples = interleave(sides, repeats)
    b, o, oa, ba, fa = (
        median(samples[k]) * 1e3 for k in ("bare", "ours", "ours_all", "bare_all", "floor_all")
    )
    ca = median(samples["compiled_all"]) * 1e3 if "compiled_all" in samples else None
    compiled_text = (
        f"compiled {ca:.1f} ms ({ca / ba:.2f}x)" if ca is not None else f"compiled: not built ({why_not()})"
    )
    log(
        f"  decode {label}: bare {b:.1f} ms, ours {o:.1f} ms, ours+read all {oa:.1f} ms, "
        f"bare+read all {ba:.1f} ms ({oa / ba:.2f}x), floor {fa:.1f} ms ({fa / ba:.2f}x), {compiled_text}"
    )
    compiled_note = (
        f"the same wrappers built in C (every slot filled with the same presence tests and conversions, "
        f"no Python per element), then read back: {ca:.1f} ms, {ca / ba:.2f}x the bare reads."
        if ca is not None
        else f"the compiled side was not built here: {why_not()}."
    )
    return [
        Row(
            key=f"{key}_decode",
            what=f"decode + wrap of {label}",
            ours=o,
            unit="ms",
            baseline=b,
            baseline_label="bare protobuf parse of the same bytes",
            ratio=o / b,
            ratio_label="of the bare parse",
            target="<= 2x",
            met=o / b <= 2,
            samples={k: [x * 1e3 for x in v] for k, v in samples.items()},
            extra={"bytes": len(data)},
        ),
        Row(
            key=f"{key}_decode_all",
            what=f"decode + wrap of {label}, then read every field of every element",
            ours=oa,
            unit="ms",
            baseline=b,
            baseline_label="bare protobuf parse",
            ratio=oa / b,
            ratio_label="of the bare parse",
            target="report",
            extra={"bare_parse_and_read_all_ms": ba, "ratio_to_bare_parse_and_read_all": oa / ba},
            notes=[
                f"bare parse then reading every field of the protobuf objects: {ba:.1f} ms "
                f"({ba / b:.1f}x the bare parse); ours is {oa / ba:.2f}x that."
            ],
        ),
        Row(
            key=f"{key}_read_all",
            what=f"{label}: from_bytes, then every field of every element read (vs the same reads on bare protobuf)",
            ours=oa,
            unit="ms",
            baseline=ba,
            baseline_label="bare parse, then reading every field of the protobuf objects",
            ratio=oa / ba,
            ratio_label="of the bare parse and reads",
            target="<= 1.5x",
            met=oa / ba <= 1.5,
            extra={
                "floor_ms": fa,
                "floor_ratio": fa / ba,
                "compiled_ms": ca,
                "compiled_ratio": ca / ba if ca is not None else None,
                "compiled_missing": None if ca is not None else why_not(),
                "elements": len(getattr(proto_cls.FromString(data), repeated)),
            },
            notes=[
                f"the floor of any eager wrapping (every field read from protobuf into a plain slotted "
                f"object, no presence test or conversion, then read back): {fa:.1f} ms, {fa / ba:.2f}x the "
                "bare reads.",
                compiled_note,
            ],
        ),
    ]


def run(repeats: int = 9) -> list[Row]:
    rows = _case(
        "symbols_20k",
        "a 20,000-symbol SymbolsListRes",
        symbols_list_bytes(),
        SymbolsListRes,
        "symbol",
        _SYMBOL_PROTO_FIELDS,
        repeats,
    )
    rows += _case(
        "trendbars_100k",
        "a 100,000-bar GetTrendbarsRes",
        trendbars_bytes(),
        GetTrendbarsRes,
        "trendbar",
        _BAR_PROTO_FIELDS,
        repeats,
    )
    return rows
