"""The simulator's configuration: the options it starts with, and the switches tests flip.

``AccountSpec`` describes one trading account the simulator starts with.

``SimulatorSettings`` holds every option of ``Simulator`` and is the one place their
defaults are written; it is frozen, so what a simulator was started with can always be read
back (``sim.settings``). ``SimulatorOptions`` spells the same options as keyword arguments
for ``Simulator(**options)``, without defaults (a test keeps the two in step).

``FaultSwitches`` is the mutable state behind the test hooks that act on the whole server
(answers delayed, heartbeats or quotes paused, maintenance, payload types blocked, rate limits
switched); a connection's own overrides live on the connection.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Callable
from typing import Literal, TypedDict

from ctrader_typed.testing._auth import DEFAULT_REDIRECT_URI
from ctrader_typed.testing._catalogue import ASSETS
from ctrader_typed.testing._ratelimit import RateLimitMode

__all__ = [
    "DEFAULT_ACCOUNTS",
    "AccountSpec",
    "Environment",
    "FaultSwitches",
    "SimulatorOptions",
    "SimulatorSettings",
    "SpotTimestamps",
]

SpotTimestamps = Literal["sequence", "clock"]
Environment = Literal["demo", "live"]
"""Which of Spotware's two environments an endpoint serves (``demo.ctraderapi.com`` or
``live.ctraderapi.com``)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AccountSpec:
    """One trading account of the simulator, granted to its default token.

    Attributes:
        account_id: ``ctidTraderAccountId``.
        trader_login: The login cTrader shows (``traderLogin``).
        is_live: A live account (``False``: demo).
        deposit_currency: Name of the deposit asset (``"USD"``, ``"EUR"``, ``"JPY"``, ...: an
            asset of the simulator's catalogue).
        money_digits: ``moneyDigits`` of the account: every money field of it is an integer in
            units of ``10 ** -money_digits`` of the deposit currency.
        initial_deposit: The first deposit, in whole units of the deposit currency (a top-up
            of a quarter of it and a withdrawal of a twentieth follow before start-up).
        registered_days_ago: Days between the registration and the simulator's start.
    """

    account_id: int
    trader_login: int
    is_live: bool = False
    deposit_currency: str = "USD"
    money_digits: int = 2
    initial_deposit: int = 10_000
    registered_days_ago: int = 30

    def __post_init__(self) -> None:
        if self.deposit_currency not in {asset.name for asset in ASSETS}:
            raise ValueError(f"unknown deposit_currency {self.deposit_currency!r}")
        if not 0 <= self.money_digits <= 8:
            raise ValueError("money_digits must be between 0 and 8")
        if self.initial_deposit % 20 or self.initial_deposit <= 0:
            raise ValueError("initial_deposit must be a positive multiple of 20")


DEFAULT_ACCOUNTS: tuple[AccountSpec, ...] = (
    AccountSpec(account_id=44_000_001, trader_login=5_100_001, registered_days_ago=90),
    AccountSpec(
        account_id=44_000_002, trader_login=5_100_002, deposit_currency="EUR", registered_days_ago=60
    ),
    AccountSpec(
        account_id=44_000_201,
        trader_login=5_100_201,
        deposit_currency="JPY",
        money_digits=0,
        initial_deposit=1_500_000,
        registered_days_ago=45,
    ),
    AccountSpec(
        account_id=44_000_202,
        trader_login=5_100_202,
        deposit_currency="GBP",
        money_digits=3,
        registered_days_ago=40,
    ),
    AccountSpec(account_id=44_000_101, trader_login=1_200_001, is_live=True, registered_days_ago=120),
)
"""The accounts of a default simulator: demo in USD, EUR, JPY (``moneyDigits`` 0) and GBP
(``moneyDigits`` 3), and one live account in USD."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SimulatorSettings:
    """Every option of ``Simulator``, with its default; intervals are in seconds.

    Attributes:
        host, port, http_port: Where the TLS protobuf endpoint and the OAuth HTTP endpoints
            listen (0: any free port).
        live_endpoint: ``False`` (default): the endpoint at ``port`` serves demo and live
            accounts alike. ``True``: as Spotware's two hosts do, ``port`` serves demo
            accounts only and a second TLS protobuf endpoint at ``live_port`` live accounts
            only; a request naming an account of the other environment (account auth, and
            every request that carries ``ctidTraderAccountId``) is answered with
            ``ProtoOAErrorRes`` ``CANT_ROUTE_REQUEST``. Both endpoints share one world:
            accounts, market, tokens and rate-limit settings.
        live_port: Where the live endpoint listens (0: any free port); only with
            ``live_endpoint``.
        json_port: Where the JSON endpoint (Spotware's port 5036) listens (0: any free
            port). Every endpoint takes raw TLS and a WebSocket upgrade on the same port; the
            JSON one serves the accounts of ``port``.
        seed: Seed of the price history, of the quote walk and of spot bursts.
        spot_interval: Seconds between quotes of each symbol (spot events are sent only when
            a side changed).
        idle_timeout: Close a connection that sent nothing for this long.
        heartbeat_interval: Send ``ProtoHeartbeatEvent`` after this long without output.
        rate_limits, rate_limit_mode, request_limit, historical_limit, rate_limit_block:
            Per-connection request limits and how breaches are answered: rolling one-second
            windows, every request counted when read (refused ones too), historical requests
            counted against both limits; the rules are in ``ctrader_typed.testing._ratelimit``.
            ``rate_limits`` and ``rate_limit_mode`` are where the server starts:
            ``Simulator.set_rate_limits`` changes them while it runs.
        rate_limit_clock: Monotonic seconds for the rate limits and payload-type blocks
            (default ``time.monotonic``); tests inject a fake one to step time exactly.
        clock: "Now" of the simulated world in Unix milliseconds - quotes, fills, deals, the
            edge between synthetic and recorded history, spot timestamps (default ``None``:
            the wall clock). The world starts at its first reading; a backtest passes a
            virtual clock (``ctrader_typed.backtest``).
        max_frame_size: Largest client-to-server frame accepted (bytes, without the 4-byte
            prefix); default 1 MiB, far more than any request needs (a ``ProtoOASymbolByIdReq``
            for 10,000 symbols is about 30 KB). A longer one gets ``ProtoErrorRes``
            ``FRAME_TOO_LONG`` and a close. At most ``inbound_buffer_limit``.
        inbound_buffer_limit: Bytes of inbound frames over 4 KiB that the simulator holds at
            once, over all connections: being read, or read and not yet answered (default
            16 MiB). A frame that does not fit waits, its connection unread, until others
            are answered or closed.
        request_queue_limit: Requests read ahead of the one being answered, per connection
            (default 64); when the queue is full the connection is not read.
        write_buffer_high_water: Bytes in a connection's write buffer above which its requests
            wait to be answered (default 512 KiB, asyncio's own default for TLS); answering
            resumes below a quarter of it.
        received_log_limit: How many frames ``SimConnection.received`` keeps (default 10,000).
        history_chunk_size: Most bars, deals or orders in one answer (``hasMore`` beyond).
        tick_chunk_size: Most ticks in one ``ProtoOAGetTickDataRes``.
        spot_timestamps: ``"clock"`` (the default: wall-clock Unix milliseconds, as the schema
            says, strictly increasing per connection) or ``"sequence"`` (an opt-in for tests:
            connection base + per-connection sequence, so a gap or repeat shows a lost or
            duplicated spot).
        spot_log_limit: How many ``(sequence, symbol, bid, ask)`` entries each connection keeps.
        token_lifetime: Seconds an access token lives.
        client_id, client_secret: The application's credentials (default: random).
        redirect_uri: The registered redirect URI (loopback URIs are accepted too).
        version: What ``ProtoOAVersionRes`` answers.
        accounts: The accounts, in the order of ``Simulator.accounts`` except that demo
            accounts come before live ones (default ``DEFAULT_ACCOUNTS``); each sets its
            deposit currency and ``moneyDigits``. At least one; ids must be unique.
        extra_demo_accounts: More demo accounts (alternately EUR and USD) granted to the default token, after the
            demo accounts of ``accounts`` (ids 44_000_003, 44_000_004, ...), for tests that need
            many accounts on one connection.
        oauth_lenient: ``False`` (default): ``/apps/token`` serves only what Spotware documents
            (GET with query parameters; camelCase keys). ``True``: it also takes a POST form or
            JSON body and adds snake_case copies of the keys, as the simulator once did.
    """

    host: str = "127.0.0.1"
    port: int = 0
    http_port: int = 0
    seed: int = 0
    spot_interval: float = 0.2
    idle_timeout: float = 30.0
    heartbeat_interval: float = 10.0
    rate_limits: bool = True
    rate_limit_mode: RateLimitMode = "blocked"
    max_frame_size: int = 1024 * 1024
    inbound_buffer_limit: int = 16 * 1024 * 1024
    request_queue_limit: int = 64
    write_buffer_high_water: int = 512 * 1024
    received_log_limit: int = 10_000
    request_limit: int = 50
    historical_limit: int = 5
    rate_limit_block: float = 1.0
    rate_limit_clock: Callable[[], float] = time.monotonic
    clock: Callable[[], int] | None = None
    history_chunk_size: int = 5_000
    tick_chunk_size: int = 10_000
    spot_timestamps: SpotTimestamps = "clock"
    spot_log_limit: int = 1_000_000
    token_lifetime: int = 2_628_000
    client_id: str | None = None
    client_secret: str | None = dataclasses.field(default=None, repr=False)
    redirect_uri: str = DEFAULT_REDIRECT_URI
    version: str = "91"
    accounts: tuple[AccountSpec, ...] = DEFAULT_ACCOUNTS
    extra_demo_accounts: int = 0
    oauth_lenient: bool = False
    live_endpoint: bool = False
    live_port: int = 0
    json_port: int = 0

    def __post_init__(self) -> None:
        if self.live_port and not self.live_endpoint:
            raise ValueError("live_port is only used with live_endpoint=True")
        if self.live_endpoint and self.live_port and self.live_port == self.port:
            raise ValueError("port and live_port must differ")
        if self.json_port and self.json_port in (self.port, self.live_port, self.http_port):
            raise ValueError("json_port must differ from port, live_port and http_port")
        if self.extra_demo_accounts < 0:
            raise ValueError("extra_demo_accounts must not be negative")
        ids = [a.account_id for a in self.accounts] + [
            44_000_003 + n for n in range(self.extra_demo_accounts)
        ]
        if not self.accounts or len(set(ids)) != len(ids):
            raise ValueError(
                "accounts must not be empty and account ids (extra demo ones too) must be unique"
            )
        if not 0 <= self.max_frame_size <= self.inbound_buffer_limit:
            raise ValueError("max_frame_size must be between 0 and inbound_buffer_limit")
        if self.request_queue_limit < 1 or self.write_buffer_high_water < 0 or self.received_log_limit < 0:
            raise ValueError(
                "request_queue_limit must be positive; write_buffer_high_water and "
                "received_log_limit must not be negative"
            )


class SimulatorOptions(TypedDict, total=False):
    """The fields of ``SimulatorSettings`` as keyword arguments (see it for what each means)."""

    host: str
    port: int
    http_port: int
    seed: int
    spot_interval: float
    idle_timeout: float
    heartbeat_interval: float
    rate_limits: bool
    rate_limit_mode: RateLimitMode
    max_frame_size: int
    inbound_buffer_limit: int
    request_queue_limit: int
    write_buffer_high_water: int
    received_log_limit: int
    request_limit: int
    historical_limit: int
    rate_limit_block: float
    rate_limit_clock: Callable[[], float]
    clock: Callable[[], int] | None
    history_chunk_size: int
    tick_chunk_size: int
    spot_timestamps: SpotTimestamps
    spot_log_limit: int
    token_lifetime: int
    client_id: str | None
    client_secret: str | None
    redirect_uri: str
    version: str
    accounts: tuple[AccountSpec, ...]
    extra_demo_accounts: int
    oauth_lenient: bool
    live_endpoint: bool
    live_port: int
    json_port: int


@dataclasses.dataclass(slots=True)
class FaultSwitches:
    """Server-wide state of the test hooks (a connection's own overrides win over these).

    Attributes:
        rate_limits, rate_limit_mode: Whether the request limits apply, and how a breach is
            answered (they start as the settings say).
        answer_delay: Seconds each request waits before it is answered.
        heartbeats_paused: The server sends no heartbeats.
        market_paused: The quote stream stands still.
        maintenance_until: Every request is refused with ``SERVER_IS_UNDER_MAINTENANCE`` until
            then (cleared by the first request after it).
        blocked: Payload type -> ``rate_limit_clock`` time until which it is refused with
            ``BLOCKED_PAYLOAD_TYPE``, on every connection.
    """

    rate_limits: bool
    rate_limit_mode: RateLimitMode
    answer_delay: float = 0.0
    heartbeats_paused: bool = False
    market_paused: bool = False
    maintenance_until: datetime.datetime | None = None
    blocked: dict[int, float] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: SimulatorSettings) -> FaultSwitches:
        """The switches of a fresh simulator: nothing faulty, rate limits as configured."""
        return cls(rate_limits=settings.rate_limits, rate_limit_mode=settings.rate_limit_mode)
