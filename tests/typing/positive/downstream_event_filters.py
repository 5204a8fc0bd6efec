"""Event filters as downstream code writes them: each type takes the filters given, and the item
type of the stream stays precise (checked by mypy --strict and pyright strict)."""

from __future__ import annotations

from typing import assert_type

from ctrader_typed import (
    AccountReady,
    AsyncClient,
    Disconnected,
    ExecutionEvent,
    MarginChangedEvent,
    SpotEvent,
    TraderUpdatedEvent,
)
from ctrader_typed.events import EventStream, SymbolScoped


def on_margin(event: MarginChangedEvent) -> None:
    print(event.used_margin)


def on_spot(event: SpotEvent) -> None:
    print(event.bid)


def first_symbol(event: SymbolScoped) -> str:
    return type(event).__name__


async def watch(client: AsyncClient, account_id: int, symbol_id: int, maybe_account: int | None) -> None:
    # One type: the filters it takes, with the item type kept.
    spots = client.events(SpotEvent, account_id=account_id, symbol_id=symbol_id)
    assert_type(spots, EventStream[SpotEvent])
    # An execution's symbol is that of its order, position or deal.
    executions = client.events(ExecutionEvent, symbol_id=symbol_id)
    assert_type(executions, EventStream[ExecutionEvent])
    traders = client.events(TraderUpdatedEvent, account_id=account_id)
    assert_type(traders, EventStream[TraderUpdatedEvent])
    # A filter that may be None: no filter or the account filter, the same stream type.
    maybe = client.events(SpotEvent, account_id=maybe_account)
    assert_type(maybe, EventStream[SpotEvent])
    # Several types: connection events (Unscoped) may join a filtered stream; they pass.
    async with client.events(SpotEvent, Disconnected, account_id=account_id, symbol_id=symbol_id) as quotes:
        async for event in quotes:
            assert_type(event, SpotEvent | Disconnected)
            if isinstance(event, SymbolScoped):
                print(first_symbol(event))
            break
    lifecycle = client.events(AccountReady, Disconnected, account_id=account_id)
    assert_type(lifecycle, EventStream[AccountReady | Disconnected])
    # No filter: any event types.
    everything = client.events(TraderUpdatedEvent, Disconnected)
    assert_type(everything, EventStream[TraderUpdatedEvent | Disconnected])
    client.on(MarginChangedEvent, on_margin, account_id=account_id)
    client.on(SpotEvent, on_spot, account_id=account_id, symbol_id=symbol_id)
    client.on(Disconnected, print)
    for stream in (spots, executions, traders, maybe, lifecycle, everything):
        await stream.aclose()
