"""ctrader-typed: a typed asyncio SDK for Spotware's cTrader Open API.

Everything a user needs is importable from here: the client (``AsyncClient``), every
message wrapper (``SpotEvent``, ``SymbolsListRes``, ``Trader`` ...) and enum
(``OrderType``, ``TradeSide`` ...), the client's own events, the errors, OAuth and token
storage, and the unit and history helpers. Never import ``ctrader_typed._generated``.
The simulator lives in ``ctrader_typed.testing``.
"""

from typing import TYPE_CHECKING

from ctrader_typed._base import ProtoWrapper, Wrapper
from ctrader_typed._generated import enums as _enums
from ctrader_typed._generated import messages as _messages
from ctrader_typed._generated.enums import *  # noqa: F403
from ctrader_typed._generated.messages import *  # noqa: F403
from ctrader_typed.errors import (
    APIError,
    AuthenticationError,
    ConnectionClosedError,
    CTraderError,
    LocalProtocolError,
    MaintenanceError,
    MissingExtraError,
    OAuthError,
    OrderError,
    ProtocolError,
    RateLimitError,
    RemoteProtocolError,
    RequestTimeoutError,
    TLSVerificationError,
)

# The client (asyncio), OAuth (httpx) and the helpers load on first use, so that
# ``import ctrader_typed`` stays cheap for code that only needs the messages.
_LAZY: dict[str, str] = {
    **dict.fromkeys(
        [
            "AccountChange",
            "AccountChangeStream",
            "AccountSnapshot",
            "BalanceChanged",
            "CloseReason",
            "DealExecuted",
            "FiguresChanged",
            "OrderPlaced",
            "OrderRemoved",
            "OrderState",
            "OrderUpdated",
            "PositionClosed",
            "PositionOpened",
            "PositionState",
            "PositionUpdated",
            "Resynced",
            "TrackedAccount",
            "track_account",
        ],
        "ctrader_typed.account",
    ),
    **dict.fromkeys(
        ["TERMINAL_EXECUTION_TYPES", "AsyncClient", "ClientOptions", "HandlerRegistration"],
        "ctrader_typed.client",
    ),
    **dict.fromkeys(
        [
            "AccountLost",
            "AccountReady",
            "ClientEvent",
            "Disconnected",
            "EventStream",
            "Reconnected",
            "MaintenanceScheduled",
            "ReconnectFailed",
            "TokenRefreshFailed",
            "TokensRefreshed",
            "UnknownMessage",
        ],
        "ctrader_typed.events",
    ),
    **dict.fromkeys(
        ["iter_cash_flow", "iter_deals", "iter_orders", "iter_ticks", "iter_trendbars", "iter_trendbars_raw"],
        "ctrader_typed.history",
    ),
    **dict.fromkeys(
        [
            "AccountNotFoundError",
            "AccountResolutionError",
            "AmbiguousAccountError",
            "list_accounts",
            "resolve_account",
        ],
        "ctrader_typed.accounts",
    ),
    **dict.fromkeys(["NaiveDatetimeError", "TradingHours", "TradingSession"], "ctrader_typed.hours"),
    **dict.fromkeys(["AsyncAuth", "code_from_redirect"], "ctrader_typed.oauth"),
    **dict.fromkeys(["Quote", "QuoteCache", "QuoteUpdates"], "ctrader_typed.quotes"),
    **dict.fromkeys(["AccountRouter"], "ctrader_typed.routing"),
    **dict.fromkeys(["SymbolCatalogue", "SymbolInfo", "UnknownSymbolError"], "ctrader_typed.symbols"),
    **dict.fromkeys(["FileTokenStore", "MemoryTokenStore", "TokenSet", "TokenStore"], "ctrader_typed.tokens"),
    **dict.fromkeys(
        [
            "KEEP",
            "BracketResult",
            "Keep",
            "OrderOutcome",
            "amend_position_protection",
            "close_all",
            "place_bracket_order",
        ],
        "ctrader_typed.trading",
    ),
    **dict.fromkeys(["Ohlc", "SymbolUnits", "Tick"], "ctrader_typed.units"),
}

if TYPE_CHECKING:
    from ctrader_typed.account import (
        AccountChange,
        AccountChangeStream,
        AccountSnapshot,
        BalanceChanged,
        CloseReason,
        DealExecuted,
        FiguresChanged,
        OrderPlaced,
        OrderRemoved,
        OrderState,
        OrderUpdated,
        PositionClosed,
        PositionOpened,
        PositionState,
        PositionUpdated,
        Resynced,
        TrackedAccount,
        track_account,
    )
    from ctrader_typed.accounts import (
        AccountNotFoundError,
        AccountResolutionError,
        AmbiguousAccountError,
        list_accounts,
        resolve_account,
    )
    from ctrader_typed.client import TERMINAL_EXECUTION_TYPES, AsyncClient, ClientOptions, HandlerRegistration
    from ctrader_typed.events import (
        AccountLost,
        AccountReady,
        ClientEvent,
        Disconnected,
        EventStream,
        MaintenanceScheduled,
        Reconnected,
        ReconnectFailed,
        TokenRefreshFailed,
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
    from ctrader_typed.hours import NaiveDatetimeError, TradingHours, TradingSession
    from ctrader_typed.oauth import AsyncAuth, code_from_redirect
    from ctrader_typed.quotes import Quote, QuoteCache, QuoteUpdates
    from ctrader_typed.routing import AccountRouter
    from ctrader_typed.symbols import SymbolCatalogue, SymbolInfo, UnknownSymbolError
    from ctrader_typed.tokens import FileTokenStore, MemoryTokenStore, TokenSet, TokenStore
    from ctrader_typed.trading import (
        KEEP,
        BracketResult,
        Keep,
        OrderOutcome,
        amend_position_protection,
        close_all,
        place_bracket_order,
    )
    from ctrader_typed.units import Ohlc, SymbolUnits, Tick

    __version__: str
else:

    def __getattr__(name: str) -> object:
        """Load a lazily exported name on first use (PEP 562); invisible to type checkers."""
        if name == "__version__":
            from importlib.metadata import PackageNotFoundError, version

            try:
                value: object = version("ctrader-typed")
            except PackageNotFoundError:  # running from a source tree without an install
                value = "0+unknown"
        elif name in _LAZY:
            import importlib

            value = getattr(importlib.import_module(_LAZY[name]), name)
        else:
            raise AttributeError(f"module 'ctrader_typed' has no attribute {name!r}")
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})


__all__ = [
    "KEEP",
    "TERMINAL_EXECUTION_TYPES",
    "APIError",
    "AccountChange",
    "AccountChangeStream",
    "AccountLost",
    "AccountNotFoundError",
    "AccountReady",
    "AccountResolutionError",
    "AccountRouter",
    "AccountSnapshot",
    "AmbiguousAccountError",
    "AsyncAuth",
    "AsyncClient",
    "AuthenticationError",
    "BalanceChanged",
    "BracketResult",
    "CTraderError",
    "ClientEvent",
    "ClientOptions",
    "CloseReason",
    "ConnectionClosedError",
    "DealExecuted",
    "Disconnected",
    "EventStream",
    "FiguresChanged",
    "FileTokenStore",
    "HandlerRegistration",
    "Keep",
    "LocalProtocolError",
    "MaintenanceError",
    "MaintenanceScheduled",
    "MemoryTokenStore",
    "MissingExtraError",
    "NaiveDatetimeError",
    "OAuthError",
    "Ohlc",
    "OrderError",
    "OrderOutcome",
    "OrderPlaced",
    "OrderRemoved",
    "OrderState",
    "OrderUpdated",
    "PositionClosed",
    "PositionOpened",
    "PositionState",
    "PositionUpdated",
    "ProtoWrapper",
    "ProtocolError",
    "Quote",
    "QuoteCache",
    "QuoteUpdates",
    "RateLimitError",
    "ReconnectFailed",
    "Reconnected",
    "RemoteProtocolError",
    "RequestTimeoutError",
    "Resynced",
    "SymbolCatalogue",
    "SymbolInfo",
    "SymbolUnits",
    "TLSVerificationError",
    "Tick",
    "TokenRefreshFailed",
    "TokenSet",
    "TokenStore",
    "TokensRefreshed",
    "TrackedAccount",
    "TradingHours",
    "TradingSession",
    "UnknownMessage",
    "UnknownSymbolError",
    "Wrapper",
    "__version__",
    "amend_position_protection",
    "close_all",
    "code_from_redirect",
    "iter_cash_flow",
    "iter_deals",
    "iter_orders",
    "iter_ticks",
    "iter_trendbars",
    "iter_trendbars_raw",
    "list_accounts",
    "place_bracket_order",
    "resolve_account",
    "track_account",
]
__all__ += _enums.__all__
__all__ += _messages.__all__
