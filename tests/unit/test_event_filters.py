"""Event filters are checked per event type: a filter the type cannot be filtered by is refused.

Which filters a type takes is its class (``AccountScoped``, ``SymbolScoped``, ``Unscoped``); the
generator picks it from the message's fields, so the first tests hold those bases to the fields
the filters read. The type checkers' side is in tests/typing (negative/event_filters.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re

import pytest

import ctrader_typed.events as events_module
from ctrader_typed import (
    AccountReady,
    AccountsTokenInvalidatedEvent,
    AsyncClient,
    ClientDisconnectEvent,
    ClientEvent,
    DepthEvent,
    Disconnected,
    ExecutionEvent,
    HeartbeatEvent,
    MarginChangedEvent,
    Reconnected,
    SpotEvent,
    SymbolChangedEvent,
    TraderUpdatedEvent,
    Wrapper,
)
from ctrader_typed._generated import messages as generated
from ctrader_typed._memlink import MemoryNetwork
from ctrader_typed.events import AccountScoped, SymbolScoped, Unscoped
from tests.integration.support import WAIT
from tests.unit.test_client_in_memory import connect

EVENT_MESSAGES = [
    cls
    for cls in (getattr(generated, name) for name in generated.__all__)
    if issubclass(cls, Wrapper) and cls.PAYLOAD_TYPE is not None
]
CLIENT_EVENTS = [
    cls
    for cls in (getattr(events_module, name) for name in events_module.__all__)
    if isinstance(cls, type) and issubclass(cls, ClientEvent) and cls is not ClientEvent
]


def _fields(cls: type) -> set[str]:
    return {field.name for field in dataclasses.fields(cls)}


@pytest.mark.parametrize("cls", EVENT_MESSAGES, ids=lambda c: c.__name__)
def test_each_message_takes_the_filters_its_fields_carry(cls: type[Wrapper]) -> None:
    fields = _fields(cls)
    concerns_account = bool(fields & {"ctid_trader_account_id", "ctid_trader_account_ids"})
    concerns_symbol = "symbol_id" in fields or cls is ExecutionEvent
    assert issubclass(cls, AccountScoped) == concerns_account
    assert issubclass(cls, SymbolScoped) == concerns_symbol
    assert issubclass(cls, Unscoped) == (not concerns_account and not concerns_symbol)


@pytest.mark.parametrize("cls", CLIENT_EVENTS, ids=lambda c: c.__name__)
def test_each_client_event_takes_the_filters_its_fields_carry(cls: type[ClientEvent]) -> None:
    concerns_account = "account_id" in _fields(cls)
    assert issubclass(cls, AccountScoped) == concerns_account
    assert not issubclass(cls, SymbolScoped)
    assert issubclass(cls, Unscoped) == (not concerns_account)


def test_the_scopes_are_the_expected_ones_for_the_common_events() -> None:
    assert all(
        issubclass(c, SymbolScoped) for c in (SpotEvent, DepthEvent, ExecutionEvent, SymbolChangedEvent)
    )
    assert issubclass(AccountsTokenInvalidatedEvent, AccountScoped)
    assert not issubclass(TraderUpdatedEvent, SymbolScoped)
    assert all(issubclass(c, Unscoped) for c in (HeartbeatEvent, ClientDisconnectEvent, Disconnected))
    # The bases add no instance dict to the slotted wrappers.
    assert not hasattr(SpotEvent(ctid_trader_account_id=1, symbol_id=2), "__dict__")


def _ignore(event: object) -> None: ...


@pytest.mark.parametrize(
    ("register", "message"),
    [
        (
            lambda c: c.events(TraderUpdatedEvent, symbol_id=1),
            "TraderUpdatedEvent cannot be filtered by symbol_id (it has no symbol id); "
            "filters it takes: account_id",
        ),
        (
            lambda c: c.events(Disconnected, account_id=1),
            "Disconnected cannot be filtered by account_id (it concerns no account); it takes no filter",
        ),
        (
            lambda c: c.events(HeartbeatEvent, symbol_id=1),
            "HeartbeatEvent cannot be filtered by symbol_id (it has no symbol id); it takes no filter",
        ),
        (
            # Of several types each must take it (or concern nothing): AccountReady has no symbol.
            lambda c: c.events(SpotEvent, AccountReady, symbol_id=1),
            "AccountReady cannot be filtered by symbol_id (it has no symbol id); filters it takes: account_id",
        ),
        (
            lambda c: c.events(Disconnected, Reconnected, account_id=1),
            "none of Disconnected, Reconnected can be filtered by account_id",
        ),
        (
            # Past five types the type checker no longer sees it; the check still does.
            lambda c: c.events(
                SpotEvent,
                DepthEvent,
                ExecutionEvent,
                SymbolChangedEvent,
                Disconnected,
                MarginChangedEvent,
                symbol_id=1,
            ),
            "MarginChangedEvent cannot be filtered by symbol_id",
        ),
        (
            lambda c: c.on(MarginChangedEvent, _ignore, symbol_id=1),
            "MarginChangedEvent cannot be filtered by symbol_id (it has no symbol id); "
            "filters it takes: account_id",
        ),
        (
            lambda c: c.on(Reconnected, _ignore, account_id=1),
            "Reconnected cannot be filtered by account_id (it concerns no account); it takes no filter",
        ),
    ],
)
def test_a_filter_the_types_do_not_take_is_refused_at_registration(register: object, message: str) -> None:
    client = AsyncClient("127.0.0.1", 1)
    with pytest.raises(TypeError, match=re.escape(message)):
        register(client)  # type: ignore[operator]


def test_filters_the_types_take_are_accepted() -> None:
    client = AsyncClient("127.0.0.1", 1)
    streams = [
        client.events(ExecutionEvent, symbol_id=1),  # an execution's symbol: its order's, position's, deal's
        client.events(ExecutionEvent, account_id=1, symbol_id=1),
        client.events(SymbolChangedEvent, account_id=1, symbol_id=1),
        client.events(AccountsTokenInvalidatedEvent, account_id=1),
        client.events(AccountReady, account_id=1),
        client.events(SpotEvent, Disconnected, account_id=1, symbol_id=1),
        client.events(AccountReady, Disconnected, Reconnected, account_id=1),
        client.events(Disconnected, HeartbeatEvent),
    ]
    for stream in streams:
        stream.close()
    client.on(TraderUpdatedEvent, _ignore, account_id=1)()
    client.on(DepthEvent, _ignore, account_id=1, symbol_id=2)()


async def test_a_refused_handler_is_not_registered_and_filtered_streams_still_work() -> None:
    network = MemoryNetwork()
    client, peer = await connect(network)
    try:
        seen: list[object] = []
        with pytest.raises(TypeError):
            client.on(MarginChangedEvent, seen.append, symbol_id=5)  # type: ignore[type-var]
        async with client.events(MarginChangedEvent, account_id=7) as margins:
            peer.send(MarginChangedEvent(ctid_trader_account_id=8, position_id=1, used_margin=10))
            peer.send(MarginChangedEvent(ctid_trader_account_id=7, position_id=2, used_margin=20))
            event = await margins.get(WAIT)
            assert (event.ctid_trader_account_id, event.position_id) == (7, 2)
            await asyncio.sleep(0)
        assert seen == []
    finally:
        await client.close()
