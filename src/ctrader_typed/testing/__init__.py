"""A local cTrader Open API server for tests, demos and benchmarks.

::

    async with Simulator(seed=1) as sim:
        # TLS protobuf endpoint at sim.host:sim.port (trust sim.ssl_context / sim.ca_file),
        # OAuth at sim.oauth_url + "/apps/auth" and "/apps/token",
        # credentials sim.client_id / sim.client_secret, tokens sim.access_token /
        # sim.refresh_token, accounts sim.accounts (sim.demo_accounts, sim.live_accounts).
        ...

Standalone: ``ctrader-typed sim`` or ``python -m ctrader_typed.testing`` (first stdout line is
one JSON object with the connection details). In pytest: the ``ctrader_simulator`` fixture.

Options
    Keywords of ``Simulator`` (``Simulator(seed=7, rate_limits=False)``), or a whole
    ``SimulatorSettings``, which lists them with their defaults; ``sim.settings`` reads them
    back. The test hooks below change the running server, never its settings.

Protocol
    4-byte big-endian length + ``ProtoMessage``. ``clientMsgId`` is echoed on every answer and
    on the execution events a trading request causes (other sessions of the same account get
    those events without it). The server sends ``ProtoHeartbeatEvent`` after
    ``heartbeat_interval`` seconds without output and closes a connection that sent nothing
    for ``idle_timeout`` seconds. An oversized inbound frame gets ``ProtoErrorRes``
    ``FRAME_TOO_LONG``, an undecodable one ``UNKNOWN_ERROR`` "Corrupted frame.", and a close;
    an unknown payload type gets ``UNSUPPORTED_MESSAGE`` and a payload missing required
    fields ``INVALID_REQUEST`` (both ``ProtoErrorRes``, connection kept).

Sessions
    Before ``ProtoOAApplicationAuthReq`` every request gets ``CH_CLIENT_NOT_AUTHENTICATED``;
    bad credentials ``CH_CLIENT_AUTH_FAILURE``; a second application auth
    ``CH_CLIENT_ALREADY_AUTHENTICATED``. Account auth: unknown or expired token
    ``CH_ACCESS_TOKEN_INVALID`` ("Invalid access token" / "Access token expired"), unknown
    account ``CH_CTID_TRADER_ACCOUNT_NOT_FOUND``, account not granted to the token
    ``ACCOUNT_NOT_AUTHORIZED``, twice ``ALREADY_LOGGED_IN``. Any account-scoped request for
    an account not authorised on the connection: ``ACCOUNT_NOT_AUTHORIZED``. Trading with a
    view-only (``accounts`` scope) token: ``ACCOUNT_NOT_AUTHORIZED``. One connection carries
    any number of accounts, demo and live alike, unless ``live_endpoint=True``: then
    ``sim.port`` serves demo accounts and ``sim.live_port`` live ones, and a request naming an
    account of the other environment gets ``CANT_ROUTE_REQUEST``, as Spotware's hosts answer.

Market
    Ten symbols (EURUSD is id 1). Quotes are a seeded random walk around a deterministic
    price history; historical bars and ticks before start-up are a pure function of the
    seed, after start-up they are the quotes that were streamed. Spot subscriptions get a
    first "technical" event with both sides and ``sessionClose``, then an event whenever a
    side changes (unchanged sides are left out), every ``spot_interval`` seconds per symbol.

Spot traceability
    Every spot event pushed on a connection has a per-connection *sequence*: 1, 2, 3, ...
    counting every spot event on that connection (first events and bursts included).
    ``conn.spots_sent`` counts the events and ``conn.spot_log`` holds
    ``(sequence, symbol_id, bid, ask)`` as sent. When the subscription asked for timestamps
    (``subscribeToSpotTimestamp``), ``timestamp`` is wall-clock Unix milliseconds (strictly
    increasing per connection) by default; with ``spot_timestamps="sequence"`` (an opt-in
    for tests) it is ``conn.spot_timestamp_base + sequence``, so the timestamps a client
    receives are consecutive integers: a gap means a lost event, a repeat a duplicate.
    Burst events to a target without a subscription always carry the timestamp.

Trading
    Hedged accounts. MARKET: ``ORDER_ACCEPTED`` (order, position in
    ``POSITION_STATUS_CREATED``) then ``ORDER_FILLED`` (order, position, deal). LIMIT/STOP/
    STOP_LIMIT: ``ORDER_ACCEPTED``, later ``ORDER_FILLED`` (``isServerEvent``) when the price
    crosses, or ``ORDER_EXPIRED``. Cancel: ``ORDER_CANCELLED``; amend and SL/TP amend:
    ``ORDER_REPLACED``; close: ``ORDER_ACCEPTED`` + ``ORDER_FILLED`` with
    ``closePositionDetail``. Stop-loss and take-profit close positions when crossed.
    Validation failures are ``ProtoOAOrderErrorEvent`` (``TRADING_BAD_VOLUME``,
    ``TRADING_BAD_PRICES``, ``TRADING_BAD_STOPS``, ``NOT_ENOUGH_MONEY``,
    ``POSITION_NOT_FOUND``, ``ORDER_NOT_FOUND`` ...). ``set_price`` moves a symbol on demand.

Account figures
    Balance, used margin per position and unrealized P&L converted to the deposit currency
    through the ``SymbolsForConversionReq`` chain (exact ``Decimal`` rules in ``_broker``),
    answered by ``GetPositionUnrealizedPnLReq`` and readable with ``account_figures``. A
    quote that moves a position's base-to-deposit rate reprices its margin
    (``MarginChangedEvent``); ``charge_swap`` (a server ``SWAP`` execution), ``deposit`` (a
    server ``DEPOSIT_WITHDRAW`` execution, then ``TraderUpdatedEvent``) and ``set_leverage``
    (``TraderUpdatedEvent``, then one ``MarginChangedEvent`` per position) change an account
    from the broker's side.

Rate limits
    Per connection, 50 requests/s and 5 historical requests/s (deals, trendbars, ticks, cash
    flow), by the strictest reading: a rolling one-second window per class, every request
    counted when it is read (refused ones too; heartbeats not), historical requests counted
    against the 50/s as well. Breaches: ``BLOCKED_PAYLOAD_TYPE`` + ``retryAfter`` (that
    payload type blocked for ``rate_limit_block`` seconds) or, with
    ``rate_limit_mode="frequency"``, ``REQUEST_FREQUENCY_EXCEEDED``; a refused request is
    not executed. ``rate_limit_clock`` makes the windows testable on a fake clock.

Bounds
    Nothing a client does grows the simulator's memory without bound: ``received`` keeps the
    last ``received_log_limit`` frames (``frames_received`` counts them all), at most
    ``request_queue_limit`` requests wait per connection (reading pauses, nothing is dropped),
    answering waits while more than ``write_buffer_high_water`` bytes are unsent, frames
    over ``max_frame_size`` (1 MiB) are refused, and partial large frames share an
    ``inbound_buffer_limit``.

OAuth
    ``/apps/auth`` and ``/my/settings/openapi/grantingaccess/`` approve at once and redirect
    with ``code`` and ``state``; ``/apps/token`` (GET with query parameters, camelCase reply;
    POST and snake_case copies only with ``oauth_lenient=True``) serves the
    ``authorization_code`` and ``refresh_token`` grants: codes single-use for 60 s, refresh tokens single-use and rotating, errors as
    ``errorCode``/``description`` with HTTP 200. A refresh (HTTP or
    ``ProtoOARefreshTokenReq``) invalidates the old pair and sends
    ``ProtoOAAccountsTokenInvalidatedEvent`` to the sessions that used it.

Test hooks (``Simulator`` methods; they act on every live connection unless given one)
    ``connections``, ``wait_for_connections``, ``wait_until``, ``drop_connections``,
    ``drop_after_frames``, ``drop_instead_of_answering``, ``delay_answers``, ``send_garbage``,
    ``send_oversized_frame``, ``send_half_frame_then_close``, ``send_undecodable_payload``,
    ``send_unknown_payload_type``, ``emit_client_disconnect``, ``emit_account_disconnect``,
    ``emit_token_invalidated``, ``set_maintenance``, ``pause_heartbeats``, ``pause_market``,
    ``block_payload_type``, ``set_rate_limits``, ``expire_access_token``, ``issue_tokens``,
    ``set_price``, ``market_step``, ``burst_spots``, ``deposit``, ``charge_swap``,
    ``set_leverage``, ``account_figures``.

Hostile servers
    ``RawServer`` is a scripted TLS server (its own throwaway CA) for testing a client
    against a server that sends whatever it likes: whole frames, raw bytes, a frame trickled
    byte by byte, a graceful close or a reset; ``RawPeer`` is one accepted connection. The
    ``raw_server`` pytest fixture starts one.

Replay
    ``ReplayServer`` serves a recording (``ctrader_typed.recording``) back to any client over
    TLS: requests are matched to the recorded ones, answers and events played back as fast as
    the client reads or at the recorded pace; a request the recording does not have is a
    ``Divergence`` (the client gets ``ProtoOAErrorRes`` ``REPLAY_DIVERGENCE``; ``finished``
    raises ``ReplayDivergence``). The ``ctrader_replay`` pytest fixture starts one.
    ``RecordingProxy`` records a client that has no recorder of its own (another SDK) by
    standing between it and the server.
"""

from ctrader_typed.testing._broker import AccountFigures
from ctrader_typed.testing._connection import SimConnection, SpotSubscription
from ctrader_typed.testing._settings import AccountSpec, SimulatorSettings
from ctrader_typed.testing.raw import RawClient, RawPeer, RawServer, Received
from ctrader_typed.testing.replay import Divergence, RecordingProxy, ReplayDivergence, ReplayServer
from ctrader_typed.testing.simulator import ConnectionInfo, Simulator

__all__ = [
    "AccountFigures",
    "AccountSpec",
    "ConnectionInfo",
    "Divergence",
    "RawClient",
    "RawPeer",
    "RawServer",
    "Received",
    "RecordingProxy",
    "ReplayDivergence",
    "ReplayServer",
    "SimConnection",
    "Simulator",
    "SimulatorSettings",
    "SpotSubscription",
]
