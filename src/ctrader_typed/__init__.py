"""ctrader-typed: a typed asyncio SDK for Spotware's cTrader Open API.

Everything a user needs is importable from here: the client (``AsyncClient``), every
message wrapper (``SpotEvent``, ``SymbolsListRes``, ``Trader`` ...) and enum
(``OrderType``, ``TradeSide`` ...), the client's own events, the errors, OAuth and token
storage, and the unit and history helpers. Never import ``ctrader_typed._generated``.
The simulator lives in ``ctrader_typed.testing``.
"""

from importlib.metadata import PackageNotFoundError, version

from ctrader_typed._base import ProtoWrapper, Wrapper
from ctrader_typed._generated import enums as _enums
from ctrader_typed._generated import messages as _messages
from ctrader_typed._generated.enums import *  # noqa: F403
from ctrader_typed._generated.messages import *  # noqa: F403
from ctrader_typed.client import TERMINAL_EXECUTION_TYPES, AsyncClient, ClientOptions
from ctrader_typed.errors import (
    APIError,
    AuthenticationError,
    ConnectionClosedError,
    CTraderError,
    LocalProtocolError,
    OAuthError,
    OrderError,
    ProtocolError,
    RateLimitError,
    RemoteProtocolError,
    RequestTimeoutError,
)
from ctrader_typed.events import (
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
from ctrader_typed.history import (
    iter_cash_flow,
    iter_deals,
    iter_orders,
    iter_ticks,
    iter_trendbars,
    iter_trendbars_raw,
)
from ctrader_typed.oauth import AsyncAuth, code_from_redirect
from ctrader_typed.tokens import FileTokenStore, MemoryTokenStore, TokenSet, TokenStore
from ctrader_typed.units import Ohlc, SymbolUnits, Tick

try:
    __version__ = version("ctrader-typed")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = [
    "TERMINAL_EXECUTION_TYPES",
    "APIError",
    "AccountLost",
    "AccountReady",
    "AsyncAuth",
    "AsyncClient",
    "AuthenticationError",
    "CTraderError",
    "ClientEvent",
    "ClientOptions",
    "ConnectionClosedError",
    "Disconnected",
    "EventStream",
    "FileTokenStore",
    "LocalProtocolError",
    "MemoryTokenStore",
    "OAuthError",
    "Ohlc",
    "OrderError",
    "ProtoWrapper",
    "ProtocolError",
    "RateLimitError",
    "ReconnectFailed",
    "Reconnected",
    "RemoteProtocolError",
    "RequestTimeoutError",
    "SymbolUnits",
    "Tick",
    "TokenSet",
    "TokenStore",
    "TokensRefreshed",
    "UnknownMessage",
    "Wrapper",
    "__version__",
    "code_from_redirect",
    "iter_cash_flow",
    "iter_deals",
    "iter_orders",
    "iter_ticks",
    "iter_trendbars",
    "iter_trendbars_raw",
]
__all__ += _enums.__all__
__all__ += _messages.__all__
