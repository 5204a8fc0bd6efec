"""How generated wrappers are built from protobuf messages.

``_from_proto`` fills a build class and assigns the wrapper's class; presence is asked only of
a value equal to the field's default; a large repeated field is wrapped with the garbage
collector paused. These tests pin what that must keep: a field sent with its default value is
that value, an absent one is ``None``, subclasses get instances of themselves, and the
collector's state is what it was before.
"""

from __future__ import annotations

import dataclasses
import gc
import pickle
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from codegen.naming import snake_case
from ctrader_typed import GetTrendbarsRes, SpotEvent, Symbol, Trendbar, TrendbarPeriod
from ctrader_typed._base import _Pending
from ctrader_typed._dataclass import adopt, build_class
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed._generated import messages as generated

WRAPPERS: list[Any] = [getattr(generated, name) for name in generated.__all__]


def _optional_scalars() -> Iterator[tuple[Any, FieldDescriptor]]:
    for wrapper in WRAPPERS:
        for field in wrapper.PROTO.DESCRIPTOR.fields:
            if (
                field.has_presence
                and not field.is_required
                and field.type != FieldDescriptor.TYPE_MESSAGE
                and snake_case(field.name) in wrapper.__dataclass_fields__
            ):
                yield wrapper, field


OPTIONAL_SCALARS = list(_optional_scalars())


def test_the_schema_has_optional_fields_with_non_zero_defaults() -> None:
    # What the "value equals the default" branch is about: enum defaults other than 0 and
    # explicit defaults (M1, GOOD_TILL_CANCEL, "USD"...).
    assert any(f.default_value not in (0, 0.0, "", b"", False) for _, f in OPTIONAL_SCALARS)
    assert len(OPTIONAL_SCALARS) > 100


@pytest.mark.parametrize(
    ("wrapper", "field"), OPTIONAL_SCALARS, ids=lambda x: getattr(x, "__name__", getattr(x, "name", ""))
)
def test_a_field_sent_with_its_default_value_is_present(wrapper: Any, field: FieldDescriptor) -> None:
    name = snake_case(field.name)
    sent = wrapper.PROTO()
    setattr(sent, field.name, field.default_value)
    assert sent.HasField(field.name)
    for built in (wrapper.from_bytes(sent.SerializePartialToString()), wrapper.from_proto(sent)):
        value = getattr(built, name)
        assert value is not None
        assert value == field.default_value
    absent = wrapper.from_bytes(wrapper.PROTO().SerializePartialToString())
    assert getattr(absent, name) is None
    assert getattr(wrapper.from_proto(wrapper.PROTO()), name) is None


def test_other_values_than_the_default_are_kept() -> None:
    bar = model_pb.ProtoOATrendbar(volume=1, period=model_pb.H1, low=0, deltaOpen=5)
    built = Trendbar.from_bytes(bar.SerializeToString())
    assert built.period is TrendbarPeriod.H1
    assert built.low == 0
    assert built.delta_open == 5
    assert built.delta_close is None
    symbol = model_pb.ProtoOASymbol(symbolId=1, digits=5, pipPosition=4, minCommissionAsset="EUR")
    assert Symbol.from_bytes(symbol.SerializeToString()).min_commission_asset == "EUR"
    assert (
        Symbol.from_bytes(
            model_pb.ProtoOASymbol(symbolId=1, digits=5, pipPosition=4).SerializeToString()
        ).min_commission_asset
        is None
    )


def _spot_bytes() -> bytes:
    bar = model_pb.ProtoOATrendbar(volume=3, period=model_pb.M5, low=100)
    message = pb.ProtoOASpotEvent(ctidTraderAccountId=1, symbolId=2, bid=7, trendbar=[bar])
    return message.SerializeToString()


class WithDict(SpotEvent):
    """A subclass whose instances have a ``__dict__``: another layout than ``SpotEvent``'s."""


class SameLayout(SpotEvent):
    __slots__ = ()


@pytest.mark.parametrize("subclass", [WithDict, SameLayout])
def test_a_subclass_builds_instances_of_itself(subclass: type[SpotEvent]) -> None:
    built = subclass.from_bytes(_spot_bytes())
    assert type(built) is subclass
    assert built.bid == 7
    assert built.trendbar == (Trendbar(volume=3, period=TrendbarPeriod.M5, low=100),)
    eager = subclass.from_proto(pb.ProtoOASpotEvent.FromString(_spot_bytes()))
    assert type(eager) is subclass
    assert eager == built
    assert built != SpotEvent.from_bytes(_spot_bytes())  # another class, as between dataclasses
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.bid = 1  # type: ignore[misc]


def test_the_wrapper_class_is_the_generated_one_and_behaves_as_before() -> None:
    built = SpotEvent.from_bytes(_spot_bytes())
    assert type(built) is SpotEvent
    assert not hasattr(built, "__dict__")
    assert pickle.loads(pickle.dumps(built)) == built  # noqa: S301 - our own bytes
    assert dataclasses.replace(built, bid=8).bid == 8
    assert hash(built) == hash(SpotEvent.from_proto(pb.ProtoOASpotEvent.FromString(_spot_bytes())))


def test_build_class_has_the_wrapper_slots_and_no_frozen_setattr() -> None:
    builder: Any = build_class(Trendbar)
    assert set(builder.WRAPPER_SLOTS) == set(Trendbar.__dataclass_fields__)
    # A subclass that adds nothing: the same layout, so __class__ assignment is allowed.
    assert issubclass(builder, Trendbar)
    assert builder.__basicsize__ == Trendbar.__basicsize__
    assert builder.__setattr__ is object.__setattr__
    b = builder()
    for name in builder.WRAPPER_SLOTS:
        setattr(b, name, None)
    b.volume = 5
    copied: Trendbar = adopt(Trendbar, b)
    assert copied == Trendbar(volume=5)
    b.__class__ = Trendbar
    assert b == Trendbar(volume=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.volume = 6


def test_a_build_class_stores_past_a_lazy_field() -> None:
    # SpotEvent.trendbar is a lazy field (a descriptor over the slot, installed after the build
    # class was made): the build class still stores straight into the slot.
    lazy = SpotEvent.__dict__["trendbar"]
    assert type(lazy).__name__ == "_LazyField"
    b = generated._SpotEvent_BUILD()
    bar = Trendbar(volume=1)
    for name in type(b).WRAPPER_SLOTS:
        setattr(b, name, None)
    b.ctid_trader_account_id, b.symbol_id, b.trendbar = 1, 2, (bar,)
    assert type(b).__dict__["trendbar"] is not lazy
    b.__class__ = SpotEvent
    assert b.trendbar == (bar,)
    assert b == SpotEvent(ctid_trader_account_id=1, symbol_id=2, trendbar=(bar,))


def test_build_class_refuses_a_slot_with_a_descriptor_over_it() -> None:
    # SpotEvent.trendbar is lazy now: a build class made at this point would store through the
    # lazy descriptor, so it is refused (the generated module makes it first).
    with pytest.raises(TypeError, match="trendbar is not a plain slot"):
        build_class(SpotEvent)


def test_build_class_refuses_a_class_without_slots() -> None:
    class Loose:
        pass

    with pytest.raises(TypeError, match="declares no __slots__"):
        build_class(Loose)


def _bars(n: int) -> Any:
    res = pb.ProtoOAGetTrendbarsRes(ctidTraderAccountId=1, period=model_pb.M1, symbolId=1)
    for i in range(n):
        res.trendbar.add(volume=i + 1, low=100 + i, utcTimestampInMinutes=i)
    return res


@pytest.mark.parametrize("n", [10, 5_000])
def test_wrapping_a_repeated_field_leaves_the_collector_as_it_was(n: int) -> None:
    data = _bars(n).SerializeToString()
    assert gc.isenabled()
    bars = GetTrendbarsRes.from_bytes(data).trendbar
    assert gc.isenabled()
    assert len(bars) == n
    assert bars[-1] == Trendbar(volume=n, low=100 + n - 1, utc_timestamp_in_minutes=n - 1)
    gc.disable()
    try:
        assert len(GetTrendbarsRes.from_bytes(data).trendbar) == n
        assert not gc.isenabled()  # not turned on behind the caller's back
    finally:
        gc.enable()


def test_the_collector_is_back_on_when_wrapping_fails() -> None:
    def failing(items: Sequence[Message], owned: bool) -> tuple[object, ...]:
        raise KeyError("unknown value")

    pending = _Pending(list(_bars(2_000).trendbar), failing)
    with pytest.raises(KeyError):
        pending.materialize()
    assert gc.isenabled()


def test_the_dataclass_metadata_is_made_on_first_use_in_a_fresh_interpreter() -> None:
    # Importing the package needs neither ``dataclasses`` nor the Field objects; the first
    # call that reads them makes them, and the frozen error is the dataclasses one.
    code = """
import sys
import ctrader_typed
from ctrader_typed import ApplicationAuthReq, SpotEvent
assert "dataclasses" not in sys.modules, "imported eagerly"
spot = SpotEvent(ctid_trader_account_id=1, symbol_id=2, bid=3)
assert "bid=3" in repr(spot) and "client_secret" not in repr(ApplicationAuthReq(client_id="a", client_secret="s"))
try:
    spot.bid = 4
except AttributeError as exc:
    import dataclasses
    assert isinstance(exc, dataclasses.FrozenInstanceError)
else:
    raise AssertionError("not frozen")
assert [f.name for f in dataclasses.fields(SpotEvent)][:3] == ["ctid_trader_account_id", "symbol_id", "bid"]
assert dataclasses.replace(spot, ask=5).ask == 5
assert not [f for f in dataclasses.fields(ApplicationAuthReq) if f.name == "client_secret"][0].repr
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
