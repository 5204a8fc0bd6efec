"""ctrader-typed: a typed asyncio SDK for Spotware's cTrader Open API.

Every message wrapper (``SpotEvent``, ``SymbolsListRes``, ``Trader`` ...) and every enum
(``OrderType``, ``TradeSide`` ...) is importable from here; never import ``_generated``.
"""

from ctrader_typed._base import ProtoWrapper, Wrapper
from ctrader_typed._generated import enums as _enums
from ctrader_typed._generated import messages as _messages
from ctrader_typed._generated.enums import *  # noqa: F403
from ctrader_typed._generated.messages import *  # noqa: F403

__all__ = ["ProtoWrapper", "Wrapper"]
__all__ += _enums.__all__
__all__ += _messages.__all__

# The asyncio client, its events, and the unit/history helpers.
from ctrader_typed.client import TERMINAL_EXECUTION_TYPES, AsyncClient, ClientOptions  # noqa: E402
from ctrader_typed.events import (  # noqa: E402
    AccountLost,
    AccountReady,
    ClientEvent,
    Disconnected,
    EventStream,
    Reconnected,
    ReconnectFailed,
    TokensRefreshed,
    UnknownMessage,
)
from ctrader_typed.history import (  # noqa: E402
    iter_cash_flow,
    iter_deals,
    iter_orders,
    iter_ticks,
    iter_trendbars,
    iter_trendbars_raw,
)
from ctrader_typed.units import Ohlc, SymbolUnits, Tick  # noqa: E402

__all__ += [
    "TERMINAL_EXECUTION_TYPES",
    "AccountLost",
    "AccountReady",
    "AsyncClient",
    "ClientEvent",
    "ClientOptions",
    "Disconnected",
    "EventStream",
    "Ohlc",
    "ReconnectFailed",
    "Reconnected",
    "SymbolUnits",
    "Tick",
    "TokensRefreshed",
    "UnknownMessage",
    "iter_cash_flow",
    "iter_deals",
    "iter_orders",
    "iter_ticks",
    "iter_trendbars",
    "iter_trendbars_raw",
]

# OAuth and token storage.
from ctrader_typed.oauth import AsyncAuth  # noqa: E402
from ctrader_typed.tokens import FileTokenStore, MemoryTokenStore, TokenSet, TokenStore  # noqa: E402

__all__ += ["AsyncAuth", "FileTokenStore", "MemoryTokenStore", "TokenSet", "TokenStore"]
