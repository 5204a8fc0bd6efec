"""Event filters a type cannot be filtered by, which ``mypy --strict`` must reject (see event_filters.golden)."""

from __future__ import annotations

from ctrader_typed import (
    AccountReady,
    AsyncClient,
    Disconnected,
    MarginChangedEvent,
    SpotEvent,
    TraderUpdatedEvent,
)


def on_margin(event: MarginChangedEvent) -> None: ...


def misuse(client: AsyncClient) -> None:
    client.events(TraderUpdatedEvent, symbol_id=1)  # concerns an account, has no symbol id
    client.events(Disconnected, account_id=1)  # concerns no account
    client.events(SpotEvent, AccountReady, symbol_id=1)  # every type must take it (AccountReady: no symbol)
    client.on(MarginChangedEvent, on_margin, symbol_id=1)
    client.on(Disconnected, print, account_id=1)
