"""The ``account_id`` / ``symbol_id`` filters of event streams and handlers.

Shared by ``events.EventStream`` and the client's event router, so both apply the same
rule: a filter rejects an event only when the event concerns accounts (or symbols) and
the wanted one is not among them; events that concern neither always pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

from ctrader_typed._generated.messages import (
    AccountsTokenInvalidatedEvent,
    DepthEvent,
    ExecutionEvent,
    SpotEvent,
    SymbolChangedEvent,
)

__all__ = ["account_ids_of", "make_filter", "symbol_ids_of"]

_QUOTE_TYPES: Final[frozenset[type[object]]] = frozenset({SpotEvent, DepthEvent})
"""Spot and depth events dominate traffic: a filter over them alone takes a direct path."""


def account_ids_of(event: object) -> tuple[int, ...] | None:
    """The accounts an event concerns, or ``None`` when it does not concern accounts.

    Server messages name theirs in ``ctid_trader_account_id`` (``AccountsTokenInvalidatedEvent``:
    several); the client's own events (``AccountReady``, ``AccountLost``) in ``account_id``.
    """
    if isinstance(event, AccountsTokenInvalidatedEvent):
        return event.ctid_trader_account_ids
    account = getattr(event, "ctid_trader_account_id", None)
    if isinstance(account, int):
        return (account,)
    account = getattr(event, "account_id", None)
    if isinstance(account, int):
        return (account,)
    return None


def symbol_ids_of(event: object) -> tuple[int, ...] | None:
    """The symbols an event concerns, or ``None`` when it does not concern symbols."""
    if isinstance(event, ExecutionEvent):
        for holder in (event.order, event.position):
            if holder is not None:
                return (holder.trade_data.symbol_id,)
        if event.deal is not None:
            return (event.deal.symbol_id,)
        return ()
    if isinstance(event, SymbolChangedEvent):
        return event.symbol_id
    symbol = getattr(event, "symbol_id", None)
    if isinstance(symbol, int):
        return (symbol,)
    return None


def make_filter(
    account_id: int | None, symbol_id: int | None, types: Iterable[type[object]] = ()
) -> Callable[[Any], bool] | None:
    """A predicate for the account / symbol filters, or ``None`` when there is nothing to filter.

    ``types`` are the event types the predicate will see: when they are all quote events it
    reads their fields directly.
    """
    if account_id is None and symbol_id is None:
        return None

    def accepts(event: Any) -> bool:
        if account_id is not None:
            accounts = account_ids_of(event)
            if accounts is not None and account_id not in accounts:
                return False
        if symbol_id is not None:
            symbols = symbol_ids_of(event)
            if symbols is not None and symbol_id not in symbols:
                return False
        return True

    def accepts_quote(event: Any) -> bool:
        return (account_id is None or event.ctid_trader_account_id == account_id) and (
            symbol_id is None or event.symbol_id == symbol_id
        )

    kinds = set(types)
    if kinds and kinds <= _QUOTE_TYPES:
        return accepts_quote

    def dispatch(event: Any) -> bool:
        if type(event) in _QUOTE_TYPES:
            return accepts_quote(event)
        return accepts(event)

    return dispatch
