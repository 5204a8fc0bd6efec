"""What an event is about, as base classes: which ``account_id`` / ``symbol_id`` filters it takes.

Every message wrapper with a payload type derives from exactly one of these (the generator
decides from the message's fields), and so does every ``ClientEvent`` subclass:

* ``AccountScoped`` - concerns an account (``ctid_trader_account_id``, ``AccountsTokenInvalidatedEvent``'s
  ``ctid_trader_account_ids``, the client's ``account_id``): takes ``account_id``.
* ``SymbolScoped`` - concerns a symbol of an account (``symbol_id``; an ``ExecutionEvent`` through
  its order, position or deal): takes ``account_id`` and ``symbol_id``. In the schema every
  message that names a symbol names its account too, hence the subclass.
* ``Unscoped`` - concerns neither (``Disconnected``, ``HeartbeatEvent``, ``ClientDisconnectEvent``
  ...): takes no filter alone, and passes through the filters of a stream of several types.

``AsyncClient.events`` / ``on`` use them twice: their overloads bound the event types by them
(so a type checker rejects ``events(TraderUpdatedEvent, symbol_id=1)``), and at registration
``ctrader_typed._filters.check_filters`` raises ``TypeError`` for the same mistakes.
"""

from __future__ import annotations

__all__ = ["AccountScoped", "SymbolScoped", "Unscoped"]


class AccountScoped:
    """An event about one account (or several): ``account_id=`` filters it."""

    __slots__ = ()


class SymbolScoped(AccountScoped):
    """An event about a symbol of an account: ``symbol_id=`` filters it, and so does ``account_id=``."""

    __slots__ = ()


class Unscoped:
    """An event about no account or symbol: it takes no filter; in a filtered stream of several
    types it always passes (a filtered stream still hears about the connection)."""

    __slots__ = ()
