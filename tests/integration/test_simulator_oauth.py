"""The OAuth endpoints over HTTP, token rotation and what it does to live sessions."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import urllib.parse
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.testing import Simulator
from ctrader_typed.testing._auth import Authority, AuthorityError
from ctrader_typed.testing._oauth_http import OAuthHttpServer
from ctrader_typed.testing.raw import RawClient

INVALIDATED = model_pb.PROTO_OA_ACCOUNTS_TOKEN_INVALIDATED_EVENT


@pytest_asyncio.fixture
async def http(ctrader_simulator: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=ctrader_simulator.oauth_url, follow_redirects=False) as client:
        yield client


CONSENT_PATHS = ("/apps/auth", "/my/settings/openapi/grantingaccess/")


async def authorize_code(
    http: httpx.AsyncClient,
    sim: Simulator,
    redirect_uri: str | None = None,
    scope: str = "trading",
    path: str = "/apps/auth",
) -> str:
    params = {
        "client_id": sim.client_id,
        "redirect_uri": redirect_uri or sim.redirect_uri,
        "scope": scope,
        "state": "s-42",
    }
    if path != "/apps/auth":
        params["product"] = "web"
    response = await http.get(path, params=params)
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


@pytest.mark.parametrize("path", CONSENT_PATHS)
async def test_authorize_redirects_with_code_and_state(
    ctrader_simulator: Simulator, http: httpx.AsyncClient, path: str
) -> None:
    sim = ctrader_simulator
    for redirect in (
        sim.redirect_uri,
        "http://127.0.0.1:54321/cb",
        "http://localhost:8080/auth/callback?x=1",
    ):
        response = await http.get(
            path,
            params={
                "client_id": sim.client_id,
                "redirect_uri": redirect,
                "scope": "accounts",
                "state": "st",
                "product": "web",
            },
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
        assert (await http.get(path, params=params)).status_code == 400
    response = await http.get(
        path,
        params={"client_id": sim.client_id, "redirect_uri": sim.redirect_uri, "scope": "everything"},
    )
    assert response.status_code == 302
    assert "error=invalid_scope" in response.headers["location"]
    assert (await http.get("/nowhere")).status_code == 404


@pytest.mark.parametrize("path", CONSENT_PATHS)
async def test_code_exchange_answers_camel_case_only_by_default(
    ctrader_simulator: Simulator, http: httpx.AsyncClient, path: str
) -> None:
    sim = ctrader_simulator
    code = await authorize_code(http, sim, path=path)
    params = token_params(sim, code)
    response = await http.get("/apps/token", params=params)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"accessToken", "tokenType", "expiresIn", "refreshToken", "errorCode", "description"}
    assert body["tokenType"] == "bearer"
    assert body["expiresIn"] == 2_628_000
    assert body["errorCode"] is None
    assert body["description"] is None
    assert body["accessToken"] != sim.access_token
    async with await RawClient.connect(sim.host, sim.port, sim.ssl_context) as raw:
        await raw.authorize(sim.client_id, sim.client_secret, body["accessToken"], sim.accounts)

    again = (await http.get("/apps/token", params=params)).json()
    assert again == {"errorCode": "INVALID_GRANT", "description": again["description"]}


async def test_strict_token_endpoint_refuses_post_without_using_the_code(
    ctrader_simulator: Simulator, http: httpx.AsyncClient
) -> None:
    sim = ctrader_simulator
    params = token_params(sim, await authorize_code(http, sim))
    for refused in (
        await http.post("/apps/token", data=params),
        await http.post("/apps/token", json=params),
        await http.post("/apps/token", params=params),  # query string, but still a POST
        await http.put("/apps/token", params=params),
    ):
        assert refused.status_code == 405
        assert refused.headers["allow"] == "GET"
        assert refused.json() == {"errorCode": "METHOD_NOT_ALLOWED", "description": "use GET"}
    # The refusals did not spend the code: the documented GET still exchanges it.
    response = await http.get("/apps/token", params=params)
    assert response.status_code == 200
    assert response.json()["errorCode"] is None


@pytest.mark.ctrader_simulator(oauth_lenient=True)
@pytest.mark.parametrize("method", ["GET", "POST", "JSON"])
async def test_lenient_token_endpoint_takes_post_and_adds_snake_case(
    ctrader_simulator: Simulator, http: httpx.AsyncClient, method: str
) -> None:
    sim = ctrader_simulator
    assert sim.settings.oauth_lenient
    code = await authorize_code(http, sim)
    params = token_params(sim, code)
    if method == "GET":
        response = await http.get("/apps/token", params=params)
    elif method == "POST":
        response = await http.post("/apps/token", data=params)
    else:
        response = await http.post("/apps/token", json=params)
    assert response.status_code == 200
    body = response.json()
    assert body["tokenType"] == body["token_type"] == "bearer"
    assert body["expiresIn"] == body["expires_in"] == 2_628_000
    assert body["accessToken"] == body["access_token"]
    assert body["refreshToken"] == body["refresh_token"]
    assert body["errorCode"] is None
    async with await RawClient.connect(sim.host, sim.port, sim.ssl_context) as raw:
        await raw.authorize(sim.client_id, sim.client_secret, body["accessToken"], sim.accounts)
    refused = await http.put("/apps/token", params=params)
    assert refused.status_code == 405
    assert refused.headers["allow"] == "GET, POST"


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
        response = await http.get(
            "/apps/token",
            params={
                "grant_type": "refresh_token",
                "refresh_token": old_refresh,
                "client_id": sim.client_id,
                "client_secret": sim.client_secret,
            },
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


# -- HTTP as h11 reads it, over real sockets ---------------------------------------------------


async def send_raw(port: int, *pieces: bytes) -> bytes:
    """Write ``pieces`` one by one (each drained before the next), then read the answer to its end."""
    async with asyncio.timeout(30):  # hang guard
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for piece in pieces:
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0)
            return await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def parse_reply(reply: bytes) -> tuple[int, bytes]:
    """Status and body of one answer (the body must be the whole rest of the stream)."""
    head, _, body = reply.partition(b"\r\n\r\n")
    status_line, *fields = head.split(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 "), reply[:80]
    length = next(
        int(v) for n, _, v in (f.partition(b": ") for f in fields) if n.lower() == b"content-length"
    )
    assert len(body) == length
    return int(status_line.split(b" ")[1]), body


def chunked(data: bytes, size: int) -> bytes:
    pieces = (data[i : i + size] for i in range(0, len(data), size))
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


@pytest.mark.ctrader_simulator(oauth_lenient=True)  # a POST body needs the lenient mode
async def test_a_chunked_form_post_split_across_many_writes_exchanges_the_code(
    ctrader_simulator: Simulator, http: httpx.AsyncClient
) -> None:
    sim = ctrader_simulator
    form = urllib.parse.urlencode(token_params(sim, await authorize_code(http, sim))).encode()
    raw = (
        b"POST /apps/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
    ) + chunked(form, 7)
    status, body = parse_reply(
        await send_raw(sim.http_port, *(raw[i : i + 5] for i in range(0, len(raw), 5)))
    )
    assert status == 200
    answer = json.loads(body)
    assert answer["errorCode"] is None
    assert sim.authority.check_access_token(answer["accessToken"]).scope == "trading"


@pytest.mark.ctrader_simulator(oauth_lenient=True)  # a POST body needs the lenient mode
async def test_expect_100_continue_is_answered_before_the_body_is_sent(
    ctrader_simulator: Simulator, http: httpx.AsyncClient
) -> None:
    sim = ctrader_simulator
    form = urllib.parse.urlencode(token_params(sim, await authorize_code(http, sim))).encode()
    async with asyncio.timeout(30):  # hang guard
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.http_port)
        writer.write(
            b"POST /apps/token HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n" % len(form)
        )
        await writer.drain()
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 100 ")
        writer.write(form)
        await writer.drain()
        status, body = parse_reply(await reader.read())
        writer.close()
        await writer.wait_closed()
    assert status == 200
    assert json.loads(body)["errorCode"] is None


async def test_an_absolute_uri_in_the_request_line_reaches_the_consent_page(
    ctrader_simulator: Simulator,
) -> None:
    sim = ctrader_simulator
    query = urllib.parse.urlencode(
        {"client_id": sim.client_id, "redirect_uri": sim.redirect_uri, "state": "abs"}
    )
    reply = await send_raw(
        sim.http_port, f"GET {sim.oauth_url}/apps/auth?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    )
    assert parse_reply(reply)[0] == 302
    assert b"state=abs" in reply


def _over_the_head_limit() -> list[bytes]:
    padding = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 1000) for i in range(20))  # about 20 KiB
    return [b"GET /apps/token?grant_type=refresh_token HTTP/1.1\r\nHost: 127.0.0.1\r\n" + padding + b"\r\n"]


def _declared_body_over_the_limit() -> list[bytes]:
    return [b"POST /apps/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 70000\r\n\r\n"]


def _chunked_body_over_the_limit() -> list[bytes]:
    head = b"POST /apps/token HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    return [head, chunked(b"grant_type=refresh_token&pad=" + b"x" * 70_000, 4096)]


@pytest.mark.parametrize(
    ("pieces", "status"),
    [
        (_over_the_head_limit(), 431),
        (_declared_body_over_the_limit(), 413),
        (_chunked_body_over_the_limit(), 413),
    ],
    ids=["head", "content-length", "chunked"],
)
async def test_requests_over_the_size_limits_are_refused_and_the_server_keeps_serving(
    ctrader_simulator: Simulator, http: httpx.AsyncClient, pieces: list[bytes], status: int
) -> None:
    sim = ctrader_simulator
    assert parse_reply(await send_raw(sim.http_port, *pieces))[0] == status
    assert await authorize_code(http, sim)


@pytest.mark.parametrize(
    "raw",
    [
        "GET /apps/token?client_secret={secret} HTTP/1.1\r\n\r\n",  # no Host
        "GET /apps/token?client_secret={secret} HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        "POST /apps/token?client_secret={secret} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "\x16\x03\x01 {secret}\r\n\r\n",
    ],
    ids=["no-host", "bad-length", "bad-chunk", "tls-hello"],
)
async def test_malformed_requests_are_400_and_never_echo_or_log_what_they_carry(
    ctrader_simulator: Simulator, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, raw: str
) -> None:
    sim = ctrader_simulator
    caplog.set_level(logging.DEBUG)
    reply = await send_raw(sim.http_port, raw.format(secret=sim.client_secret).encode("latin-1"))
    assert parse_reply(reply)[0] == 400
    assert sim.client_secret.encode() not in reply
    assert sim.client_secret not in caplog.text
    assert await authorize_code(http, sim)


async def test_a_request_pipelined_behind_the_first_is_never_served(
    ctrader_simulator: Simulator, http: httpx.AsyncClient
) -> None:
    sim = ctrader_simulator
    first, second = await authorize_code(http, sim), await authorize_code(http, sim)
    requests = b"".join(
        b"GET /apps/token?%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        % urllib.parse.urlencode(token_params(sim, code)).encode()
        for code in (first, second)
    )
    reply = await send_raw(sim.http_port, requests)
    assert reply.count(b"HTTP/1.1 ") == 1
    assert json.loads(parse_reply(reply)[1])["errorCode"] is None
    # The second code was never exchanged: it still is good.
    later = await http.get("/apps/token", params=token_params(sim, second))
    assert later.json()["errorCode"] is None


async def test_a_client_too_slow_to_send_its_request_is_closed_unanswered() -> None:
    server = OAuthHttpServer(Authority(account_ids=(1,)), "127.0.0.1", request_timeout=0.3)
    await server.start()
    try:
        async with asyncio.timeout(30):  # hang guard
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET /apps/token?grant_type=refresh_token HTTP/1.1\r\nHost: 12")
            await writer.drain()
            assert await reader.read() == b""  # closed by the server, nothing written
            writer.close()
            await writer.wait_closed()
        assert server.requests == []
    finally:
        await server.stop()
