"""History paging against in-memory servers that page from either end of the range."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Literal, TypeVar, cast

import pytest
from google.protobuf.message import Message as ProtobufMessage
from hypothesis import given, settings
from hypothesis import strategies as st

from ctrader_typed import (
    Deal,
    DealListRes,
    GetTickDataRes,
    QuoteType,
    Symbol,
    SymbolByIdRes,
    TickData,
    iter_deals,
    iter_ticks,
)
from ctrader_typed._base import Wrapper
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated.enums import DealStatus, TradeSide
from ctrader_typed._generated.requests import GeneratedRequests
from ctrader_typed.units import price_to_relative

W = TypeVar("W", bound=Wrapper)
Anchor = Literal["newest", "oldest"]


class PagingServer(GeneratedRequests):
    """Answers deal-list and tick-data requests from memory, ``chunk`` records at a time, and
    symbol requests for its one symbol (id 1, ``digits`` digits)."""

    def __init__(
        self,
        deals: list[tuple[int, int]],
        ticks: list[tuple[int, int]],
        chunk: int,
        anchor: Anchor,
        *,
        digits: int = 5,
    ):
        self.deals = sorted(deals, key=lambda d: d[1])  # (deal id, time)
        self.ticks = ticks  # (time, price), oldest first
        self.chunk = chunk
        self.anchor = anchor
        self.digits = digits
        self.requests = 0
        self.symbol_requests = 0

    def _page(self, records: list[tuple[int, int]]) -> tuple[list[tuple[int, int]], bool]:
        more = len(records) > self.chunk
        if not more:
            return records, False
        return (records[-self.chunk :] if self.anchor == "newest" else records[: self.chunk]), True

    async def _request(
        self, message: ProtobufMessage, response_type: type[W], *, timeout: float | None = None
    ) -> W:
        self.requests += 1
        if isinstance(message, pb.ProtoOASymbolByIdReq):
            self.symbol_requests += 1
            known = [i for i in message.symbolId if i == 1]
            symbols = tuple(
                Symbol(symbol_id=i, digits=self.digits, pip_position=self.digits - 1) for i in known
            )
            return cast(W, SymbolByIdRes(ctid_trader_account_id=message.ctidTraderAccountId, symbol=symbols))
        if isinstance(message, pb.ProtoOADealListReq):
            inside = [d for d in self.deals if message.fromTimestamp <= d[1] <= message.toTimestamp]
            page, more = self._page(inside)
            deals = tuple(
                Deal(
                    deal_id=deal_id,
                    order_id=1,
                    position_id=1,
                    volume=100,
                    filled_volume=100,
                    symbol_id=1,
                    create_timestamp=t,
                    execution_timestamp=t,
                    trade_side=TradeSide.BUY,
                    deal_status=DealStatus.FILLED,
                )
                for deal_id, t in page
            )
            return cast(W, DealListRes(ctid_trader_account_id=1, deal=deals, has_more=more))
        assert isinstance(message, pb.ProtoOAGetTickDataReq)
        inside = [t for t in self.ticks if message.fromTimestamp <= t[0] <= message.toTimestamp]
        page, more = self._page(inside)
        encoded: list[TickData] = []
        previous = (0, 0)
        for t, price in reversed(page):  # newest first, then differences
            encoded.append(TickData(timestamp=t - previous[0], tick=price - previous[1]))
            previous = (t, price)
        return cast(W, GetTickDataRes(ctid_trader_account_id=1, tick_data=tuple(encoded), has_more=more))


@pytest.mark.parametrize("anchor", ["newest", "oldest"])
async def test_deals_are_complete_whichever_end_the_server_pages_from(anchor: Anchor) -> None:
    rng = random.Random(7)
    times = sorted(rng.sample(range(1_000, 100_000), 60))
    deals = [(900 + i, t) for i, t in enumerate(times)]
    server = PagingServer(deals, [], chunk=7, anchor=anchor)
    got = [(d.deal_id, d.execution_timestamp) async for d in iter_deals(server, 1, 0, 200_000, window=50_000)]
    assert got == deals
    assert server.requests <= 2 * (60 // 7 + 1) + 4


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 400), st.integers(100_000, 100_010)), max_size=80),
    st.integers(min_value=4, max_value=9),
    st.sampled_from(["newest", "oldest"]),
)
async def test_ticks_sharing_instants_keep_their_order_and_count(
    points: list[tuple[int, int]], chunk: int, anchor: Anchor
) -> None:
    # Chronological ticks; at most ``chunk - 1`` share an instant (more could not be paged at all).
    ticks: list[tuple[int, int]] = []
    for t, price in sorted(points, key=lambda p: p[0]):
        if sum(1 for existing in ticks if existing[0] == t) < chunk - 1:
            ticks.append((t, price))
    server = PagingServer([], ticks, chunk=chunk, anchor=anchor)
    got = [
        (t.timestamp_ms, price_to_relative(t.price))
        async for t in iter_ticks(server, 1, 1, QuoteType.BID, 0, 500)
    ]
    assert got == ticks


async def test_ticks_take_the_symbols_digits_when_not_given() -> None:
    # USDJPY-like: 3 digits. Tick prices are in 1/100000 of a unit whatever the digits.
    ticks = [(1_000, 14_766_700), (2_000, 14_766_800), (3_000, 14_765_900)]
    server = PagingServer([], ticks, chunk=10, anchor="newest", digits=3)
    got = [t async for t in iter_ticks(server, 7, 1, QuoteType.BID, 0, 5_000)]
    assert [t.price for t in got] == [Decimal("147.667"), Decimal("147.668"), Decimal("147.659")]
    assert [str(t.price) for t in got] == ["147.667", "147.668", "147.659"]  # not 147.66700
    assert server.symbol_requests == 1  # once, not per page or window
    given = [t async for t in iter_ticks(server, 7, 1, QuoteType.BID, 0, 5_000, digits=5)]
    assert [str(t.price) for t in given] == ["147.66700", "147.66800", "147.65900"]
    assert server.symbol_requests == 1  # digits= skips the request


async def test_ticks_of_an_unknown_symbol_without_digits() -> None:
    server = PagingServer([], [(1_000, 100_000)], chunk=10, anchor="newest")
    with pytest.raises(LookupError, match="symbol 9 is unknown to account 7"):
        [t async for t in iter_ticks(server, 7, 9, QuoteType.BID, 0, 5_000)]


async def test_ranges_are_checked() -> None:
    server = PagingServer([], [], chunk=1, anchor="newest")
    with pytest.raises(ValueError, match="history range"):
        [tick async for tick in iter_ticks(server, 1, 1, QuoteType.BID, -1, 5)]
    with pytest.raises(ValueError, match="history range"):
        [deal async for deal in iter_deals(server, 1, 0, 2**42)]
    assert server.requests == 0
