"""The simulated world: the market, the broker, the authority and the live connections.

Everything that happens in it (a quote, a fill, a token refreshed) is told to the connections
that should hear of it: ``publish`` sends an account's events where the account is
authorised, ``deliver`` a quote to its subscribers, ``tokens_invalidated`` ends the sessions of
a token that stopped working. Requests reach the world through the dispatcher; the world
knows nothing of requests, frames or the server around it.
"""

from __future__ import annotations

from typing import Final

from google.protobuf.message import Message as ProtobufMessage

from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.testing._auth import Authority, Scope
from ctrader_typed.testing._broker import Account, Broker, OrderRejected, RequestError
from ctrader_typed.testing._catalogue import ASSETS
from ctrader_typed.testing._connection import SimConnection
from ctrader_typed.testing._market import Market, Quote, bar_start
from ctrader_typed.testing._settings import AccountSpec, SimulatorSettings

__all__ = ["World"]

_DAY_MS: Final = 86_400_000


class World:
    """The simulated state and who hears of its changes.

    Attributes:
        market: Quotes, history and depth of every symbol.
        accounts: Every account, demo first, then live (all granted to the default token).
        broker: Accounts, orders, positions and deals.
        authority: The application, its grants and their tokens.
        connections: Every accepted connection not yet closed, oldest first.
    """

    def __init__(self, settings: SimulatorSettings) -> None:
        self.market = Market(settings.seed, clock=settings.clock)
        start = self.market.start_ms
        asset_ids = {asset.name: asset.asset_id for asset in ASSETS}
        extra = tuple(
            AccountSpec(
                account_id=44_000_003 + n,
                trader_login=5_100_003 + n,
                deposit_currency="USD" if n % 2 else "EUR",
            )
            for n in range(settings.extra_demo_accounts)
        )
        demo = [spec for spec in settings.accounts if not spec.is_live]
        live = [spec for spec in settings.accounts if spec.is_live]
        specs = [*demo, *extra, *live]
        self.accounts = [
            Account(
                spec.account_id,
                spec.is_live,
                spec.trader_login,
                asset_ids[spec.deposit_currency],
                0,
                start - spec.registered_days_ago * _DAY_MS,
                money_digits=spec.money_digits,
            )
            for spec in specs
        ]
        self.broker = Broker(self.market, self.accounts, clock=self.market.now)
        for account, spec in zip(self.accounts, specs, strict=True):
            self._open(account, spec.initial_deposit)
        self.authority = Authority(
            account_ids=tuple(a.account_id for a in self.accounts),
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            redirect_uri=settings.redirect_uri,
            token_lifetime=settings.token_lifetime,
        )
        self.authority.on_invalidated(self.tokens_invalidated)
        self.connections: list[SimConnection] = []

    def _open(self, account: Account, initial: int) -> None:
        """An account's history before start-up: its cash flow and its margin-call thresholds."""
        start = self.market.start_ms
        scale = account.scale
        self.broker.deposit(account, initial * scale, account.registration_ms + 3_600_000, "Initial deposit")
        self.broker.deposit(account, initial // 4 * scale, start - 5 * _DAY_MS, "Top-up")
        self.broker.deposit(account, -(initial // 20) * scale, start - 2 * _DAY_MS, "Withdrawal")
        for kind, level in ((model_pb.MARGIN_LEVEL_THRESHOLD_1, 200.0), (model_pb.MARGIN_LEVEL_THRESHOLD_2, 100.0),
                            (model_pb.MARGIN_LEVEL_THRESHOLD_3, 50.0)):  # fmt: skip
            account.margin_calls[kind] = model_pb.ProtoOAMarginCall(
                marginCallType=kind,
                marginLevelThreshold=level,
                utcLastUpdateTimestamp=account.registration_ms,
            )

    # -- accounts and sessions ------------------------------------------------------------------

    def account(self, account_id: int) -> Account:
        """The account, or ``RequestError`` ``CH_CTID_TRADER_ACCOUNT_NOT_FOUND``."""
        account = self.broker.account(account_id)
        if account is None:
            raise RequestError(
                "CH_CTID_TRADER_ACCOUNT_NOT_FOUND", f"Trading account {account_id} is not found"
            )
        return account

    def scope_of(self, conn: SimConnection, account_id: int) -> Scope | None:
        """The scope of the token that authorised the account on ``conn`` (``None``: not authorised)."""
        token = conn.accounts.get(account_id)
        if token is None:
            return None
        grant = self.authority.grant_of(token)
        return None if grant is None else grant.scope

    def publish(
        self,
        account_id: int,
        payload_type: int,
        message: ProtobufMessage,
        *,
        origin: SimConnection | None = None,
        client_msg_id: str | None = None,
    ) -> None:
        """Send an account's event to every connection where it is authorised.

        Only ``origin`` (the connection whose request caused it) gets ``client_msg_id``.
        """
        for conn in list(self.connections):
            if account_id in conn.accounts:
                conn.send(payload_type, message, client_msg_id if conn is origin else None)

    def forget_account(self, conn: SimConnection, account_id: int) -> None:
        """End an account's session on a connection, with its subscriptions."""
        conn.accounts.pop(account_id, None)
        for key in [k for k in conn.spot_subscriptions if k[0] == account_id]:
            del conn.spot_subscriptions[key]
        conn.depth_subscriptions = {k for k in conn.depth_subscriptions if k[0] != account_id}

    def tokens_invalidated(self, access_token: str, reason: str) -> None:
        """Tell sessions authorised with ``access_token`` that they are over."""
        for conn in list(self.connections):
            ids = [a for a, token in conn.accounts.items() if token == access_token]
            if ids:
                self.end_sessions(conn, ids, reason)

    def end_sessions(self, conn: SimConnection, account_ids: list[int], reason: str) -> None:
        """Forget these accounts on ``conn`` and say so with ``ProtoOAAccountsTokenInvalidatedEvent``."""
        for account_id in account_ids:
            self.forget_account(conn, account_id)
        event = pb.ProtoOAAccountsTokenInvalidatedEvent(ctidTraderAccountIds=account_ids, reason=reason)
        conn.send(model_pb.PROTO_OA_ACCOUNTS_TOKEN_INVALIDATED_EVENT, event)

    # -- server-side account changes -------------------------------------------------------------

    def deposit(self, account_id: int, amount: int, note: str) -> None:
        """Book a deposit (positive) or withdrawal (negative) of ``amount`` money units now.

        The account's sessions hear of it as the server tells them of a balance operation made
        outside the API: a server ``ProtoOAExecutionEvent`` ``DEPOSIT_WITHDRAW`` carrying the
        ``ProtoOADepositWithdraw``, then ``ProtoOATraderUpdatedEvent`` with the new trader record.
        """
        account = self.account(account_id)
        entry = self.broker.deposit(account, amount, self.market.now(), note)
        event = pb.ProtoOAExecutionEvent(
            ctidTraderAccountId=account_id, executionType=model_pb.DEPOSIT_WITHDRAW, isServerEvent=True
        )
        event.depositWithdraw.CopyFrom(entry)
        self.publish(account_id, model_pb.PROTO_OA_EXECUTION_EVENT, event)
        self._trader_updated(account)

    def charge_swap(self, account_id: int, position_id: int, amount: int) -> None:
        """Book ``amount`` money units of swap on an open position now (a server ``SWAP`` execution)."""
        account = self.account(account_id)
        try:
            event = self.broker.charge_swap(account, position_id, amount)
        except OrderRejected as exc:
            raise ValueError(exc.description) from exc
        self.publish(account_id, model_pb.PROTO_OA_EXECUTION_EVENT, event)

    def set_leverage(self, account_id: int, leverage_in_cents: int) -> None:
        """Change an account's leverage now: ``ProtoOATraderUpdatedEvent``, then one
        ``ProtoOAMarginChangedEvent`` per open position whose margin changed."""
        account = self.account(account_id)
        changes = self.broker.set_leverage(account, leverage_in_cents)
        self._trader_updated(account)
        for event in changes:
            self.publish(account_id, model_pb.PROTO_OA_MARGIN_CHANGED_EVENT, event)

    def _trader_updated(self, account: Account) -> None:
        update = pb.ProtoOATraderUpdatedEvent(ctidTraderAccountId=account.account_id)
        update.trader.CopyFrom(account.trader())
        self.publish(account.account_id, model_pb.PROTO_OA_TRADER_UPDATE_EVENT, update)

    # -- market ---------------------------------------------------------------------------------

    def step_market(self) -> None:
        """Move every symbol by one quote now and deliver the consequences."""
        for quote in self.market.step(list(self.market.symbols), self.market.now()):
            self.deliver(quote)
        for account_id, event in self.broker.expire_orders():
            self.publish(account_id, model_pb.PROTO_OA_EXECUTION_EVENT, event)

    def deliver(self, quote: Quote) -> None:
        """Let orders and protections react to a new quote, reprice the margins it moves, then
        tell its subscribers."""
        for account_id, event in self.broker.on_quote(quote):
            self.publish(account_id, model_pb.PROTO_OA_EXECUTION_EVENT, event)
        for account_id, margin_event in self.broker.reprice_margins(quote.symbol_id):
            self.publish(account_id, model_pb.PROTO_OA_MARGIN_CHANGED_EVENT, margin_event)
        state = self.market.symbols[quote.symbol_id]
        bars: dict[int, bytes] = {}
        depth: tuple[list[model_pb.ProtoOADepthQuote], list[int]] | None = None
        for conn in list(self.connections):
            for subscription in list(conn.spot_subscriptions.values()):
                if subscription.symbol_id != quote.symbol_id:
                    continue
                if not (quote.bid_changed or quote.ask_changed):
                    continue
                trendbars = [
                    _bar_bytes(bars, state.live_bar(p, quote.t_ms, self.market.start_ms), p, quote.t_ms)
                    for p in sorted(subscription.periods)
                ]
                conn.send_spot(
                    subscription,
                    quote.bid if quote.bid_changed else None,
                    quote.ask if quote.ask_changed else None,
                    trendbars,
                )
            for account_id, symbol_id in list(conn.depth_subscriptions):
                if symbol_id != quote.symbol_id:
                    continue
                if depth is None:
                    depth = self.market.depth(symbol_id).update(quote.bid, quote.ask)
                if depth[0] or depth[1]:
                    depth_event = pb.ProtoOADepthEvent(ctidTraderAccountId=account_id, symbolId=symbol_id)
                    depth_event.newQuotes.extend(depth[0])
                    depth_event.deletedQuotes.extend(depth[1])
                    conn.send(model_pb.PROTO_OA_DEPTH_EVENT, depth_event)


def _bar_bytes(cache: dict[int, bytes], bar: list[int], period: int, t_ms: int) -> bytes:
    """A live trendbar's encoded ``ProtoOATrendbar``, built once per period and quote."""
    cached = cache.get(period)
    if cached is None:
        open_, high, low, close, volume = bar
        cached = cache[period] = model_pb.ProtoOATrendbar(
            volume=volume,
            period=model_pb.ProtoOATrendbarPeriod.ValueType(period),
            low=low,
            deltaOpen=open_ - low,
            deltaClose=close - low,
            deltaHigh=high - low,
            utcTimestampInMinutes=bar_start(period, t_ms) // 60_000,
        ).SerializeToString()
    return cached
