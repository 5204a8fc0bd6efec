"""The OAuth endpoints over HTTP, token rotation and what it does to live sessions."""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.testing import Simulator
from ctrader_typed.testing._auth import Authority, AuthorityError
from ctrader_typed.testing.raw import RawClient

INVALIDATED = model_pb.PROTO_OA_ACCOUNTS_TOKEN_INVALIDATED_EVENT


@pytest_asyncio.fixture
async def http(ctrader_simulator: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=ctrader_simulator.oauth_url, follow_redirects=False) as client:
        yield client


async def authorize_code(
    http: httpx.AsyncClient, sim: Simulator, redirect_uri: str | None = None, scope: str = "trading"
) -> str:
    response = await http.get(
        "/apps/auth",
        params={
            "client_id": sim.client_id,
            "redirect_uri": redirect_uri or sim.redirect_uri,
            "scope": scope,
            "state": "s-42",
        },
    )
    assert response.status_code == 302
    location = urllib.parse.urlsplit(response.headers["location"])
    query = dict(urllib.parse.parse_qsl(location.query))
    assert query["state"] == "s-42"
    return query["code"]


def token_params(sim: Simulator, code: str, redirect_uri: str | None = None) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri or sim.redirect_uri,
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
    }


async def test_authorize_redirects_with_code_and_state(
    ctrader_simulator: Simulator, http: httpx.AsyncClient
) -> None:
    sim = ctrader_simulator
    for redirect in (
        sim.redirect_uri,
        "http://127.0.0.1:54321/cb",
        "http://localhost:8080/auth/callback?x=1",
    ):
        response = await http.get(
            "/apps/auth",
            params={"client_id": sim.client_id, "redirect_uri": redirect, "scope": "accounts", "state": "st"},
        )
        assert response.status_code == 302
        location = response.headers["location"]
        base, _, query = location.partition("?x=1&") if "?x=1" in redirect else location.partition("?")
        assert base == redirect.removesuffix("?x=1")
        params = dict(urllib.parse.parse_qsl(query))
        assert params["state"] == "st"
        assert len(params["code"]) >= 16
    for params in (
        {"client_id": sim.client_id, "redirect_uri": "https://evil.example/cb", "scope": "trading"},
        {"client_id": sim.client_id, "redirect_uri": "http://127.0.0.1.evil.example/cb", "scope": "trading"},
        {"client_id": "unknown", "redirect_uri": sim.redirect_uri, "scope": "trading"},
    ):
        assert (await http.get("/apps/auth", params=params)).status_code == 400
    response = await http.get(
        "/apps/auth",
        params={"client_id": sim.client_id, "redirect_uri": sim.redirect_uri, "scope": "everything"},
    )
    assert response.status_code == 302
    assert "error=invalid_scope" in response.headers["location"]
    assert (await http.get("/nowhere")).status_code == 404


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_code_exchange_answers_camel_and_snake_case(
    ctrader_simulator: Simulator, http: httpx.AsyncClient, method: str
) -> None:
    sim = ctrader_simulator
    code = await authorize_code(http, sim)
    params = token_params(sim, code)
    if method == "GET":
        response = await http.get("/apps/token", params=params)
    else:
        response = await http.post("/apps/token", data=params)
    assert response.status_code == 200
    body = response.json()
    assert body["tokenType"] == body["token_type"] == "bearer"
    assert body["expiresIn"] == body["expires_in"] == 2_628_000
    assert body["accessToken"] == body["access_token"]
    assert body["refreshToken"] == body["refresh_token"]
    assert body["errorCode"] is None
    assert body["accessToken"] != sim.access_token
    async with await RawClient.connect(sim.host, sim.port, sim.ssl_context) as raw:
        await raw.authorize(sim.client_id, sim.client_secret, body["accessToken"], sim.accounts)

    again = (await http.get("/apps/token", params=params)).json()
    assert again == {"errorCode": "INVALID_GRANT", "description": again["description"]}


async def test_token_endpoint_errors_are_json_with_http_200(
    ctrader_simulator: Simulator, http: httpx.AsyncClient
) -> None:
    sim = ctrader_simulator
    code = await authorize_code(http, sim)
    cases = [
        ({**token_params(sim, code), "client_secret": "wrong"}, "ACCESS_DENIED"),
        ({**token_params(sim, code), "redirect_uri": "http://localhost:9/other"}, "INVALID_GRANT"),
        ({"grant_type": "authorization_code", "client_id": sim.client_id}, "INVALID_REQUEST"),
        ({"client_id": sim.client_id}, "INVALID_REQUEST"),
        ({"grant_type": "password", "client_id": sim.client_id}, "UNSUPPORTED_GRANT_TYPE"),
        (token_params(sim, "made-up-code"), "INVALID_GRANT"),
        (
            {
                "grant_type": "refresh_token",
                "refresh_token": "nope",
                "client_id": sim.client_id,
                "client_secret": sim.client_secret,
            },
            "INVALID_GRANT",
        ),
    ]
    for params, code_name in cases:
        response = await http.get("/apps/token", params=params)
        assert response.status_code == 200
        body = response.json()
        assert body["errorCode"] == code_name, params
        assert body["description"]
        assert "accessToken" not in body


async def test_refresh_rotates_and_ends_sessions_of_the_old_token(
    ctrader_simulator: Simulator, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ctrader_typed")
    sim = ctrader_simulator
    old_access, old_refresh = sim.access_token, sim.refresh_token
    other_access, _ = sim.issue_tokens()
    async with await RawClient.connect(sim.host, sim.port, sim.ssl_context) as raw:
        await raw.authorize(sim.client_id, sim.client_secret, old_access, sim.accounts[:2])
        await raw.request(
            pb.ProtoOAAccountAuthReq(ctidTraderAccountId=sim.accounts[2], accessToken=other_access)
        )
        response = await http.post(
            "/apps/token",
            content=f'{{"grant_type": "refresh_token", "refresh_token": "{old_refresh}", '
            f'"client_id": "{sim.client_id}", "client_secret": "{sim.client_secret}"}}',
            headers={"Content-Type": "application/json"},
        )
        body = response.json()
        assert body["errorCode"] is None
        assert body["accessToken"] == sim.access_token != old_access
        assert body["refreshToken"] == sim.refresh_token != old_refresh

        event = await raw.expect(INVALIDATED)
        assert isinstance(event.message, pb.ProtoOAAccountsTokenInvalidatedEvent)
        assert sorted(event.message.ctidTraderAccountIds) == sorted(sim.accounts[:2])
        assert event.message.reason
        (conn,) = sim.connections
        assert list(conn.accounts) == [sim.accounts[2]]  # the account on another token stays

        stale = await raw.request(
            pb.ProtoOAAccountAuthReq(ctidTraderAccountId=sim.accounts[0], accessToken=old_access)
        )
        assert getattr(stale.message, "errorCode", None) == "CH_ACCESS_TOKEN_INVALID"
        fresh = await raw.request(
            pb.ProtoOAAccountAuthReq(ctidTraderAccountId=sim.accounts[0], accessToken=sim.access_token)
        )
        assert fresh.payload_type == model_pb.PROTO_OA_ACCOUNT_AUTH_RES

    reused = await http.get(
        "/apps/token",
        params={
            "grant_type": "refresh_token",
            "refresh_token": old_refresh,
            "client_id": sim.client_id,
            "client_secret": sim.client_secret,
        },
    )
    assert reused.json()["errorCode"] == "INVALID_GRANT"
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("ctrader_typed"))
    assert "token request refused" in ours
    for secret in (old_access, old_refresh, sim.access_token, sim.refresh_token, sim.client_secret):
        assert secret not in ours
    assert sim.access_token not in repr(sim)
    assert sim.access_token not in repr(sim.authority.default_grant)


async def test_refresh_over_the_socket(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    old_access, old_refresh = sim.access_token, sim.refresh_token
    async with (
        await RawClient.connect(sim.host, sim.port, sim.ssl_context) as raw,
        await RawClient.connect(sim.host, sim.port, sim.ssl_context) as bystander,
    ):
        await raw.authorize(sim.client_id, sim.client_secret, old_access, [sim.accounts[0]])
        await bystander.authorize(sim.client_id, sim.client_secret, old_access, [sim.accounts[1]])
        await raw.send(pb.ProtoOARefreshTokenReq(refreshToken=old_refresh), client_msg_id="r")
        answer = await raw.recv()
        assert answer.client_msg_id == "r"
        assert isinstance(answer.message, pb.ProtoOARefreshTokenRes)
        assert answer.message.accessToken == sim.access_token != old_access
        assert answer.message.refreshToken == sim.refresh_token
        assert answer.message.tokenType == "bearer"
        assert answer.message.expiresIn > 0
        for client, account in ((raw, sim.accounts[0]), (bystander, sim.accounts[1])):
            event = await client.expect(INVALIDATED)
            assert isinstance(event.message, pb.ProtoOAAccountsTokenInvalidatedEvent)
            assert list(event.message.ctidTraderAccountIds) == [account]
        reused = await raw.request(pb.ProtoOARefreshTokenReq(refreshToken=old_refresh))
        assert getattr(reused.message, "errorCode", None) == "CH_ACCESS_TOKEN_INVALID"


async def test_expired_access_token(ctrader_simulator: Simulator, http: httpx.AsyncClient) -> None:
    sim = ctrader_simulator
    sim.expire_access_token()
    async with await RawClient.connect(sim.host, sim.port, sim.ssl_context) as raw:
        await raw.authorize(sim.client_id, sim.client_secret)
        for request in (
            pb.ProtoOAAccountAuthReq(ctidTraderAccountId=sim.accounts[0], accessToken=sim.access_token),
            pb.ProtoOAGetAccountListByAccessTokenReq(accessToken=sim.access_token),
        ):
            answer = await raw.request(request)
            assert isinstance(answer.message, pb.ProtoOAErrorRes)
            assert (answer.message.errorCode, answer.message.description) == (
                "CH_ACCESS_TOKEN_INVALID",
                "Access token expired",
            )
        body = (
            await http.get(
                "/apps/token",
                params={
                    "grant_type": "refresh_token",
                    "refresh_token": sim.refresh_token,
                    "client_id": sim.client_id,
                    "client_secret": sim.client_secret,
                },
            )
        ).json()
        assert body["accessToken"] == sim.access_token
        ok = await raw.request(
            pb.ProtoOAAccountAuthReq(ctidTraderAccountId=sim.accounts[0], accessToken=sim.access_token)
        )
        assert ok.payload_type == model_pb.PROTO_OA_ACCOUNT_AUTH_RES


async def test_accounts_scope_gives_a_view_only_token(
    ctrader_simulator: Simulator, http: httpx.AsyncClient
) -> None:
    sim = ctrader_simulator
    code = await authorize_code(http, sim, scope="accounts")
    body = (await http.get("/apps/token", params=token_params(sim, code))).json()
    async with await RawClient.connect(sim.host, sim.port, sim.ssl_context) as raw:
        await raw.authorize(sim.client_id, sim.client_secret)
        listing = await raw.request(pb.ProtoOAGetAccountListByAccessTokenReq(accessToken=body["accessToken"]))
        assert isinstance(listing.message, pb.ProtoOAGetAccountListByAccessTokenRes)
        assert listing.message.permissionScope == model_pb.SCOPE_VIEW


def test_codes_live_sixty_seconds_and_tokens_expire() -> None:
    """The authority with a controlled clock (time is its input, not mocked behaviour)."""
    now = [1_000.0]
    authority = Authority(account_ids=(1, 2), token_lifetime=100, clock=lambda: now[0])
    code = authority.create_code(authority.client_id, authority.redirect_uri, "trading")
    now[0] += 61
    with pytest.raises(AuthorityError) as expired:
        authority.exchange_code(code, authority.client_id, authority.client_secret, authority.redirect_uri)
    assert expired.value.code == "INVALID_GRANT"
    code = authority.create_code(authority.client_id, authority.redirect_uri, "trading")
    now[0] += 59
    grant = authority.exchange_code(code, authority.client_id, authority.client_secret, None)
    assert authority.pair(grant).expires_in == 100
    assert authority.check_access_token(grant.access_token) is grant
    now[0] += 100
    with pytest.raises(AuthorityError, match="expired"):
        authority.check_access_token(grant.access_token)
