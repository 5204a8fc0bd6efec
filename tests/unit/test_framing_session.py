"""Session bookkeeping of the sans-IO core: what a reconnect must re-make."""

from __future__ import annotations

from ctrader_typed._client.session import SessionState, split_request
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb

ACC, OTHER = 11, 22


def authorised(*, managed_token: str | None = None) -> SessionState:
    session = SessionState()
    session.record(2100, pb.ProtoOAApplicationAuthReq(clientId="id", clientSecret="secret"))
    session.record(
        2102,
        pb.ProtoOAAccountAuthReq(ctidTraderAccountId=ACC, accessToken="tok"),
        managed_token=managed_token,
    )
    return session


def test_application_and_account_auth_are_recorded() -> None:
    session = authorised(managed_token="tok")
    assert session.app_credentials == ("id", "secret")
    assert session.authorized_accounts() == {ACC}
    assert session.accounts[ACC].managed
    assert "secret" not in repr(session)
    assert "tok" not in repr(session.accounts[ACC])
    session.record(
        2102, pb.ProtoOAAccountAuthReq(ctidTraderAccountId=OTHER, accessToken="other"), managed_token="tok"
    )
    assert not session.accounts[OTHER].managed
    session.link_lost()
    assert session.authorized_accounts() == frozenset()
    assert set(session.accounts) == {ACC, OTHER}  # still to be restored


def test_subscriptions_are_recorded_and_undone() -> None:
    session = authorised()
    session.record(2127, pb.ProtoOASubscribeSpotsReq(ctidTraderAccountId=ACC, symbolId=[1, 2]))
    session.record(
        2127,
        pb.ProtoOASubscribeSpotsReq(ctidTraderAccountId=ACC, symbolId=[3], subscribeToSpotTimestamp=True),
    )
    session.record(
        2135, pb.ProtoOASubscribeLiveTrendbarReq(ctidTraderAccountId=ACC, symbolId=1, period=model_pb.M5)
    )
    session.record(
        2135, pb.ProtoOASubscribeLiveTrendbarReq(ctidTraderAccountId=ACC, symbolId=2, period=model_pb.H1)
    )
    session.record(2156, pb.ProtoOASubscribeDepthQuotesReq(ctidTraderAccountId=ACC, symbolId=[1, 3]))
    account = session.accounts[ACC]
    assert account.spots == {1: False, 2: False, 3: True}
    assert account.trendbars == {(1, model_pb.M5), (2, model_pb.H1)}
    assert account.depth == {1, 3}
    session.record(2129, pb.ProtoOAUnsubscribeSpotsReq(ctidTraderAccountId=ACC, symbolId=[2]))
    assert account.spots == {1: False, 3: True}
    assert account.trendbars == {(1, model_pb.M5)}  # live bars go with their spot subscription
    session.record(
        2136, pb.ProtoOAUnsubscribeLiveTrendbarReq(ctidTraderAccountId=ACC, symbolId=1, period=model_pb.M5)
    )
    session.record(2158, pb.ProtoOAUnsubscribeDepthQuotesReq(ctidTraderAccountId=ACC, symbolId=[3]))
    assert account.trendbars == set()
    assert account.depth == {1}


def test_requests_for_unknown_accounts_change_nothing() -> None:
    session = authorised()
    session.record(2127, pb.ProtoOASubscribeSpotsReq(ctidTraderAccountId=OTHER, symbolId=[1]))
    assert session.subscribe_requests(OTHER) == []
    assert set(session.accounts) == {ACC}


def test_subscribe_requests_re_make_the_subscriptions_in_order() -> None:
    session = authorised()
    session.record(2127, pb.ProtoOASubscribeSpotsReq(ctidTraderAccountId=ACC, symbolId=[2, 1]))
    session.record(
        2127,
        pb.ProtoOASubscribeSpotsReq(ctidTraderAccountId=ACC, symbolId=[3], subscribeToSpotTimestamp=True),
    )
    session.record(
        2135, pb.ProtoOASubscribeLiveTrendbarReq(ctidTraderAccountId=ACC, symbolId=1, period=model_pb.M1)
    )
    session.record(2156, pb.ProtoOASubscribeDepthQuotesReq(ctidTraderAccountId=ACC, symbolId=[3, 1]))
    assert session.subscribe_requests(ACC) == [
        pb.ProtoOASubscribeSpotsReq(ctidTraderAccountId=ACC, symbolId=[1, 2]),
        pb.ProtoOASubscribeSpotsReq(ctidTraderAccountId=ACC, symbolId=[3], subscribeToSpotTimestamp=True),
        pb.ProtoOASubscribeLiveTrendbarReq(ctidTraderAccountId=ACC, symbolId=1, period=model_pb.M1),
        pb.ProtoOASubscribeDepthQuotesReq(ctidTraderAccountId=ACC, symbolId=[1, 3]),
    ]


def test_logout_forgets_the_account_until_it_is_authorised_again() -> None:
    session = authorised()
    session.record(2127, pb.ProtoOASubscribeSpotsReq(ctidTraderAccountId=ACC, symbolId=[1]))
    session.record(2162, pb.ProtoOAAccountLogoutReq(ctidTraderAccountId=ACC))
    assert session.accounts == {}
    assert session.logged_out == {ACC}
    session.record(2102, pb.ProtoOAAccountAuthReq(ctidTraderAccountId=ACC, accessToken="tok"))
    assert session.logged_out == set()
    assert session.accounts[ACC].spots == {}


def test_forget_drops_what_could_not_be_re_made() -> None:
    session = authorised()
    session.record(2127, pb.ProtoOASubscribeSpotsReq(ctidTraderAccountId=ACC, symbolId=[1, 2]))
    session.record(
        2135, pb.ProtoOASubscribeLiveTrendbarReq(ctidTraderAccountId=ACC, symbolId=2, period=model_pb.M1)
    )
    session.forget(pb.ProtoOASubscribeSpotsReq(ctidTraderAccountId=ACC, symbolId=[2]))
    assert session.accounts[ACC].spots == {1: False}
    assert session.accounts[ACC].trendbars == set()


def test_split_request_keeps_the_timestamp_setting() -> None:
    spots = pb.ProtoOASubscribeSpotsReq(
        ctidTraderAccountId=ACC, symbolId=[1, 2], subscribeToSpotTimestamp=True
    )
    assert split_request(spots) == [
        pb.ProtoOASubscribeSpotsReq(ctidTraderAccountId=ACC, symbolId=[1], subscribeToSpotTimestamp=True),
        pb.ProtoOASubscribeSpotsReq(ctidTraderAccountId=ACC, symbolId=[2], subscribeToSpotTimestamp=True),
    ]
    depth = pb.ProtoOASubscribeDepthQuotesReq(ctidTraderAccountId=ACC, symbolId=[4, 5])
    assert split_request(depth) == [
        pb.ProtoOASubscribeDepthQuotesReq(ctidTraderAccountId=ACC, symbolId=[4]),
        pb.ProtoOASubscribeDepthQuotesReq(ctidTraderAccountId=ACC, symbolId=[5]),
    ]
    single = pb.ProtoOASubscribeSpotsReq(ctidTraderAccountId=ACC, symbolId=[1])
    assert split_request(single) == [single]
