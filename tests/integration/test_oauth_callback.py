"""The loopback callback server over real sockets, and the browser flow it serves."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import urllib.parse
from collections.abc import AsyncIterator, Mapping

import httpx
import pytest

from ctrader_typed._callback import CallbackServer
from ctrader_typed.errors import OAuthError
from ctrader_typed.oauth import AsyncAuth

STATE = "state-123"


@contextlib.asynccontextmanager
async def running(
    uri: str = "http://127.0.0.1:0/auth/callback", **kw: float
) -> AsyncIterator[CallbackServer]:
    async with CallbackServer(uri, state=STATE, **kw) as server:
        yield server


def url_for(server: CallbackServer, **params: str) -> str:
    return f"{server.redirect_uri}?{urllib.parse.urlencode(params)}"


async def get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(trust_env=False) as http:
        return await http.get(url, timeout=10)


async def raw_request(port: int, target: str, host: str = "127.0.0.1", *, raw: bytes | None = None) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(raw if raw is not None else f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        return await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()


def port_of(server: CallbackServer) -> int:
    port = urllib.parse.urlsplit(server.redirect_uri).port
    assert port
    return port


async def test_valid_callback_delivers_code_and_page_reports_outcome() -> None:
    async with running() as server:
        assert port_of(server) != 0
        browser = asyncio.create_task(get(url_for(server, code="C0DE", state=STATE)))
        assert await server.wait(10) == "C0DE"
        assert not browser.done()  # the browser waits to hear whether the exchange worked
        await server.finish(True, "All good <b>here</b>")
        reply = await browser
    assert reply.status_code == 200
    assert "All good &lt;b&gt;here&lt;/b&gt;" in reply.text
    assert reply.headers["cache-control"] == "no-store"
    assert reply.headers["referrer-policy"] == "no-referrer"
    assert server.rejections == []


async def test_failed_exchange_shows_a_failure_page() -> None:
    async with running() as server:
        browser = asyncio.create_task(get(url_for(server, code="C0DE", state=STATE)))
        await server.wait(10)
        await server.finish(False, "exchange failed")
        reply = await browser
    assert reply.status_code == 500
    assert "exchange failed" in reply.text


@pytest.mark.parametrize(
    "params",
    [{"code": "EVIL", "state": "someone-elses"}, {"code": "EVIL"}, {"code": "EVIL", "state": ""}],
)
async def test_state_mismatch_is_refused_and_the_real_callback_still_works(params: dict[str, str]) -> None:
    async with running() as server:
        refused = await get(url_for(server, **params))
        assert refused.status_code == 400
        assert "state mismatch" in refused.text
        assert server.rejections == ["state mismatch"]
        browser = asyncio.create_task(get(url_for(server, code="GOOD", state=STATE)))
        assert await server.wait(10) == "GOOD"
        await server.finish(True, "ok")
        assert (await browser).status_code == 200


async def test_wrong_path_and_method_are_turned_away() -> None:
    async with running() as server:
        port = port_of(server)
        assert (await get(f"http://127.0.0.1:{port}/favicon.ico")).status_code == 404
        wrong = await get(f"http://127.0.0.1:{port}/auth/callback/extra?code=X&state={STATE}")
        assert wrong.status_code == 404
        async with httpx.AsyncClient(trust_env=False) as http:
            posted = await http.post(url_for(server, code="X", state=STATE))
        assert posted.status_code == 405
        garbage = await raw_request(port, "", raw=b"HELLO THERE\r\n\r\n")
        assert garbage.startswith(b"HTTP/1.1 400")
        assert server.rejections == ["wrong path", "wrong path", "method POST", "malformed request"]
        with pytest.raises(OAuthError) as info:
            await server.wait(0.2)
        assert info.value.error_code == "CALLBACK_TIMEOUT"


async def test_a_callback_without_code_is_refused() -> None:
    async with running() as server:
        assert (await get(url_for(server, state=STATE))).status_code == 400
        assert server.rejections == ["no code"]


async def test_only_one_callback_is_accepted() -> None:
    async with running() as server:
        port = port_of(server)
        # A second browser connection opened before the first callback lands...
        early_reader, early_writer = await asyncio.open_connection("127.0.0.1", port)
        browser = asyncio.create_task(get(url_for(server, code="FIRST", state=STATE)))
        assert await server.wait(10) == "FIRST"
        await server.finish(True, "ok")
        assert (await browser).status_code == 200
        # ...is answered 410 Gone, and the code stays the first one.
        target = "/auth/callback?" + urllib.parse.urlencode({"code": "SECOND", "state": STATE})
        early_writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await early_writer.drain()
        assert (await early_reader.read()).startswith(b"HTTP/1.1 410")
        early_writer.close()
        await early_writer.wait_closed()
        assert await server.wait(1) == "FIRST"
        # New connections are refused: the listener stopped when the code arrived.
        with pytest.raises(ConnectionRefusedError):
            await raw_request(port, target)
    assert server.rejections == ["second callback"]


async def test_timeout_is_clean_and_closes_the_listener() -> None:
    async with running() as server:
        port = port_of(server)
        with pytest.raises(OAuthError) as info:
            await server.wait(0.1)
        assert info.value.error_code == "CALLBACK_TIMEOUT"
        assert server.redirect_uri in str(info.value)
    with pytest.raises(ConnectionRefusedError):
        await raw_request(port, "/auth/callback")


async def test_idle_connections_do_not_hold_up_close() -> None:
    async with asyncio.timeout(30):  # hang guard: close() must not wait out the 600 s request timeout
        async with running(request_timeout=600) as server:
            idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port_of(server))
            # Connections are accepted in the order they arrive: once a later one has its answer,
            # the idle one has been taken too, and its request is being waited for.
            assert (await get(f"http://127.0.0.1:{port_of(server)}/elsewhere")).status_code == 404
        # close() returned although the idle connection never sent a byte, and it closed that
        # connection without an answer: the client reads the end of the stream.
        assert await idle_reader.read() == b""
    assert server.rejections == ["wrong path"]
    idle_writer.close()
    await idle_writer.wait_closed()


async def test_provider_error_ends_the_wait() -> None:
    async with running() as server:
        reply = await get(
            url_for(server, error="access_denied", error_description="User said no", state=STATE)
        )
        assert reply.status_code == 400
        assert "User said no" in reply.text
        with pytest.raises(OAuthError) as info:
            await server.wait(5)
    assert info.value.error_code == "access_denied"
    assert info.value.description == "User said no"


def _outbound_address() -> str | None:
    """A non-loopback address of this machine, if it has one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if ipaddress.ip_address(address).is_loopback else address


async def test_binds_loopback_only() -> None:
    async with running("http://localhost:0/auth/callback") as server:
        addresses = server.addresses
        assert addresses, "nothing is listening"
        assert {port for _, port in addresses} == {port_of(server)}
        assert all(ipaddress.ip_address(host).is_loopback for host, _ in addresses)
        assert server.redirect_uri.startswith("http://localhost:")
        outside = _outbound_address()
        if outside is not None:
            with pytest.raises(ConnectionRefusedError):
                await raw_request(port_of(server), "/auth/callback", host=outside)


@pytest.mark.parametrize(
    "uri",
    [
        "http://0.0.0.0:8080/auth/callback",
        "http://example.com:8080/auth/callback",
        "http://192.168.1.10:8080/auth/callback",
        "https://localhost:8080/auth/callback",
    ],
)
def test_non_loopback_or_https_redirect_uris_are_rejected(uri: str) -> None:
    with pytest.raises(ValueError, match="redirect URI"):
        CallbackServer(uri, state=None)


async def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(OAuthError) as info:
            async with CallbackServer(f"http://127.0.0.1:{port}/cb", state=None):
                pass
    assert info.value.error_code == "CALLBACK_PORT_IN_USE"
    assert str(port) in str(info.value)


def _token_endpoint(seen: list[httpx.Request], reply: Mapping[str, object]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=reply)

    return httpx.MockTransport(handler)


async def test_authorize_in_browser_exchanges_the_code_at_once() -> None:
    seen: list[httpx.Request] = []
    good = {"accessToken": "A", "refreshToken": "R", "expiresIn": 100}
    browser_pages: list[httpx.Response] = []
    tasks: list[asyncio.Task[None]] = []

    def fake_browser(url: str) -> None:
        # What the consent page would do: redirect to our redirect_uri with a code and the state.
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        target = f"{query['redirect_uri'][0]}?code=CODE1&state={query['state'][0]}"

        async def visit() -> None:
            browser_pages.append(await get(target))

        tasks.append(asyncio.create_task(visit()))

    async with AsyncAuth(
        "cid", "csecret", "http://127.0.0.1:0/auth/callback", transport=_token_endpoint(seen, good)
    ) as auth:
        tokens = await auth.authorize_in_browser(
            "accounts", open_browser=False, on_url=fake_browser, timeout=10
        )
    await asyncio.gather(*tasks)
    assert tokens.access_token == "A"
    assert tokens.scope == "accounts"
    (request,) = seen
    assert request.url.params["code"] == "CODE1"
    # The exchange used the redirect URI actually listened on, as the consent request did.
    assert request.url.params["redirect_uri"].startswith("http://127.0.0.1:")
    assert not request.url.params["redirect_uri"].startswith("http://127.0.0.1:0/")
    assert browser_pages[0].status_code == 200
    assert "Signed in" in browser_pages[0].text


async def test_authorize_in_browser_reports_a_failed_exchange_to_the_browser() -> None:
    seen: list[httpx.Request] = []
    bad = {"errorCode": "ACCESS_DENIED", "description": "Invalid authorization code"}
    pages: list[httpx.Response] = []
    tasks: list[asyncio.Task[None]] = []

    def fake_browser(url: str) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)

        async def visit() -> None:
            pages.append(await get(f"{query['redirect_uri'][0]}?code=OLD&state={query['state'][0]}"))

        tasks.append(asyncio.create_task(visit()))

    async with AsyncAuth(
        "cid", "csecret", "http://127.0.0.1:0/cb", transport=_token_endpoint(seen, bad)
    ) as auth:
        with pytest.raises(OAuthError) as info:
            await auth.authorize_in_browser(open_browser=False, on_url=fake_browser, timeout=10)
    await asyncio.gather(*tasks)
    assert info.value.error_code == "ACCESS_DENIED"
    assert pages[0].status_code == 500
    assert "ACCESS_DENIED" in pages[0].text


async def test_authorize_in_browser_times_out() -> None:
    async with AsyncAuth("cid", "csecret", "http://127.0.0.1:0/cb") as auth:
        with pytest.raises(OAuthError) as info:
            await auth.authorize_in_browser(open_browser=False, timeout=0.1)
    assert info.value.error_code == "CALLBACK_TIMEOUT"
