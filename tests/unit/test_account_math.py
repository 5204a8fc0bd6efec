"""The account's computation (money, conversion through a chain, unrealized P&L, margin level) by
hand-worked values, and against the simulator's own server-side computation (margin included)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctrader_typed import LightSymbol, TradeSide
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.account import conversion_rate, margin_level, money, price, unrealized_gross
from ctrader_typed.testing._broker import Account, Broker
from ctrader_typed.testing._catalogue import SYMBOLS, conversion_chain, symbol_spec
from ctrader_typed.testing._market import Market

EUR, GBP, JPY, USD = 1, 2, 3, 4


def light(symbol_id: int, base: int, quote: int) -> LightSymbol:
    return LightSymbol(symbol_id=symbol_id, base_asset_id=base, quote_asset_id=quote)


EURUSD = light(1, EUR, USD)
GBPUSD = light(2, GBP, USD)
USDJPY = light(3, USD, JPY)


def test_money_applies_money_digits_and_defaults_to_two() -> None:
    assert money(10053099944, 8) == Decimal("100.53099944")
    assert money(-1234, None) == Decimal("-12.34")
    assert money(0, 2) == 0


def test_price_is_the_decimal_the_double_was_written_as() -> None:
    assert price(1.0850125) == Decimal("1.0850125")
    assert price(151.5) == Decimal("151.5")


def test_an_empty_chain_is_one() -> None:
    assert conversion_rate((), {}, USD) == 1


def test_a_direct_chain_multiplies_by_the_mid() -> None:
    assert conversion_rate((EURUSD,), {1: (108500, 108510)}, EUR) == Decimal("1.08505")


def test_an_inverse_chain_divides_by_the_mid() -> None:
    rate = conversion_rate((EURUSD,), {1: (108500, 108510)}, USD)
    assert rate == Decimal(1) / Decimal("1.08505")


def test_a_two_step_chain_walks_in_order() -> None:
    # GBP -> USD (GBPUSD, base to quote: x mid), USD -> JPY (USDJPY, base to quote: x mid)
    rate = conversion_rate((GBPUSD, USDJPY), {2: (127000, 127000), 3: (15150000, 15150000)}, GBP)
    assert rate == Decimal("1.27") * Decimal("151.5")
    # and back: JPY -> USD -> GBP divides twice
    back = conversion_rate((USDJPY, GBPUSD), {2: (127000, 127000), 3: (15150000, 15150000)}, JPY)
    assert back == Decimal(1) / Decimal("151.5") / Decimal("1.27")


def test_a_missing_quote_or_a_broken_chain_gives_none() -> None:
    assert conversion_rate((EURUSD,), {}, EUR) is None
    assert conversion_rate((USDJPY,), {3: (15150000, 15150100)}, EUR) is None


@pytest.mark.parametrize(
    ("side", "entry", "bid", "ask", "expected"),
    [
        (TradeSide.BUY, "1.08500", 108520, 108530, "20.00"),  # a buy closes at the bid
        (TradeSide.SELL, "1.08500", 108470, 108480, "20.00"),  # a sell closes at the ask
        (TradeSide.BUY, "1.08500", 108480, 108490, "-20.00"),
        (TradeSide.SELL, "1.0850125", 108500, 108510, "-8.75"),  # an averaged entry price
    ],
)
def test_gross_pnl_of_one_lot_in_the_quote_currency(
    side: TradeSide, entry: str, bid: int, ask: int, expected: str
) -> None:
    assert unrealized_gross(side, 10_000_000, Decimal(entry), bid, ask, Decimal(1), 2) == Decimal(expected)


def test_gross_pnl_is_converted_into_the_deposit_currency() -> None:
    # 1,000 USDJPY bought at 151.500, bid now 151.600: 100 JPY, at 1/151.6 USD each.
    rate = conversion_rate((USDJPY,), {3: (15160000, 15160000)}, JPY)
    assert rate is not None
    assert unrealized_gross(TradeSide.BUY, 100_000, Decimal("151.5"), 15160000, 15160300, rate, 2) == Decimal(
        "0.66"
    )


def test_gross_pnl_rounds_half_away_from_zero() -> None:
    # 0.01 BTC (protocol volume 1) moving 1.50 USD is 0.015 USD.
    assert unrealized_gross(
        TradeSide.BUY, 1, Decimal("65000.00"), 6_500_150_000, 6_500_160_000, Decimal(1), 2
    ) == Decimal("0.02")
    assert unrealized_gross(
        TradeSide.BUY, 1, Decimal("65000.00"), 6_499_850_000, 6_499_860_000, Decimal(1), 2
    ) == Decimal("-0.02")
    assert unrealized_gross(
        TradeSide.BUY, 1, Decimal("65000.00"), 6_500_150_000, 6_500_160_000, Decimal(1), 8
    ) == Decimal("0.01500000")


def test_margin_level_is_a_percentage_with_two_decimals() -> None:
    assert margin_level(Decimal("12002.59"), Decimal("102.69")) == Decimal("11688.18")
    assert margin_level(Decimal("-5.00"), Decimal("100.00")) == Decimal("-5.00")
    assert margin_level(Decimal("100.00"), Decimal(0)) is None


# -- the simulator's server-side figures ---------------------------------------------------------


def broker_with(deposit_asset_id: int, leverage_in_cents: int = 10_000) -> tuple[Broker, Account]:
    market = Market(seed=5, start_ms=1_700_000_000_000)
    account = Account(1, False, 1, deposit_asset_id, 1_000_000, 0, leverage_in_cents=leverage_in_cents)
    return Broker(market, [account], clock=lambda: 1_700_000_000_000), account


def test_simulator_margin_is_units_over_leverage_in_the_deposit_currency() -> None:
    broker, account = broker_with(USD)
    eurusd = symbol_spec(1)
    assert eurusd is not None
    state = broker.market.symbols[1]
    mid = (state.bid + state.ask) / 2 / 100_000
    # 1 lot = 100,000 EUR at 1:100 (the account's leverage is below the symbol's 1:500 tier)
    assert broker.margin(account, eurusd, 10_000_000) == round(1_000 * mid * 100)
    btc = symbol_spec(10)
    assert btc is not None
    btc_mid = (broker.market.symbols[10].bid + broker.market.symbols[10].ask) / 2 / 100_000
    # BTC's symbol tier allows only 1:10, below the account's 1:100
    assert broker.margin(account, btc, 100) == round(btc_mid / 10 * 100)
    broker.set_leverage(account, 5_000)  # 1:50
    assert broker.margin(account, eurusd, 10_000_000) == round(2_000 * mid * 100)


def open_position(
    broker: Broker, account: Account, symbol_id: int, side: int, volume: int, entry: float
) -> None:
    position = model_pb.ProtoOAPosition(
        positionId=len(account.positions) + 1,
        positionStatus=model_pb.POSITION_STATUS_OPEN,
        swap=-7,
        price=entry,
        commission=-3,
        moneyDigits=account.money_digits,
    )
    position.tradeData.symbolId = symbol_id
    position.tradeData.volume = volume
    position.tradeData.tradeSide = model_pb.ProtoOATradeSide.ValueType(side)
    account.positions[position.positionId] = position


@settings(max_examples=300, deadline=None)
@given(
    deposit=st.sampled_from([EUR, GBP, JPY, USD]),
    symbol_index=st.integers(0, len(SYMBOLS) - 1),
    buy=st.booleans(),
    lots=st.integers(1, 50),
    entry_points=st.integers(-5_000, 5_000),
    moves=st.lists(st.tuples(st.integers(0, len(SYMBOLS) - 1), st.integers(-3_000, 3_000)), max_size=4),
)
def test_the_client_computes_the_simulators_unrealized_pnl(
    deposit: int, symbol_index: int, buy: bool, lots: int, entry_points: int, moves: list[tuple[int, int]]
) -> None:
    broker, account = broker_with(deposit)
    market = broker.market
    for index, points in moves:
        state = market.symbols[SYMBOLS[index].symbol_id]
        bid = max(state.spec.step * 100, state.bid + points * state.spec.step)
        state.force(bid, bid + state.spec.step * (1 + abs(points) % 37), 1_700_000_000_000)
    spec = SYMBOLS[symbol_index]
    state = market.symbols[spec.symbol_id]
    entry = round((state.bid + entry_points * spec.step) / 100_000, spec.digits + 2)
    side = model_pb.BUY if buy else model_pb.SELL
    open_position(broker, account, spec.symbol_id, side, spec.min_volume * lots, entry)
    [position] = account.open_positions()
    server_gross, server_net = broker.unrealized(account, position)

    chain = [LightSymbol.from_proto(s.to_light()) for s in conversion_chain(spec.quote_asset_id, deposit)]
    quotes = {s.symbol_id: (market.symbols[s.symbol_id].bid, market.symbols[s.symbol_id].ask) for s in chain}
    rate = conversion_rate(chain, quotes, spec.quote_asset_id)
    assert rate is not None
    gross = unrealized_gross(
        TradeSide(side), position.tradeData.volume, price(position.price), state.bid, state.ask, rate, 2
    )
    assert gross == money(server_gross, 2)
    assert gross + money(position.swap, 2) + money(position.commission, 2) == money(server_net, 2)
