"""AsyncAuth against httpx.MockTransport: request shape, reply parsing, every failure path."""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import certifi
import httpx
import pytest

from ctrader_typed.errors import OAuthError
from ctrader_typed.oauth import (
    DEFAULT_BASE_URL,
    DEFAULT_CONSENT_BASE_URL,
    AsyncAuth,
    code_from_redirect,
    parse_token_reply,
)
from ctrader_typed.tokens import TokenSet

CLIENT_ID = "1234_clientid"
SECRET = "s3cr3t-client-secret-value"
REDIRECT = "http://localhost:8080/auth/callback"
CODE = "the-one-minute-code-0001"
REFRESH = "old-refresh-token-abcdef"

Handler = Callable[[httpx.Request], httpx.Response]


def make_auth(handler: Handler, *, timeout: float = 30.0) -> AsyncAuth:
    return AsyncAuth(CLIENT_ID, SECRET, REDIRECT, transport=httpx.MockTransport(handler), timeout=timeout)


def json_reply(payload: object, status: int = 200) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=payload)

    return handler


GOOD = {
    "accessToken": "new-access-token-xyz",
    "tokenType": "bearer",
    "expiresIn": 2628000,
    "refreshToken": "new-refresh-token-xyz",
    "errorCode": None,
    "description": None,
}


def test_auth_uri_is_the_current_consent_page_by_default() -> None:
    auth = AsyncAuth(CLIENT_ID, SECRET, REDIRECT)
    assert auth.consent_page == "current"
    url = urllib.parse.urlsplit(auth.get_auth_uri(scope="accounts", state="st8"))
    assert (
        f"{url.scheme}://{url.netloc}{url.path}"
        == f"{DEFAULT_CONSENT_BASE_URL}/my/settings/openapi/grantingaccess/"
        == "https://id.ctrader.com/my/settings/openapi/grantingaccess/"
    )
    assert urllib.parse.parse_qs(url.query) == {
        "client_id": [CLIENT_ID],
        "redirect_uri": [REDIRECT],
        "scope": ["accounts"],
        "product": ["web"],
        "state": ["st8"],
    }
    assert SECRET not in auth.get_auth_uri()
    assert auth.token_endpoint == f"{DEFAULT_BASE_URL}/apps/token"  # the token host does not move


def test_classic_auth_uri_has_the_official_sdk_parameters() -> None:
    auth = AsyncAuth(CLIENT_ID, SECRET, REDIRECT, consent_page="classic")
    url = urllib.parse.urlsplit(auth.get_auth_uri(scope="accounts", state="st8"))
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{DEFAULT_BASE_URL}/apps/auth"
    assert urllib.parse.parse_qs(url.query) == {
        "client_id": [CLIENT_ID],
        "redirect_uri": [REDIRECT],
        "scope": ["accounts"],
        "state": ["st8"],
    }


def test_consent_host_can_be_given_and_unknown_pages_are_refused() -> None:
    auth = AsyncAuth(CLIENT_ID, SECRET, REDIRECT, consent_base_url="https://id.example/")
    assert auth.auth_endpoint == "https://id.example/my/settings/openapi/grantingaccess/"
    classic = AsyncAuth(
        CLIENT_ID, SECRET, REDIRECT, consent_page="classic", consent_base_url="https://x.example"
    )
    assert classic.auth_endpoint == "https://x.example/apps/auth"
    with pytest.raises(ValueError, match="consent_page"):
        AsyncAuth(CLIENT_ID, SECRET, REDIRECT, consent_page="legacy")  # type: ignore[arg-type]  # the point


def test_auth_uri_follows_base_url_and_rejects_unknown_scopes() -> None:
    auth = AsyncAuth(CLIENT_ID, SECRET, REDIRECT, base_url="https://127.0.0.1:9999/")
    assert auth.get_auth_uri().startswith("https://127.0.0.1:9999/my/settings/openapi/grantingaccess/?")
    classic = AsyncAuth(
        CLIENT_ID, SECRET, REDIRECT, base_url="https://127.0.0.1:9999/", consent_page="classic"
    )
    assert classic.get_auth_uri().startswith("https://127.0.0.1:9999/apps/auth?")
    assert "state=" not in auth.get_auth_uri()
    with pytest.raises(ValueError, match="scope"):
        auth.get_auth_uri(scope="everything")  # type: ignore[arg-type]  # the point of the test


async def test_code_exchange_is_a_get_with_query_parameters() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=GOOD)

    before = datetime.now(UTC)
    async with make_auth(handler) as auth:
        tokens = await auth.get_token(f"  {CODE}\n", scope="trading")
    (request,) = seen
    assert request.method == "GET"
    assert request.url.path == "/apps/token"
    assert request.content == b""
    assert dict(request.url.params) == {
        "grant_type": "authorization_code",
        "code": CODE,
        "redirect_uri": REDIRECT,
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
    }
    assert tokens.access_token == "new-access-token-xyz"
    assert tokens.refresh_token == "new-refresh-token-xyz"
    assert tokens.token_type == "bearer"
    assert tokens.scope == "trading"
    assert tokens.expires_at is not None
    lifetime = tokens.expires_at - before
    assert timedelta(seconds=2628000) <= lifetime < timedelta(seconds=2628000 + 60)
    # The seed's dict-style access keeps working.
    assert tokens["access_token"] == "new-access-token-xyz"
    assert tokens["refresh_token"] == "new-refresh-token-xyz"


async def test_refresh_sends_no_redirect_uri() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=GOOD)

    async with make_auth(handler) as auth:
        tokens = await auth.refresh_token(REFRESH)
    assert dict(seen[0].url.params) == {
        "grant_type": "refresh_token",
        "refresh_token": REFRESH,
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
    }
    assert seen[0].method == "GET"
    assert tokens.refresh_token == "new-refresh-token-xyz"
    assert tokens.scope is None


async def test_snake_case_reply_and_string_numbers_are_accepted() -> None:
    reply = {
        "access_token": "a1",
        "refresh_token": "r1",
        "token_type": "Bearer",
        "expires_in": "60",
        "scope": "accounts",
    }
    async with make_auth(json_reply(reply)) as auth:
        tokens = await auth.get_token(CODE, scope="trading")
    assert (tokens.access_token, tokens.refresh_token, tokens.token_type) == ("a1", "r1", "Bearer")
    assert tokens.scope == "accounts"  # the server's word wins over what we asked for
    assert tokens.expires_within(61)
    assert not tokens.expires_within(30)


async def test_camel_case_wins_over_snake_case_and_missing_expiry_is_unknown() -> None:
    reply = {"accessToken": "camel", "access_token": "snake", "refreshToken": "r", "tokenType": None}
    async with make_auth(json_reply(reply)) as auth:
        tokens = await auth.get_token(CODE)
    assert tokens.access_token == "camel"
    assert tokens.token_type == "bearer"
    assert tokens.expires_at is None


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (200, {"errorCode": "ACCESS_DENIED", "description": "Invalid authorization code"}, "ACCESS_DENIED"),
        (200, {"accessToken": None, "errorCode": "INVALID_CLIENT", "description": None}, "INVALID_CLIENT"),
        (400, {"errorCode": "INVALID_REQUEST", "description": "Invalid redirect URI"}, "INVALID_REQUEST"),
        (401, {"error": "invalid_client", "error_description": "bad"}, "invalid_client"),
        (503, "<html>down</html>", "HTTP_503"),
        (200, "<html>not json</html>", "INVALID_JSON"),
        (200, ["a", "list"], "INVALID_JSON"),
        (200, {"refreshToken": "r", "expiresIn": 5}, "MISSING_TOKEN"),
        (200, {"accessToken": "", "refreshToken": "r"}, "MISSING_TOKEN"),
        (200, {"accessToken": "a"}, "MISSING_TOKEN"),
        (200, {"accessToken": "a", "refreshToken": "r", "expiresIn": "soon"}, "INVALID_REPLY"),
        (200, {"accessToken": "a", "refreshToken": "r", "expiresIn": -1}, "INVALID_REPLY"),
        (200, {"accessToken": "a", "refreshToken": "r", "expiresIn": True}, "INVALID_REPLY"),
    ],
)
async def test_bad_replies_raise_oauth_error(status: int, body: object, code: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    async with make_auth(handler) as auth:
        with pytest.raises(OAuthError) as info:
            await auth.get_token(CODE)
    assert info.value.error_code == code
    assert info.value.status_code == status
    assert SECRET not in str(info.value)
    assert CODE not in str(info.value)


async def test_server_text_echoing_secrets_is_scrubbed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        echo = (
            f"client {params['client_id']} secret {params['client_secret']} token {params['refresh_token']}"
        )
        return httpx.Response(200, json={"errorCode": "INVALID_GRANT", "description": echo})

    async with make_auth(handler) as auth:
        with pytest.raises(OAuthError) as info:
            await auth.refresh_token(REFRESH)
    text = str(info.value)
    assert SECRET not in text
    assert REFRESH not in text
    assert CLIENT_ID in text  # not a secret; kept so the message stays useful
    assert info.value.description is not None
    assert "[redacted]" in info.value.description


async def test_network_failures_become_oauth_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def stall(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with make_auth(refuse) as auth:
        with pytest.raises(OAuthError) as info:
            await auth.get_token(CODE)
    assert info.value.error_code == "CONNECTION_ERROR"
    assert info.value.__cause__ is None
    async with make_auth(stall, timeout=1.5) as auth:
        with pytest.raises(OAuthError) as info:
            await auth.refresh_token(REFRESH)
    assert info.value.error_code == "TIMEOUT"
    assert "1.5s" in str(info.value)


async def test_empty_inputs_fail_before_any_request() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    async with make_auth(handler) as auth:
        with pytest.raises(OAuthError, match="MISSING_CODE"):
            await auth.get_token("   ")
        with pytest.raises(OAuthError, match="MISSING_TOKEN"):
            await auth.refresh_token("")
    with pytest.raises(ValueError, match="client_secret"):
        AsyncAuth(CLIENT_ID, "", REDIRECT)


async def test_closed_auth_refuses_work() -> None:
    auth = make_auth(json_reply(GOOD))
    await auth.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await auth.get_token(CODE)


def test_repr_never_shows_the_secret() -> None:
    auth = AsyncAuth(CLIENT_ID, SECRET, REDIRECT)
    assert SECRET not in repr(auth)
    assert CLIENT_ID in repr(auth)


async def test_httpx_request_log_line_has_secrets_redacted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with make_auth(json_reply(GOOD)) as auth:
        await auth.get_token(CODE)
        await auth.refresh_token(REFRESH)
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert len(lines) == 2, "httpx should log each request (the filter only edits it)"
    assert all("/apps/token" in line for line in lines)
    assert all("client_id=1234_clientid" in line for line in lines)
    text = caplog.text + "".join(lines)
    for secret in (SECRET, CODE, REFRESH, "new-access-token-xyz", "new-refresh-token-xyz"):
        assert secret not in text


def test_parse_token_reply_directly() -> None:
    body = json.dumps(GOOD).encode()
    tokens = parse_token_reply(200, body, scope="accounts")
    assert isinstance(tokens, TokenSet)
    assert tokens.scope == "accounts"
    with pytest.raises(OAuthError, match="INVALID_JSON"):
        parse_token_reply(200, b"\xff\xfe")


@pytest.mark.parametrize(
    ("pasted", "expected"),
    [
        ("abc123", "abc123"),
        ("  abc123==  \n", "abc123=="),
        ("http://localhost:8080/auth/callback?code=abc123&state=s1", "abc123"),
        ("http://localhost:8080/auth/callback?code=abc%2F123&state=s1", "abc/123"),
        ("/auth/callback?state=s1&code=abc123", "abc123"),
        ("?code=abc123&state=s1", "abc123"),
        ("code=abc123&state=s1", "abc123"),
        ("http://localhost:8080/auth/callback#code=abc123&state=s1", "abc123"),
    ],
)
def test_code_from_redirect_accepts_code_or_url(pasted: str, expected: str) -> None:
    assert code_from_redirect(pasted, state="s1") == expected


@pytest.mark.parametrize(
    ("pasted", "code"),
    [
        ("", "MISSING_CODE"),
        ("http://localhost:8080/auth/callback?state=s1", "MISSING_CODE"),
        ("http://localhost:8080/auth/callback?code=abc&state=other", "STATE_MISMATCH"),
        ("http://localhost:8080/auth/callback?code=abc", "STATE_MISSING"),
        (
            "http://localhost:8080/auth/callback?error=access_denied&error_description=User+said+no",
            "access_denied",
        ),
    ],
)
def test_code_from_redirect_failures(pasted: str, code: str) -> None:
    with pytest.raises(OAuthError) as info:
        code_from_redirect(pasted, state="s1")
    assert info.value.error_code == code


async def test_ca_bundle_path_is_accepted_without_deprecation_warnings() -> None:
    # Nothing listens on port 1: the request fails to connect, after httpx built its TLS
    # settings from the path (filterwarnings=error would turn a deprecation into a failure).
    async with AsyncAuth(
        CLIENT_ID, SECRET, REDIRECT, base_url="https://127.0.0.1:1", verify=certifi.where()
    ) as auth:
        with pytest.raises(OAuthError) as info:
            await auth.get_token(CODE)
    assert info.value.error_code == "CONNECTION_ERROR"
    assert SECRET not in str(info.value)


async def test_a_reply_that_states_the_scope_is_recorded_without_asking() -> None:
    async with make_auth(json_reply({**GOOD, "scope": "accounts"})) as auth:
        tokens = await auth.get_token(CODE)
    assert tokens.scope == "accounts"


async def test_the_code_gets_the_scope_of_the_consent_this_object_built() -> None:
    async with make_auth(json_reply(GOOD)) as auth:
        assert (await auth.get_token(CODE)).scope is None  # no consent URL, no reply scope: unknown
        auth.get_auth_uri(scope="accounts")
        assert (await auth.get_token(CODE)).scope == "accounts"
        assert (await auth.get_token(CODE, scope="trading")).scope == "trading"  # asked for explicitly
    async with make_auth(json_reply({**GOOD, "scope": "trading"})) as auth:
        auth.get_auth_uri(scope="accounts")
        assert (await auth.get_token(CODE)).scope == "trading"  # the server's word wins
    async with make_auth(json_reply(GOOD)) as auth:
        auth.get_auth_uri(scope="accounts")
        auth.get_auth_uri(scope="trading")
        assert (await auth.get_token(CODE)).scope is None  # which consent the code answers is unknown


async def test_refresh_keeps_the_scope_it_is_given_unless_the_reply_states_one() -> None:
    async with make_auth(json_reply(GOOD)) as auth:
        auth.get_auth_uri(scope="accounts")  # a refresh does not answer a consent
        assert (await auth.refresh_token(REFRESH)).scope is None
        assert (await auth.refresh_token(REFRESH, scope="trading")).scope == "trading"
    async with make_auth(json_reply({**GOOD, "scope": "accounts"})) as auth:
        assert (await auth.refresh_token(REFRESH, scope="trading")).scope == "accounts"
