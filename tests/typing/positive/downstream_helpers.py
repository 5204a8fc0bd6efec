"""Errors, handlers, helpers and the simulator fixture, as a downstream test module uses them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import assert_type

from ctrader_typed import (
    APIError,
    AsyncClient,
    CommonErrorCode,
    Disconnected,
    ErrorCode,
    ExecutionEvent,
    HandlerRegistration,
    Ohlc,
    OrderError,
    RateLimitError,
    SpotEvent,
    SymbolUnits,
    TokenSet,
    TrendbarPeriod,
    iter_trendbars,
)
from ctrader_typed.testing import Simulator


def on_spot(event: SpotEvent) -> None:
    assert_type(event.ask, int | None)


async def on_execution(event: ExecutionEvent) -> None:
    assert_type(event.order.order_id if event.order is not None else None, int | None)


async def with_simulator(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    assert_type(sim.accounts, list[int])
    async with AsyncClient(sim.host, sim.port, ssl_context=sim.ssl_context) as client:
        registration = client.on(SpotEvent, on_spot)
        assert_type(registration, HandlerRegistration)
        client.on(ExecutionEvent, on_execution)()
        registration()
        async with client.events(SpotEvent, Disconnected) as stream:
            async for event in stream:
                assert_type(event, SpotEvent | Disconnected)
                break
        try:
            await client.send_trader_req(sim.accounts[0])
        except OrderError as error:
            assert_type(error.order_id, int | None)
        except RateLimitError as error:
            assert_type(error.retry_after, float | None)
        except APIError as error:
            assert_type(error.error_code, ErrorCode | CommonErrorCode | str)
            assert_type(error.maintenance_end, datetime | None)
        [symbol] = (await client.send_symbol_by_id_req(sim.accounts[0], [1])).symbol
        units = SymbolUnits.from_symbol(symbol)
        assert_type(units.price(110_023), Decimal)
        assert_type(units.volume_from_lots("0.01"), int)
        end = datetime.now(UTC)
        async for bar in iter_trendbars(
            client, sim.accounts[0], 1, TrendbarPeriod.H1, end - timedelta(days=1), end
        ):
            assert_type(bar, Ohlc)
            assert_type(bar.close, Decimal)
            break
    tokens = TokenSet.from_expires_in("a", "r", 60)
    assert_type(tokens["access_token"], str)
    assert_type(tokens.expires_at, datetime | None)
