"""Every generated wrapper converts to and from its protobuf message without loss."""

from __future__ import annotations

import dataclasses
import enum

import pytest
from google.protobuf.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st

import ctrader_typed
from ctrader_typed import ExecutionEvent, OrderType, SpotEvent, Symbol, Trendbar, TrendbarPeriod
from ctrader_typed._base import ProtoWrapper
from ctrader_typed._generated import messages as generated
from ctrader_typed._generated.registry import PAYLOAD_TYPES, payload_type_of
from tests.unit.strategies import messages_of

WRAPPERS: list[type[ProtoWrapper[Message]]] = [getattr(generated, name) for name in generated.__all__]


def test_every_schema_message_has_a_wrapper() -> None:
    from ctrader_typed._generated import (
        OpenApiCommonMessages_pb2,
        OpenApiMessages_pb2,
        OpenApiModelMessages_pb2,
    )

    names = set()
    for module in (OpenApiCommonMessages_pb2, OpenApiMessages_pb2, OpenApiModelMessages_pb2):
        names |= set(module.DESCRIPTOR.message_types_by_name)
    assert {w.PROTO.DESCRIPTOR.name for w in WRAPPERS} == names
    assert len(WRAPPERS) == 119


@pytest.mark.parametrize("wrapper", WRAPPERS, ids=lambda w: w.__name__)
def test_round_trip(wrapper: type[ProtoWrapper[Message]]) -> None:
    @settings(max_examples=15, deadline=None)
    @given(messages_of(wrapper.PROTO))
    def check(message: Message) -> None:
        wrapped = wrapper.from_proto(message)
        # protobuf -> wrapper -> protobuf is lossless ...
        assert wrapped.to_proto() == message
        # ... and so is wrapper -> bytes -> protobuf -> wrapper.
        data = wrapped.to_bytes()
        assert wrapper.PROTO.FromString(data) == message
        assert wrapper.from_bytes(data) == wrapped

    check()


@pytest.mark.parametrize("wrapper", WRAPPERS, ids=lambda w: w.__name__)
def test_wrappers_are_frozen_slotted_and_typed(wrapper: type[ProtoWrapper[Message]]) -> None:
    assert "__dataclass_fields__" in wrapper.__dict__
    assert getattr(wrapper, "__dataclass_params__").frozen  # noqa: B009
    assert "__slots__" in wrapper.__dict__
    assert not hasattr(wrapper, "__dict__") or "__dict__" not in wrapper.__slots__
    assert "Schema name:" in (wrapper.__doc__ or "")
    assert getattr(ctrader_typed, wrapper.__name__) is wrapper


def test_field_names_are_snake_case_with_acronyms() -> None:
    names = {f.name for f in dataclasses.fields(Symbol)}
    assert "skip_swap_periods" in names
    assert "swap_rollover_3_days" in names
    assert all(name == name.lower() for name in names)


def test_enum_fields_are_int_enums_and_optionals_are_none() -> None:
    bar = Trendbar.from_bytes(Trendbar(volume=5, period=TrendbarPeriod.H1, low=100).to_bytes())
    assert bar.period is TrendbarPeriod.H1
    assert isinstance(bar.period, enum.IntEnum)
    assert bar.delta_open is None
    spot = SpotEvent.from_proto(SpotEvent.PROTO(ctidTraderAccountId=1, symbolId=2, bid=0))
    assert spot.bid == 0  # present and zero is not absent
    assert spot.ask is None
    assert spot.trendbar == ()


def test_cannot_mutate_a_wrapper() -> None:
    spot = SpotEvent(ctid_trader_account_id=1, symbol_id=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spot.bid = 5  # type: ignore[misc]


def test_secrets_never_show_in_repr() -> None:
    from ctrader_typed import ApplicationAuthReq, GetAccountListByAccessTokenRes, RefreshTokenRes

    auth = ApplicationAuthReq(client_id="my-app", client_secret="s3cr3t-value")
    tokens = RefreshTokenRes(
        access_token="acc-XYZ", token_type="bearer", expires_in=10, refresh_token="ref-XYZ"
    )
    listing = GetAccountListByAccessTokenRes(access_token="acc-XYZ")
    for text in (repr(auth), str(auth), repr(tokens), repr(listing)):
        assert "s3cr3t-value" not in text
        assert "acc-XYZ" not in text
        assert "ref-XYZ" not in text
    assert "my-app" in repr(auth)


def test_registry_maps_payload_types_both_ways() -> None:
    assert PAYLOAD_TYPES[2131] is SpotEvent
    assert SpotEvent.PAYLOAD_TYPE == 2131 == payload_type_of("ProtoOASpotEvent")
    assert ExecutionEvent.PAYLOAD_TYPE == 2126
    for number, wrapper in PAYLOAD_TYPES.items():
        assert number == wrapper.PAYLOAD_TYPE
        assert payload_type_of(wrapper.PROTO.DESCRIPTOR.full_name) == number
    with pytest.raises(KeyError):
        payload_type_of("ProtoOASymbol")  # model message: no payload type


def test_enum_members_mirror_the_schema() -> None:
    from ctrader_typed._generated import OpenApiModelMessages_pb2 as model

    assert int(OrderType.MARKET) == model.MARKET == 1
    for member in OrderType:
        assert model.ProtoOAOrderType.Value(member.name) == member.value


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_spot_prices_keep_full_uint64_range(bid: int, ask: int) -> None:
    spot = SpotEvent(ctid_trader_account_id=1, symbol_id=1, bid=bid, ask=ask)
    assert SpotEvent.from_bytes(spot.to_bytes()) == spot


def _symbols_list() -> Message:
    from ctrader_typed._generated import OpenApiMessages_pb2

    message = OpenApiMessages_pb2.ProtoOASymbolsListRes(ctidTraderAccountId=7)
    for i in range(3):
        symbol = message.symbol.add()
        symbol.symbolId = i
        symbol.symbolName = f"S{i}"
    return message


def test_parsed_repeated_sub_messages_wrap_on_first_read_and_behave_like_tuples() -> None:
    import copy
    import pickle

    from ctrader_typed import LightSymbol, SymbolsListRes

    message = _symbols_list()
    lazy = SymbolsListRes.from_bytes(message.SerializeToString())
    eager = SymbolsListRes.from_proto(message)  # type: ignore[arg-type]
    assert type(eager.symbol) is tuple
    assert lazy == eager
    assert hash(lazy) == hash(eager)
    assert type(lazy.symbol) is tuple
    assert lazy.symbol[1] == LightSymbol(symbol_id=1, symbol_name="S1")
    assert lazy.symbol is lazy.symbol  # wrapped once, then kept
    assert "symbol_name='S2'" in repr(SymbolsListRes.from_bytes(message.SerializeToString()))
    assert pickle.loads(pickle.dumps(lazy)) == eager  # noqa: S301 - our own bytes
    assert copy.deepcopy(lazy) == eager
    assert dataclasses.replace(lazy, ctid_trader_account_id=8).symbol == eager.symbol
    assert (
        dataclasses.asdict(SymbolsListRes.from_bytes(message.SerializeToString()))["symbol"][0]["symbol_id"]
        == 0
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        lazy.symbol = ()  # type: ignore[misc]


def test_from_proto_copies_so_later_changes_to_the_message_never_show_through() -> None:
    from ctrader_typed import SymbolsListRes

    message = _symbols_list()
    wrapped = SymbolsListRes.from_proto(message)  # type: ignore[arg-type]
    message.symbol.add().symbolId = 99  # type: ignore[attr-defined]
    message.ctidTraderAccountId = 1  # type: ignore[attr-defined]
    assert [s.symbol_id for s in wrapped.symbol] == [0, 1, 2]
    assert wrapped.ctid_trader_account_id == 7
