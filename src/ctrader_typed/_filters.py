"""The ``account_id`` / ``symbol_id`` filters of event streams and handlers.

Shared by ``events.EventStream`` and the client's event router, so both apply the same
rule: a filter rejects an event only when the event concerns accounts (or symbols) and
the wanted one is not among them; events that concern neither always pass.

Which filters an event type takes is fixed by its class (``ctrader_typed._scopes``:
``AccountScoped``, ``SymbolScoped``, ``Unscoped``); ``check_filters`` refuses the others at
registration, so a filter is never silently ignored.
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
from ctrader_typed._scopes import AccountScoped, SymbolScoped, Unscoped

__all__ = ["account_ids_of", "check_filters", "make_filter", "symbol_ids_of"]

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


_FILTERS: Final[dict[str, tuple[type[object], str]]] = {
    # filter keyword: (the base of the types that take it, what the others lack)
    "account_id": (AccountScoped, "it concerns no account"),
    "symbol_id": (SymbolScoped, "it has no symbol id"),
}


def _takes(event_type: type[object]) -> str:
    taken = [name for name, (base, _) in _FILTERS.items() if issubclass(event_type, base)]
    return f"filters it takes: {', '.join(taken)}" if taken else "it takes no filter"


def check_filters(types: Iterable[object], account_id: int | None, symbol_id: int | None) -> None:
    """Refuse a filter that the event types cannot be filtered by.

    One type must take each filter given. Of several types, each must take it, or concern no
    account or symbol at all (``Unscoped``: ``Disconnected`` ... pass through a filtered stream),
    and one at least must take it. What is not a class, or derives from none of those bases
    (a model message, the ``ClientEvent`` base), is left to the caller.

    Raises:
        TypeError: A filter is given that does not apply; the message names the event type and
            the filters it takes.
    """
    classes = [t for t in types if isinstance(t, type)]
    several = len(classes) > 1
    # Events derive from AccountScoped or Unscoped; anything else (a model message, the
    # ClientEvent base) is left as it is: the router refuses what is no event type.
    scoped = [t for t in classes if issubclass(t, (AccountScoped, Unscoped))]
    for name, value in (("account_id", account_id), ("symbol_id", symbol_id)):
        if value is None or not scoped:
            continue
        base, lack = _FILTERS[name]
        for event_type in scoped:
            if not issubclass(event_type, base) and not (several and issubclass(event_type, Unscoped)):
                raise TypeError(
                    f"{event_type.__name__} cannot be filtered by {name} ({lack}); {_takes(event_type)}"
                )
        if len(scoped) == len(classes) and not any(issubclass(t, base) for t in scoped):
            names = ", ".join(t.__name__ for t in classes)
            raise TypeError(
                f"none of {names} can be filtered by {name}: they concern no account or symbol "
                "(drop the filter)"
            )


def make_filter(
    account_id: int | None, symbol_id: int | None, types: Iterable[type[object]] = ()
) -> Callable[[Any], bool] | None:
    """A predicate for the account / symbol filters, or ``None`` when there is nothing to filter.

    ``types`` are the event types the predicate will see: when they are all quote events it
    reads their fields directly.

    Raises:
        TypeError: A filter does not apply to ``types`` (see ``check_filters``).
    """
    if account_id is None and symbol_id is None:
        return None
    types = tuple(types)
    check_filters(types, account_id, symbol_id)

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
