"""What a session consists of, recorded from the requests that succeeded (sans-IO).

Which requests matter, and how, is each request's policy (``restore`` and ``subscription``
in ``_generated.registry.REQUEST_POLICIES``, from ``protos/policy.toml``).

``SessionState`` keeps the application credentials, the authorised accounts and their
spot / live-trendbar / depth subscriptions, and turns them back into the requests that
re-make the session on a new link.
"""

from __future__ import annotations

import dataclasses
from typing import cast

from google.protobuf.message import Message as ProtobufMessage

from ctrader_typed._generated import OpenApiMessages_pb2 as _pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as _model_pb
from ctrader_typed._generated.registry import REQUEST_POLICIES, SubscriptionKind, payload_type_of

__all__ = ["AccountSession", "SessionState", "split_request"]


def _subscription_of(message: ProtobufMessage) -> SubscriptionKind | None:
    """The subscription a (un)subscribe request is about, by its policy; ``None`` for other requests."""
    policy = REQUEST_POLICIES.get(payload_type_of(message.DESCRIPTOR.full_name))
    return policy.subscription if policy is not None else None


@dataclasses.dataclass(slots=True, eq=False)
class AccountSession:
    """One authorised account and its subscriptions."""

    token: str = dataclasses.field(repr=False)
    managed: bool = False
    """Authorised with the client's own token set, so a refreshed token applies to it."""
    authorized: bool = False
    """Authorised on the current link."""
    spots: dict[int, bool] = dataclasses.field(default_factory=dict)
    """symbol id -> subscribed with spot timestamps."""
    trendbars: set[tuple[int, int]] = dataclasses.field(default_factory=set)
    """(symbol id, period)."""
    depth: set[int] = dataclasses.field(default_factory=set)


class SessionState:
    """What has to be re-made after a reconnect, recorded from the requests that succeeded.

    ``record`` is fed every successful request; ``subscribe_requests`` turns an account's
    subscriptions back into requests, and ``forget`` drops a subscription that could not
    be re-made.
    """

    def __init__(self) -> None:
        self.app_credentials: tuple[str, str] | None = None
        self.accounts: dict[int, AccountSession] = {}
        self.logged_out: set[int] = set()
        """Accounts whose logout was answered; their ``AccountDisconnectEvent`` is expected."""

    def __repr__(self) -> str:
        return f"SessionState(app={self.app_credentials is not None}, accounts={sorted(self.accounts)})"

    def authorized_accounts(self) -> frozenset[int]:
        return frozenset(a for a, s in self.accounts.items() if s.authorized)

    def link_lost(self) -> None:
        """No account is authorised on a link that is gone."""
        for account in self.accounts.values():
            account.authorized = False

    def record(
        self, payload_type: int, message: ProtobufMessage, *, managed_token: str | None = None
    ) -> None:
        """A request of ``payload_type`` succeeded: remember its effect on the session (its
        policy's ``restore``: see ``_generated.registry.RequestPolicy``).

        ``managed_token`` is the access token of the client's own token set, if any.
        """
        policy = REQUEST_POLICIES.get(payload_type)
        restore = policy.restore if policy is not None else None
        if restore is None:
            return
        if restore == "application_auth":
            assert isinstance(message, _pb.ProtoOAApplicationAuthReq)
            self.app_credentials = (message.clientId, message.clientSecret)
        elif restore == "account_auth":
            assert isinstance(message, _pb.ProtoOAAccountAuthReq)
            account_id = message.ctidTraderAccountId
            account = self.accounts.get(account_id)
            if account is None:
                account = self.accounts[account_id] = AccountSession(token=message.accessToken)
            account.token = message.accessToken
            account.managed = managed_token is not None and message.accessToken == managed_token
            account.authorized = True
            self.logged_out.discard(account_id)
        elif restore == "account_logout":
            assert isinstance(message, _pb.ProtoOAAccountLogoutReq)
            if self.accounts.pop(message.ctidTraderAccountId, None) is not None:
                self.logged_out.add(message.ctidTraderAccountId)
        elif restore == "subscribe":
            self._subscribe(message)
        else:
            self.forget(message)

    def _subscribe(self, message: ProtobufMessage) -> None:
        kind = _subscription_of(message)
        if kind == "spots":
            assert isinstance(message, _pb.ProtoOASubscribeSpotsReq)
            account = self.accounts.get(message.ctidTraderAccountId)
            if account is not None:
                for symbol_id in message.symbolId:
                    account.spots[symbol_id] = message.subscribeToSpotTimestamp
        elif kind == "live_trendbar":
            assert isinstance(message, _pb.ProtoOASubscribeLiveTrendbarReq)
            account = self.accounts.get(message.ctidTraderAccountId)
            if account is not None:
                account.trendbars.add((message.symbolId, message.period))
        elif kind == "depth":
            assert isinstance(message, _pb.ProtoOASubscribeDepthQuotesReq)
            account = self.accounts.get(message.ctidTraderAccountId)
            if account is not None:
                account.depth.update(message.symbolId)

    def forget(self, message: ProtobufMessage) -> None:
        """Drop the subscriptions ``message`` names (it unsubscribes, or re-making them failed)."""
        kind = _subscription_of(message)
        if kind == "spots":
            assert isinstance(message, _pb.ProtoOASubscribeSpotsReq | _pb.ProtoOAUnsubscribeSpotsReq)
            account = self.accounts.get(message.ctidTraderAccountId)
            if account is not None:
                gone = set(message.symbolId)
                for symbol_id in gone:
                    account.spots.pop(symbol_id, None)
                # Live bars ride on spot events: they go with the spot subscription.
                account.trendbars = {(s, p) for s, p in account.trendbars if s not in gone}
        elif kind == "live_trendbar":
            assert isinstance(
                message, _pb.ProtoOASubscribeLiveTrendbarReq | _pb.ProtoOAUnsubscribeLiveTrendbarReq
            )
            account = self.accounts.get(message.ctidTraderAccountId)
            if account is not None:
                account.trendbars.discard((message.symbolId, message.period))
        elif kind == "depth":
            assert isinstance(
                message, _pb.ProtoOASubscribeDepthQuotesReq | _pb.ProtoOAUnsubscribeDepthQuotesReq
            )
            account = self.accounts.get(message.ctidTraderAccountId)
            if account is not None:
                account.depth.difference_update(message.symbolId)

    def subscribe_requests(self, account_id: int) -> list[ProtobufMessage]:
        """The requests that re-make the account's subscriptions: spots first (one request per
        timestamp setting), then live trendbars (which need the spots), then depth."""
        account = self.accounts.get(account_id)
        if account is None:
            return []
        requests: list[ProtobufMessage] = []
        for with_timestamp in (False, True):
            symbols = sorted(s for s, flag in account.spots.items() if flag == with_timestamp)
            if symbols:
                spots = _pb.ProtoOASubscribeSpotsReq(ctidTraderAccountId=account_id, symbolId=symbols)
                if with_timestamp:
                    spots.subscribeToSpotTimestamp = True
                requests.append(spots)
        for symbol_id, period in sorted(account.trendbars):
            requests.append(
                _pb.ProtoOASubscribeLiveTrendbarReq(
                    ctidTraderAccountId=account_id,
                    symbolId=symbol_id,
                    period=cast(_model_pb.ProtoOATrendbarPeriod.ValueType, period),
                )
            )
        if account.depth:
            requests.append(
                _pb.ProtoOASubscribeDepthQuotesReq(
                    ctidTraderAccountId=account_id, symbolId=sorted(account.depth)
                )
            )
        return requests


def split_request(message: ProtobufMessage) -> list[ProtobufMessage]:
    """A multi-symbol subscription as one request per symbol (to find the symbol that fails)."""
    parts: list[ProtobufMessage] = []
    if isinstance(message, _pb.ProtoOASubscribeSpotsReq) and len(message.symbolId) > 1:
        for symbol_id in message.symbolId:
            spots = _pb.ProtoOASubscribeSpotsReq(
                ctidTraderAccountId=message.ctidTraderAccountId, symbolId=[symbol_id]
            )
            if message.HasField("subscribeToSpotTimestamp"):
                spots.subscribeToSpotTimestamp = message.subscribeToSpotTimestamp
            parts.append(spots)
    elif isinstance(message, _pb.ProtoOASubscribeDepthQuotesReq) and len(message.symbolId) > 1:
        for symbol_id in message.symbolId:
            parts.append(
                _pb.ProtoOASubscribeDepthQuotesReq(
                    ctidTraderAccountId=message.ctidTraderAccountId, symbolId=[symbol_id]
                )
            )
    else:
        parts.append(message)
    return parts
