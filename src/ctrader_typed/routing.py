"""Demo and live accounts behind one object: ``AccountRouter`` picks the connection.

Spotware serves demo accounts at ``demo.ctraderapi.com`` and live accounts at
``live.ctraderapi.com``: a request for a live account sent on the demo connection (or the
reverse) is refused with ``CANT_ROUTE_REQUEST``. One access token may reach accounts of
both, and the account list says which is which (``CtidTraderAccount.is_live``).
``AccountRouter`` holds one ``AsyncClient`` per environment, opened on first use, and sends
each account to the right one::

    async with AccountRouter(
        access_token=tokens.access_token, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    ) as router:
        await router.load_accounts()                 # the token's accounts, live and demo
        demo = await router.client_for(44000001)     # demo connection opened, account authorised
        live = await router.client_for(44000101)     # live connection opened on first use
        async with router.events(ExecutionEvent, account_id=44000101) as executions:
            await live.send_new_order_req(44000101, ...)
            ...

``client_for`` returns the ``AsyncClient`` that serves the account, with the account
authorised on it (once: the client restores it after a reconnect), so every typed request,
event stream and helper of the client works as usual. ``events`` and ``on`` route an
account's events the same way, and may be called before the connection is open (nothing
is missed between them and the first request). ``close`` closes every connection.

The accounts come from ``load_accounts`` (``GetAccountListByAccessTokenReq``, asked on the
demo connection, as Spotware's samples do) or are given to the constructor (e.g. a list
read earlier with ``list_accounts``). An account the router does not know raises
``AccountNotFoundError`` (listing the known ones), unless no list was loaded or given yet:
then ``client_for`` loads it first.

Both connections use the same options (``ClientOptions``: TLS, timeouts, reconnect, rate
limits ...); the rate limits of the server are per connection, and so is the pacing. Token
refresh is left to the caller (a refresh token is single-use, so two clients must not each
refresh it): when the access token changes, make a new router, or call ``set_access_token``
before authorising more accounts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType, TracebackType
from typing import Final, Literal, NamedTuple, Self, TypeVar, Unpack, cast, overload

from ctrader_typed._client.options import ClientSettings
from ctrader_typed._generated.messages import CtidTraderAccount
from ctrader_typed.accounts import AccountNotFoundError, describe_account, list_accounts
from ctrader_typed.client import DEMO_HOST, LIVE_HOST, PORT, AsyncClient, ClientOptions, HandlerRegistration
from ctrader_typed.errors import ConnectionClosedError
from ctrader_typed.events import AccountLost, AccountScoped, Event, EventStream, SymbolScoped, Unscoped

__all__ = ["DEMO_ENDPOINT", "LIVE_ENDPOINT", "AccountRouter", "Endpoint", "Environment"]

Environment = Literal["demo", "live"]
"""Spotware's two environments: demo accounts and live accounts are served by different hosts."""

AccountScopedEvent = TypeVar("AccountScopedEvent", bound=AccountScoped)
SymbolScopedEvent = TypeVar("SymbolScopedEvent", bound=SymbolScoped)
AccountScopedOrUnscoped1 = TypeVar("AccountScopedOrUnscoped1", bound=AccountScoped | Unscoped)
AccountScopedOrUnscoped2 = TypeVar("AccountScopedOrUnscoped2", bound=AccountScoped | Unscoped)
T = TypeVar("T")


class Endpoint(NamedTuple):
    """Where an environment is served: host and port (the protobuf port, 5035, by default)."""

    host: str
    port: int = PORT


DEMO_ENDPOINT: Final = Endpoint(DEMO_HOST)
"""Spotware's demo host, ``demo.ctraderapi.com:5035``."""
LIVE_ENDPOINT: Final = Endpoint(LIVE_HOST)
"""Spotware's live host, ``live.ctraderapi.com:5035``."""


class AccountRouter:
    """One ``AsyncClient`` per environment, opened on first use; each account on its own.

    Args:
        accounts: The accounts to route (as listed for the token, ``is_live`` set), or
            ``None`` to list them with ``load_accounts`` (``client_for`` does it when
            needed).
        access_token: The token that authorises the accounts.
        demo, live: Where each environment is served (default: Spotware's hosts,
            ``demo.ctraderapi.com:5035`` and ``live.ctraderapi.com:5035``).
        options: ``AsyncClient`` options for both connections; ``client_id`` and
            ``client_secret`` are required (each connection authenticates the application
            as it opens).

    Raises:
        ValueError: ``client_id``/``client_secret`` missing, ``tokens`` or
            ``token_store`` given (the router does not refresh tokens), an empty access
            token, the same account listed twice with different environments, or an option
            ``AsyncClient`` refuses.
    """

    def __init__(
        self,
        accounts: Iterable[CtidTraderAccount] | None = None,
        *,
        access_token: str,
        demo: Endpoint | tuple[str, int] = DEMO_ENDPOINT,
        live: Endpoint | tuple[str, int] = LIVE_ENDPOINT,
        **options: Unpack[ClientOptions],
    ) -> None:
        if not options.get("client_id") or not options.get("client_secret"):
            raise ValueError(
                "AccountRouter needs client_id and client_secret (every connection authenticates)"
            )
        if options.get("tokens") is not None or options.get("token_store") is not None:
            raise ValueError(
                "AccountRouter does not refresh tokens (two connections must not both spend one refresh "
                "token): pass access_token, and refresh it elsewhere"
            )
        if not access_token:
            raise ValueError("access_token is empty")
        self._access_token = access_token
        self._endpoints: dict[Environment, Endpoint] = {"demo": Endpoint(*demo), "live": Endpoint(*live)}
        self._options = options
        ClientSettings(**options)  # check the options now, not on first use
        self._accounts: dict[int, CtidTraderAccount] | None = None
        if accounts is not None:
            self._accounts = {}
            self._add(accounts)
        self._clients: dict[Environment, AsyncClient] = {}
        self._connected: set[Environment] = set()
        self._authorised: dict[Environment, set[int]] = {"demo": set(), "live": set()}
        self._locks: dict[Environment, asyncio.Lock] = {"demo": asyncio.Lock(), "live": asyncio.Lock()}
        self._closed = False

    def __repr__(self) -> str:
        opened = ", ".join(
            f"{env}={self._endpoints[env].host}:{self._endpoints[env].port}" for env in self._connected
        )
        known = "?" if self._accounts is None else str(len(self._accounts))
        state = "closed" if self._closed else f"open: {opened or 'no connection yet'}"
        return f"<AccountRouter accounts={known} {state}>"

    # -- accounts ------------------------------------------------------------------------------

    @property
    def accounts(self) -> tuple[CtidTraderAccount, ...]:
        """The accounts the router knows (given, or loaded), demo and live."""
        return tuple(self._accounts.values()) if self._accounts is not None else ()

    def environment_of(self, account_id: int) -> Environment:
        """``"live"`` or ``"demo"``: the environment whose connection serves ``account_id``.

        Raises:
            AccountNotFoundError: The router does not know the account (``candidates``
                lists the ones it knows).
        """
        account = (self._accounts or {}).get(account_id)
        if account is None:
            known = self.accounts
            listing = "; ".join(describe_account(a) for a in known) if known else "none (load_accounts first)"
            raise AccountNotFoundError(
                f"the router knows no account {account_id}; it knows: {listing}", account_id, known
            )
        return "live" if account.is_live else "demo"

    def endpoint(self, environment: Environment) -> Endpoint:
        """Where ``environment`` is served."""
        return self._endpoints[environment]

    async def load_accounts(
        self, environment: Environment = "demo", *, timeout: float | None = None
    ) -> tuple[CtidTraderAccount, ...]:
        """List the token's accounts (both environments) on ``environment``'s connection
        (opened if need be) and route those from now on; returns them.

        Raises:
            APIError: The server refused the listing (e.g. ``CH_ACCESS_TOKEN_INVALID``).
            ConnectionClosedError: The connection could not be opened, or the router is closed.
        """
        client = await self.connection(environment)
        listed = await list_accounts(client, self._access_token, timeout=timeout)
        self._accounts = {}
        self._add(listed)
        return listed

    def set_access_token(self, access_token: str) -> None:
        """Authorise accounts with ``access_token`` from now on (after a refresh made elsewhere).

        When the server ends the sessions of the old token, each client reports ``AccountLost``
        for its accounts; the next ``client_for`` of such an account authorises it again with
        this token.
        """
        if not access_token:
            raise ValueError("access_token is empty")
        self._access_token = access_token

    def _add(self, accounts: Iterable[CtidTraderAccount]) -> None:
        known = self._accounts if self._accounts is not None else {}
        for account in accounts:
            previous = known.get(account.ctid_trader_account_id)
            if previous is not None and bool(previous.is_live) != bool(account.is_live):
                raise ValueError(f"account {account.ctid_trader_account_id} is listed as both live and demo")
            known[account.ctid_trader_account_id] = account
        self._accounts = known

    # -- connections -----------------------------------------------------------------------------

    @property
    def clients(self) -> Mapping[Environment, AsyncClient]:
        """The client of each environment made so far (connected, or made for ``events``/``on``)."""
        return MappingProxyType(self._clients)

    def _client(self, environment: Environment) -> AsyncClient:
        """The environment's client, made now if there is none (or the last one stopped for good)."""
        if self._closed:
            raise ConnectionClosedError("the account router is closed")
        client = self._clients.get(environment)
        if client is None or client.is_closed:
            host, port = self._endpoints[environment]
            client = self._clients[environment] = AsyncClient(host, port, **self._options)
            self._connected.discard(environment)
            authorised = self._authorised[environment]
            authorised.clear()
            # A session the client could not restore (e.g. its token was refreshed elsewhere)
            # is authorised again, with the router's current token, by the next client_for.
            client.on(AccountLost, lambda event: authorised.discard(event.account_id))
        return client

    async def connection(self, environment: Environment) -> AsyncClient:
        """The environment's client, connected with the application authenticated (opened
        now on first use; concurrent callers share one connect).

        Raises:
            ConnectionClosedError: The server could not be reached, or the router is closed.
            APIError: Application authentication was refused.
        """
        async with self._locks[environment]:
            client = self._client(environment)
            if environment not in self._connected:
                await client.connect()
                self._connected.add(environment)
            return client

    async def client_for(self, account_id: int, *, timeout: float | None = None) -> AsyncClient:
        """The client that serves ``account_id``, connected, with the account authorised.

        The first call for an account opens its environment's connection if need be and
        sends ``AccountAuthReq``; later calls return the same client at once (it restores
        the account after a reconnect). After ``AccountLost`` (a session the client could not
        restore) the next call authorises the account again.

        Raises:
            AccountNotFoundError: The router does not know the account (when no account list
                was given or loaded yet, it is loaded first).
            APIError: Account authorisation was refused (``CANT_ROUTE_REQUEST`` if the
                list said the wrong environment).
            ConnectionClosedError: The connection could not be opened, or the router is closed.
        """
        if self._accounts is None:
            await self.load_accounts(timeout=timeout)
        environment = self.environment_of(account_id)
        client = await self.connection(environment)
        async with self._locks[environment]:
            authorised = self._authorised[environment]
            if account_id not in authorised:
                if account_id not in client.authorized_accounts:  # not authorised directly on it
                    await client.send_account_auth_req(account_id, self._access_token, timeout=timeout)
                authorised.add(account_id)
        return client

    # -- events ----------------------------------------------------------------------------------

    @overload
    def events(
        self,
        t1: type[AccountScopedEvent],
        /,
        *,
        account_id: int,
        symbol_id: None = ...,
        maxsize: int | None = ...,
    ) -> EventStream[AccountScopedEvent]: ...
    @overload
    def events(
        self, t1: type[SymbolScopedEvent], /, *, account_id: int, symbol_id: int, maxsize: int | None = ...
    ) -> EventStream[SymbolScopedEvent]: ...
    @overload
    def events(
        self,
        t1: type[AccountScopedOrUnscoped1],
        t2: type[AccountScopedOrUnscoped2],
        /,
        *,
        account_id: int,
        symbol_id: None = ...,
        maxsize: int | None = ...,
    ) -> EventStream[AccountScopedOrUnscoped1 | AccountScopedOrUnscoped2]: ...
    @overload
    def events(
        self,
        *event_types: type[Event],
        account_id: int,
        symbol_id: int | None = ...,
        maxsize: int | None = ...,
    ) -> EventStream[Event]: ...
    def events(
        self,
        *event_types: type[object],
        account_id: int,
        symbol_id: int | None = None,
        maxsize: int | None = None,
    ) -> EventStream[object]:
        """A stream of ``account_id``'s events of ``event_types``, from the connection that
        serves the account (see ``AsyncClient.events`` for the types, filters and queue).

        The stream may be made before the connection is open: it receives from the first
        event on. It ends when the router is closed, or when that connection stops for good.

        Raises:
            AccountNotFoundError: The router does not know the account.
            TypeError: As ``AsyncClient.events``.
            ConnectionClosedError: The router is closed.
        """
        client = self._client(self.environment_of(account_id))
        types = cast("tuple[type[Event], ...]", event_types)  # the overloads above bound them
        stream: EventStream[object] = client.events(
            *types, account_id=account_id, symbol_id=symbol_id, maxsize=maxsize
        )
        return stream

    @overload
    def on(
        self,
        event_type: type[AccountScopedEvent],
        handler: Callable[[AccountScopedEvent], object],
        *,
        account_id: int,
    ) -> HandlerRegistration: ...
    @overload
    def on(
        self,
        event_type: type[SymbolScopedEvent],
        handler: Callable[[SymbolScopedEvent], object],
        *,
        account_id: int,
        symbol_id: int,
    ) -> HandlerRegistration: ...
    def on(
        self,
        event_type: type[T],
        handler: Callable[[T], object],
        *,
        account_id: int,
        symbol_id: int | None = None,
    ) -> HandlerRegistration:
        """Call ``handler`` for ``account_id``'s events of ``event_type`` (see ``AsyncClient.on``),
        on the connection that serves the account; may be called before it is open.

        Raises:
            AccountNotFoundError: The router does not know the account.
            TypeError: As ``AsyncClient.on``.
            ConnectionClosedError: The router is closed.
        """
        client = self._client(self.environment_of(account_id))
        # The overloads above hold the types to what the filters take; the client checks again.
        if symbol_id is None:
            return client.on(
                cast("type[AccountScoped]", event_type),
                cast("Callable[[AccountScoped], object]", handler),
                account_id=account_id,
            )
        return client.on(
            cast("type[SymbolScoped]", event_type),
            cast("Callable[[SymbolScoped], object]", handler),
            account_id=account_id,
            symbol_id=symbol_id,
        )

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        """True once ``close`` was called."""
        return self._closed

    async def close(self) -> None:
        """Close every connection (pending requests fail, event streams end); safe to call twice."""
        self._closed = True
        clients = list(self._clients.values())
        self._connected.clear()
        if clients:
            await asyncio.gather(*(client.close() for client in clients))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
