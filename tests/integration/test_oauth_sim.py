"""AsyncAuth against the simulator's OAuth HTTP endpoints, and the tokens it gets used on the socket."""

from __future__ import annotations

import asyncio
import logging
import urllib.parse

import httpx
import pytest

from ctrader_typed._generated.enums import ClientPermissionScope
from ctrader_typed.client import AsyncClient
from ctrader_typed.errors import AuthenticationError, OAuthError
from ctrader_typed.oauth import AsyncAuth, ConsentPage, Scope, code_from_redirect
from ctrader_typed.testing.simulator import Simulator
from ctrader_typed.tokens import TokenSet


def make_auth(
    sim: Simulator,
    *,
    secret: str | None = None,
    redirect_uri: str | None = None,
    consent_page: ConsentPage = "current",
) -> AsyncAuth:
    return AsyncAuth(
        sim.client_id,
        secret if secret is not None else sim.client_secret,
        redirect_uri or sim.redirect_uri,
        base_url=sim.oauth_url,
        consent_page=consent_page,
    )


async def consent(auth: AsyncAuth, scope: Scope = "trading", state: str = "st-1") -> str:
    """Visit the consent page like a browser that does not follow the redirect; return the Location."""
    async with httpx.AsyncClient(trust_env=False) as http:
        reply = await http.get(auth.get_auth_uri(scope, state=state))
    assert reply.status_code == 302
    return reply.headers["location"]


async def account_scope(sim: Simulator, tokens: TokenSet) -> ClientPermissionScope | None:
    async with AsyncClient(sim.host, sim.port, ssl_context=sim.ssl_context, reconnect=False) as client:
        await client.send_application_auth_req(sim.client_id, sim.client_secret)
        listing = await client.send_get_account_list_by_access_token_req(tokens.access_token)
        assert {a.ctid_trader_account_id for a in listing.ctid_trader_account} == set(sim.accounts)
        return listing.permission_scope


CONSENT_PATHS: dict[ConsentPage, str] = {
    "current": "/my/settings/openapi/grantingaccess/",
    "classic": "/apps/auth",
}


@pytest.mark.parametrize("page", ["current", "classic"])
async def test_code_exchange_gives_tokens_the_socket_accepts(
    ctrader_simulator: Simulator, page: ConsentPage
) -> None:
    sim = ctrader_simulator
    assert not sim.settings.oauth_lenient  # the documented server: GET only, camelCase only
    async with make_auth(sim, consent_page=page) as auth:
        url = urllib.parse.urlsplit(auth.get_auth_uri("accounts"))
        assert f"{url.scheme}://{url.netloc}{url.path}" == sim.oauth_url + CONSENT_PATHS[page]
        assert ("product=web" in url.query) == (page == "current")
        location = await consent(auth, "accounts")
        assert location.startswith(sim.redirect_uri + "?")
        tokens = await auth.get_token(code_from_redirect(location, state="st-1"), scope="accounts")
    assert tokens.token_type.lower() == "bearer"
    assert tokens.scope == "accounts"
    assert tokens.expires_at is not None
    assert tokens.expires_within(sim.authority.token_lifetime + 60)
    assert not tokens.expires_within(sim.authority.token_lifetime - 60)
    assert tokens["access_token"] == tokens.access_token
    assert await account_scope(sim, tokens) == ClientPermissionScope.SCOPE_VIEW


async def test_codes_are_single_use(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with make_auth(sim) as auth:
        code = code_from_redirect(await consent(auth))
        await auth.get_token(code)
        with pytest.raises(OAuthError) as info:
            await auth.get_token(code)
    assert info.value.error_code == "INVALID_GRANT"
    assert info.value.status_code == 200
    assert code not in str(info.value)


async def test_wrong_client_secret_is_refused(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with make_auth(sim) as good:
        code = code_from_redirect(await consent(good))
    async with make_auth(sim, secret="not-the-secret") as bad:
        with pytest.raises(OAuthError) as info:
            await bad.get_token(code)
    assert info.value.error_code == "ACCESS_DENIED"
    assert "not-the-secret" not in str(info.value)


async def test_redirect_uri_must_match_the_consent_request(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with make_auth(sim) as auth:
        code = code_from_redirect(await consent(auth))
    async with make_auth(sim, redirect_uri="http://127.0.0.1:9/elsewhere") as other:
        with pytest.raises(OAuthError) as info:
            await other.get_token(code)
    assert info.value.error_code == "INVALID_GRANT"
    assert "redirect" in str(info.value).lower()


async def test_consent_page_refuses_an_unregistered_redirect(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with (
        make_auth(sim, redirect_uri="https://example.com/callback") as auth,
        httpx.AsyncClient(trust_env=False) as http,
    ):
        reply = await http.get(auth.get_auth_uri())
    assert reply.status_code == 400
    assert "redirect_uri" in reply.text


async def test_refresh_rotates_and_old_refresh_token_dies(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with make_auth(sim) as auth:
        first = await auth.get_token(code_from_redirect(await consent(auth)))
        second = await auth.refresh_token(first.refresh_token, scope=first.scope)
        assert second.access_token != first.access_token
        assert second.refresh_token != first.refresh_token
        with pytest.raises(OAuthError) as info:
            await auth.refresh_token(first.refresh_token)
        assert info.value.error_code == "INVALID_GRANT"
        assert first.refresh_token not in str(info.value)
    assert await account_scope(sim, second) == ClientPermissionScope.SCOPE_TRADE
    async with AsyncClient(sim.host, sim.port, ssl_context=sim.ssl_context, reconnect=False) as client:
        await client.send_application_auth_req(sim.client_id, sim.client_secret)
        with pytest.raises(AuthenticationError) as refused:
            await client.send_account_auth_req(sim.accounts[0], first.access_token)
    assert refused.value.error_code == "CH_ACCESS_TOKEN_INVALID"


@pytest.mark.parametrize("consent_page", ["current", "classic"])
async def test_browser_flow_against_the_simulator(
    ctrader_simulator: Simulator, consent_page: ConsentPage
) -> None:
    sim = ctrader_simulator
    visits: list[httpx.Response] = []

    async def browser(url: str) -> None:
        async with httpx.AsyncClient(trust_env=False, follow_redirects=True) as http:
            visits.append(await http.get(url, timeout=10))

    tasks: list[asyncio.Task[None]] = []
    async with make_auth(
        sim, redirect_uri="http://localhost:0/auth/callback", consent_page=consent_page
    ) as auth:
        tokens = await auth.authorize_in_browser(
            "trading",
            open_browser=False,
            timeout=10,
            on_url=lambda url: tasks.append(asyncio.create_task(browser(url))),
        )
    await asyncio.gather(*tasks)
    assert await account_scope(sim, tokens) == ClientPermissionScope.SCOPE_TRADE
    (page,) = visits
    assert page.status_code == 200
    assert "Signed in" in page.text
    final = urllib.parse.urlsplit(str(page.url))
    assert final.hostname == "localhost"
    assert final.path == "/auth/callback"
    assert tokens.access_token not in page.text


async def test_the_token_endpoint_answers_garbage_for_unknown_paths(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with AsyncAuth(sim.client_id, sim.client_secret, base_url=sim.oauth_url + "/nowhere") as auth:
        with pytest.raises(OAuthError) as info:
            await auth.refresh_token("whatever")
    assert info.value.error_code == "HTTP_404"


async def test_no_secret_reaches_the_logs_over_real_http(
    ctrader_simulator: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    sim = ctrader_simulator
    async with make_auth(sim) as auth:
        code = code_from_redirect(await consent(auth))  # the test's "browser" is not under test
        caplog.set_level(logging.DEBUG)
        first = await auth.get_token(code)
        second = await auth.refresh_token(first.refresh_token)
    assert any(r.name == "httpx" and "/apps/token" in r.getMessage() for r in caplog.records)
    assert any(r.name.startswith("httpcore") for r in caplog.records)  # the transport did log
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    for secret in (sim.client_secret, code, first.access_token, first.refresh_token, second.access_token):
        assert secret not in text


async def test_the_scope_of_the_consent_is_recorded_and_agrees_with_the_socket(
    ctrader_simulator: Simulator,
) -> None:
    """The token endpoint's reply states no scope (like cTrader's): ``get_token`` records the one the
    consent asked for, which is what the server reports for the token over the socket."""
    sim = ctrader_simulator
    cases: list[tuple[Scope, ClientPermissionScope]] = [
        ("accounts", ClientPermissionScope.SCOPE_VIEW),
        ("trading", ClientPermissionScope.SCOPE_TRADE),
    ]
    for scope, permission in cases:
        async with make_auth(sim) as auth:
            location = await consent(auth, scope)
            async with httpx.AsyncClient(trust_env=False) as http:
                code = code_from_redirect(location, state="st-1")
                raw = await http.get(
                    auth.token_endpoint,
                    params={
                        "grant_type": "authorization_code",
                        "code": code,
                        "redirect_uri": sim.redirect_uri,
                        "client_id": sim.client_id,
                        "client_secret": sim.client_secret,
                    },
                )
            assert "scope" not in raw.json()  # the reply does not say
            location = await consent(auth, scope, state="st-2")
            tokens = await auth.get_token(code_from_redirect(location, state="st-2"))
            assert tokens.scope == scope
            assert await account_scope(sim, tokens) == permission
            refreshed = await auth.refresh_token(tokens.refresh_token, scope=tokens.scope)
            assert refreshed.scope == scope
            assert await account_scope(sim, refreshed) == permission
