"""The loopback callback server refuses to start when another program holds any address
the redirect host means (real squatter sockets), and skips only families the machine lacks."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ctrader_typed import _callback
from ctrader_typed._callback import CallbackServer
from ctrader_typed.errors import OAuthError
from ctrader_typed.oauth import AsyncAuth

STATE = "state-hardening"


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(
    not _has_ipv6_loopback(), reason="this machine has no IPv6 loopback (::1 cannot be bound)"
)


def _free_on(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def squatter(host: str, *, listening: bool = True) -> Iterator[int]:
    """A socket of "another program" on ``host``, on a port that is free on the other loopback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    other = "127.0.0.1" if family == socket.AF_INET6 else "::1"
    for _ in range(20):
        sock = socket.socket(family, socket.SOCK_STREAM)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, 0))
        port = int(sock.getsockname()[1])
        if _free_on(other, port) or not _has_ipv6_loopback():
            break
        sock.close()
    else:
        pytest.fail("no port free on the other loopback address")
    try:
        if listening:
            sock.listen(8)
        yield port
    finally:
        sock.close()


def refused(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.connect((host, port))
        except ConnectionRefusedError:
            return True
    return False


@needs_ipv6
@pytest.mark.parametrize("listening", [True, False], ids=["listening", "bound-only"])
async def test_a_squatter_on_ipv6_loopback_stops_a_localhost_callback(listening: bool) -> None:
    with squatter("::1", listening=listening) as port:
        with pytest.raises(OAuthError) as info:
            async with CallbackServer(f"http://localhost:{port}/cb", state=STATE):
                pass
        # Nothing of ours is left listening on 127.0.0.1 either.
        assert refused("127.0.0.1", port)
    assert info.value.error_code == "CALLBACK_PORT_IN_USE"
    assert f"[::1]:{port}" in str(info.value)


async def test_a_squatter_on_ipv4_loopback_stops_a_localhost_callback() -> None:
    with squatter("127.0.0.1") as port:
        with pytest.raises(OAuthError) as info:
            async with CallbackServer(f"http://localhost:{port}/cb", state=STATE):
                pass
        if _has_ipv6_loopback():
            assert refused("::1", port)
    assert info.value.error_code == "CALLBACK_PORT_IN_USE"
    assert f"127.0.0.1:{port}" in str(info.value)


@needs_ipv6
async def test_authorize_in_browser_never_shows_a_consent_url_when_a_squatter_would_get_the_code() -> None:
    urls: list[str] = []

    def no_request(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no token request expected")

    with squatter("::1") as port:
        async with AsyncAuth(
            "cid", "csecret", f"http://localhost:{port}/cb", transport=httpx.MockTransport(no_request)
        ) as auth:
            with pytest.raises(OAuthError) as info:
                await auth.authorize_in_browser(open_browser=False, on_url=urls.append, timeout=10)
    assert info.value.error_code == "CALLBACK_PORT_IN_USE"
    assert urls == []


@needs_ipv6
async def test_localhost_listens_on_both_loopbacks_on_one_port_and_either_delivers() -> None:
    async with CallbackServer("http://localhost:0/cb", state=STATE) as server:
        port = urllib.parse.urlsplit(server.redirect_uri).port
        assert port
        assert {("127.0.0.1", port), ("::1", port)} <= set(server.addresses)
        query = urllib.parse.urlencode({"code": "V6CODE", "state": STATE})
        async with httpx.AsyncClient(trust_env=False) as http:
            browser = asyncio.create_task(http.get(f"http://[::1]:{port}/cb?{query}", timeout=10))
            assert await server.wait(10) == "V6CODE"
            await server.finish(True, "ok")
            assert (await browser).status_code == 200


# -- failures injected at bind(): every machine, with or without IPv6 --------------------------

RealSocket = _callback._listening_socket


def failing_on(host: str, code: int, *, times: int | None = None) -> Any:
    calls = {"n": 0}

    def fake(address: str, port: int) -> socket.socket:
        if address == host and (times is None or calls["n"] < times):
            calls["n"] += 1
            raise OSError(code, f"injected {errno.errorcode.get(code, code)}")
        return RealSocket(address, port)

    return fake


@pytest.mark.parametrize("code", [errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL])
async def test_an_address_family_the_machine_lacks_is_skipped(
    monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    monkeypatch.setattr(_callback, "_listening_socket", failing_on("::1", code))
    async with CallbackServer("http://localhost:0/cb", state=None) as server:
        assert [host for host, _ in server.addresses] == ["127.0.0.1"]


@pytest.mark.parametrize("code", [errno.EADDRINUSE, errno.EACCES])
async def test_any_other_bind_failure_on_a_later_address_is_port_in_use(
    monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    monkeypatch.setattr(_callback, "_listening_socket", failing_on("::1", code))
    with socket.socket() as probe:  # a fixed port: no retry on another one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(OAuthError) as info:
        async with CallbackServer(f"http://localhost:{port}/cb", state=None):
            pass
    assert info.value.error_code == "CALLBACK_PORT_IN_USE"
    assert "[::1]" in str(info.value)
    assert refused("127.0.0.1", port)


async def test_port_zero_retries_until_one_port_is_free_on_every_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_callback, "_listening_socket", failing_on("::1", errno.EADDRINUSE, times=2))
    async with CallbackServer("http://localhost:0/cb", state=None) as server:
        ports = {port for _, port in server.addresses}
        assert len(ports) == 1
        assert "127.0.0.1" in {host for host, _ in server.addresses}


async def test_a_loopback_literal_the_machine_lacks_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_callback, "_listening_socket", failing_on("::1", errno.EADDRNOTAVAIL))
    with pytest.raises(OAuthError) as info:
        async with CallbackServer("http://[::1]:0/cb", state=None):
            pass
    assert info.value.error_code == "CALLBACK_UNAVAILABLE"


async def test_resolved_localhost_addresses_are_used_but_never_a_non_loopback_one(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    bound: list[str] = []

    def record(address: str, port: int) -> socket.socket:
        bound.append(address)
        if address not in {"127.0.0.1", "::1"}:
            raise OSError(errno.EADDRNOTAVAIL, "injected")  # stand-in for 127.0.0.2 on any OS
        return RealSocket(address, port)

    async def resolver(host: str, *args: object, **kwargs: object) -> list[Any]:
        assert host == "localhost"
        stream, tcp = socket.SOCK_STREAM, socket.IPPROTO_TCP
        return [
            (socket.AF_INET, stream, tcp, "", ("127.0.0.2", 0)),
            (socket.AF_INET, stream, tcp, "", ("192.0.2.7", 0)),
            (socket.AF_INET6, stream, tcp, "", ("::1", 0, 0, 0)),
        ]

    monkeypatch.setattr(_callback, "_listening_socket", record)
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", resolver)
    caplog.set_level(logging.WARNING, "ctrader_typed.oauth")
    async with CallbackServer("http://localhost:0/cb", state=None):
        pass
    assert bound[:1] == ["127.0.0.1"]
    assert "127.0.0.2" in bound
    assert "192.0.2.7" not in bound
    assert "192.0.2.7" in caplog.text
