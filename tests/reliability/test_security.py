"""Security checks that complement the ones next to the code they test (the README's table lists both).

* TLS: the OAuth HTTP client verifies certificates and host names by default, like the socket
  client (``test_client_basic``): a self-signed token endpoint is refused without its CA and used
  with it, and a certificate for another name is refused even with the right CA.
* Secrets: across a whole flow - OAuth consent, code exchange and refresh over HTTP, a token file,
  a client that authenticates, authorises accounts, refreshes over the socket, survives a drop and
  an expired token, and meets errors - no client secret, access token, refresh token or
  authorization code appears in any log record (DEBUG, every logger, tracebacks included), in the
  text of any exception raised along the way, or in the repr/str of any ctrader_typed object alive
  at the end.
* OAuth: a forged callback (wrong state) arriving first is refused by the browser flow, which then
  completes with the real one.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import logging
import ssl
import stat
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from ctrader_typed import (
    AccountReady,
    AsyncClient,
    Reconnected,
    SpotEvent,
    TokensRefreshed,
)
from ctrader_typed.errors import AuthenticationError, CTraderError, OAuthError
from ctrader_typed.events import Event
from ctrader_typed.oauth import AsyncAuth, code_from_redirect
from ctrader_typed.testing import Simulator
from ctrader_typed.testing._certs import Certificates, make_certificates
from ctrader_typed.tokens import FileTokenStore, TokenSet
from tests.integration.support import EURUSD, FAST, WAIT, next_of
from tests.integration.test_oauth_sim import consent, make_auth

# -- TLS ------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def tls_in_front_of(target_port: int, certificates: Certificates, host: str) -> AsyncIterator[int]:
    """An HTTPS endpoint on ``host`` that forwards every connection to the plain HTTP ``target_port``
    on 127.0.0.1 (TLS termination in front of the simulator's OAuth server); yields its port."""
    pipes: set[asyncio.Task[None]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def serve(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target_port)
        both = [
            asyncio.create_task(pipe(client_reader, upstream_writer)),
            asyncio.create_task(pipe(upstream_reader, client_writer)),
        ]
        pipes.update(both)
        await asyncio.gather(*both, return_exceptions=True)
        pipes.difference_update(both)

    server = await asyncio.start_server(serve, host, 0, ssl=certificates.server_context())
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in pipes:
            task.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
        await server.wait_closed()


async def test_oauth_over_https_verifies_certificate_and_host_name(
    ctrader_simulator: Simulator, tmp_path: Path
) -> None:
    sim = ctrader_simulator
    certificates = make_certificates(tmp_path)  # a throwaway CA: in no trust store
    async with make_auth(sim) as plain:
        code = code_from_redirect(await consent(plain), state="st-1")

    async with tls_in_front_of(sim.http_port, certificates, "127.0.0.1") as port:
        base_url = f"https://127.0.0.1:{port}"
        # Default: the system trust store. The self-signed endpoint is refused before any secret is sent.
        async with AsyncAuth(sim.client_id, sim.client_secret, sim.redirect_uri, base_url=base_url) as auth:
            with pytest.raises(OAuthError) as refused:
                await auth.get_token(code)
        assert refused.value.error_code == "CONNECTION_ERROR"
        assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)
        assert code not in str(refused.value)
        # With its CA the same endpoint works: the code had not been spent.
        trusting = certificates.client_context()
        async with AsyncAuth(
            sim.client_id, sim.client_secret, sim.redirect_uri, base_url=base_url, verify=trusting
        ) as auth:
            tokens = await auth.get_token(code)
        assert tokens.access_token

    # The right CA, but the certificate names 127.0.0.1 and localhost, not 127.0.0.2.
    async with tls_in_front_of(sim.http_port, certificates, "127.0.0.2") as port:
        async with AsyncAuth(
            sim.client_id,
            sim.client_secret,
            sim.redirect_uri,
            base_url=f"https://127.0.0.2:{port}",
            verify=certificates.client_context(),
        ) as auth:
            with pytest.raises(OAuthError) as mismatch:
                await auth.refresh_token(tokens.refresh_token)
        assert "CERTIFICATE_VERIFY_FAILED" in str(mismatch.value)
        assert "127.0.0.2" in str(mismatch.value)
        assert tokens.refresh_token not in str(mismatch.value)


# -- secrets --------------------------------------------------------------------------------------


@contextlib.contextmanager
def everything_logged() -> Iterator[io.StringIO]:
    """Every record of every logger at DEBUG, formatted with arguments and tracebacks."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def exception_texts(error: BaseException) -> list[str]:
    """str and repr of an exception and of everything chained to it."""
    texts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return texts


def library_object_texts() -> list[str]:
    """repr and str of every live object whose class comes from ctrader_typed (protobuf classes of
    the wire schema excepted: they are the raw message, not an object of the library; and only the
    repr of a str subclass)."""
    texts: list[str] = []
    for obj in gc.get_objects():
        module = type(obj).__module__ or ""
        if not module.startswith("ctrader_typed") or module.endswith("_pb2") or isinstance(obj, type):
            continue
        with contextlib.suppress(Exception):  # an object half torn down may not repr
            texts.append(repr(obj))
            if not isinstance(obj, str):  # a str subclass (the simulator's Token) is its value
                texts.append(str(obj))
    return texts


class Secrets:
    """Every secret the flow handles, collected as they appear."""

    def __init__(self, *values: str) -> None:
        self.values = {v for v in values if v}

    def add_tokens(self, tokens: TokenSet | None) -> None:
        if tokens is not None:
            self.values |= {tokens.access_token, tokens.refresh_token}

    def found_in(self, texts: dict[str, list[str]]) -> list[str]:
        """Where secrets appear in ``texts`` (by source): the source and the text around the secret,
        the secret itself shortened."""
        found: list[str] = []
        for source, items in texts.items():
            for text in items:
                for secret in self.values:
                    at = text.find(secret)
                    if at >= 0:
                        context = text[max(0, at - 80) : at].replace("\n", " ")
                        found.append(f"{source}: ...{context}[{secret[:4]}...({len(secret)} chars)]")
        return sorted(set(found))


async def test_secrets_never_leak_across_a_full_flow(ctrader_simulator: Simulator, tmp_path: Path) -> None:
    sim = ctrader_simulator
    secrets = Secrets(sim.client_secret, sim.access_token, sim.refresh_token, "bogus-access", "bogus-refresh")
    errors: list[BaseException] = []
    seen_events: list[Event] = []

    @contextlib.asynccontextmanager
    async def expect_error(kind: type[CTraderError]) -> AsyncIterator[None]:
        try:
            yield
        except kind as exc:
            errors.append(exc)
        else:
            raise AssertionError(f"no {kind.__name__} was raised")

    # The consent pages, visited as a browser would (outside the library, so before the capture).
    async with make_auth(sim) as auth:
        code = code_from_redirect(await consent(auth, state="state-1"), state="state-1")
        other_code = code_from_redirect(await consent(auth, state="state-2"), state="state-2")
    secrets.values |= {code, other_code}

    with everything_logged() as log:
        # OAuth over HTTP: code exchange, refresh, and the ways they fail.
        async with make_auth(sim) as auth:
            first = await auth.get_token(code)
            secrets.add_tokens(first)
            async with expect_error(OAuthError):
                await auth.get_token(code)  # single use
            second = await auth.refresh_token(first.refresh_token)
            secrets.add_tokens(second)
            async with expect_error(OAuthError):
                await auth.refresh_token(first.refresh_token)  # rotated away
        async with make_auth(sim, secret="wrong-" + sim.client_secret) as wrong:
            secrets.values.add("wrong-" + sim.client_secret)
            async with expect_error(OAuthError):
                await wrong.get_token(other_code)

        # A token file.
        store = FileTokenStore.for_client(sim.client_id, "demo", directory=tmp_path)
        await store.save(second)
        assert stat.S_IMODE(store.path.stat().st_mode) == 0o600

        # The client: application and accounts, subscriptions, a refresh over the socket, a drop,
        # an expired token while reconnecting, and refused requests.
        client = AsyncClient(
            sim.host,
            sim.port,
            ssl_context=sim.ssl_context,
            client_id=sim.client_id,
            client_secret=sim.client_secret,
            token_store=store,
            **FAST,
        )
        async with client, client.events(AccountReady, TokensRefreshed, Reconnected) as events:
            held = client.tokens
            assert held is not None
            assert held == second
            listing = await client.send_get_account_list_by_access_token_req(held.access_token)
            for account in listing.ctid_trader_account:
                await client.send_account_auth_req(account.ctid_trader_account_id, held.access_token)
            account_id = sim.demo_accounts[0]
            await client.send_subscribe_spots_req(account_id, [EURUSD])
            async with client.events(SpotEvent) as spots:
                seen_events.append(await spots.get(WAIT))
            refreshed = await client.refresh_tokens()
            secrets.add_tokens(refreshed)
            seen_events.append(await next_of(events, TokensRefreshed))
            sim.expire_access_token(refreshed.access_token)
            sim.drop_connections()
            seen_events.append(await next_of(events, TokensRefreshed))  # refreshed again to restore
            seen_events.append(await next_of(events, Reconnected))
            assert client.tokens is not None
            assert client.tokens.access_token != refreshed.access_token
            secrets.add_tokens(client.tokens)
            secrets.values |= {sim.access_token, sim.refresh_token}
            async with expect_error(AuthenticationError):
                await client.send_account_auth_req(account_id, "bogus-access")
            async with expect_error(AuthenticationError):
                await client.send_refresh_token_req("bogus-refresh")
            async with expect_error(AuthenticationError):
                await client.send_get_account_list_by_access_token_req(refreshed.access_token)  # retired
            while (event := events.get_nowait()) is not None:
                seen_events.append(event)
            shown = [repr(client), str(client), repr(store), repr(client.tokens), repr(sim)]
        assert await store.load() == client.tokens  # what the client refreshed was saved

    assert len(errors) == 6
    assert len(secrets.values) >= 12
    logged = log.getvalue()
    assert "ApplicationAuthReq" in logged  # the capture works: requests are logged by name at DEBUG
    assert "HTTP Request: GET" in logged  # and httpx's own request log is in it
    texts = {
        "log": [logged],
        "repr/str of the client, tokens, store": shown,
        "exceptions": [t for e in errors for t in exception_texts(e)],
        "events": [repr(e) for e in seen_events] + [str(e) for e in seen_events],
        "live ctrader_typed objects": library_object_texts(),
    }
    assert secrets.found_in(texts) == []


# -- OAuth ----------------------------------------------------------------------------------------


async def test_a_forged_callback_is_refused_and_the_real_one_completes(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    pages: list[httpx.Response] = []
    tasks: list[asyncio.Task[None]] = []

    def browser(url: str) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        redirect_uri = query["redirect_uri"][0]

        async def visit() -> None:
            async with httpx.AsyncClient(trust_env=False, follow_redirects=True) as http:
                # Another page on the machine fires a callback first, with its own code and state.
                forged = f"{redirect_uri}?" + urllib.parse.urlencode({"code": "attacker", "state": "guess"})
                pages.append(await http.get(forged, timeout=10))
                pages.append(await http.get(url, timeout=10))  # then the user's real consent

        tasks.append(asyncio.create_task(visit()))

    async with make_auth(sim, redirect_uri="http://127.0.0.1:0/auth/callback") as auth:
        tokens = await auth.authorize_in_browser("trading", open_browser=False, timeout=10, on_url=browser)
    await asyncio.gather(*tasks)
    forged, real = pages
    assert forged.status_code == 400
    assert real.status_code == 200
    assert tokens.access_token
    assert "attacker" not in real.text
