"""The loopback callback server refuses to start when another program holds any address
the redirect host means (real squatter sockets), and skips only families the machine lacks."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import urllib.parse
from collections.abc import AsyncIterator, Iterator
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


# -- HTTP as h11 reads it, over real sockets ---------------------------------------------------


async def send_raw(port: int, *pieces: bytes, half_close: bool = False) -> bytes:
    """Write ``pieces`` one by one (each drained before the next), then read the answer to its end."""
    async with asyncio.timeout(30):  # hang guard
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for piece in pieces:
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0)
            if half_close:
                writer.write_eof()
            return await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def status_of(reply: bytes) -> int:
    status_line = reply.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 "), reply[:80]
    return int(status_line.split(b" ")[1])


def callback_target(code: str, state: str = STATE) -> str:
    return "/cb?" + urllib.parse.urlencode({"code": code, "state": state})


@contextlib.asynccontextmanager
async def callback_server(**kw: float) -> AsyncIterator[tuple[CallbackServer, int]]:
    async with CallbackServer("http://127.0.0.1:0/cb", state=STATE, **kw) as server:
        port = urllib.parse.urlsplit(server.redirect_uri).port
        assert port
        yield server, port


async def deliver_and_finish(server: CallbackServer, port: int, *pieces: bytes) -> tuple[str, bytes]:
    browser = asyncio.create_task(send_raw(port, *pieces))
    code = await server.wait(10)
    await server.finish(True, "ok")
    return code, await browser


async def assert_still_serves(server: CallbackServer, port: int) -> None:
    request = f"GET {callback_target('GOOD')} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
    code, reply = await deliver_and_finish(server, port, request)
    assert code == "GOOD"
    assert status_of(reply) == 200


async def test_a_request_split_across_many_writes_is_read_whole() -> None:
    request = f"GET {callback_target('SPLIT')} HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n".encode()
    async with callback_server() as (server, port):
        code, reply = await deliver_and_finish(
            server, port, *(request[i : i + 3] for i in range(0, len(request), 3))
        )
    assert code == "SPLIT"
    assert status_of(reply) == 200
    assert b"Signed in" in reply


async def test_an_absolute_uri_in_the_request_line_is_the_callback_path() -> None:
    async with callback_server() as (server, port):
        target = f"http://127.0.0.1:{port}{callback_target('ABSOLUTE')}"
        code, reply = await deliver_and_finish(
            server, port, f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        )
    assert code == "ABSOLUTE"
    assert status_of(reply) == 200


async def test_a_header_block_over_the_limit_is_431_and_its_code_is_not_taken() -> None:
    head = f"GET {callback_target('HUGE')} HTTP/1.1\r\nHost: localhost\r\n".encode()
    padding = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 1000) for i in range(20))  # about 20 KiB
    async with callback_server() as (server, port):
        reply = await send_raw(port, head + padding + b"\r\n")
        assert status_of(reply) == 431
        with pytest.raises(OAuthError):
            await server.wait(0.2)
        assert server.rejections == ["request head too large"]
        await assert_still_serves(server, port)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_body_over_the_limit_is_413(chunked: bool) -> None:
    body = b"b" * (20 * 1024)
    if chunked:
        framing = b"Transfer-Encoding: chunked\r\n\r\n"
        payload = (
            b"".join(b"400\r\n" + body[i : i + 1024] + b"\r\n" for i in range(0, len(body), 1024))
            + b"0\r\n\r\n"
        )
    else:
        framing = b"Content-Length: %d\r\n\r\n" % len(body)
        payload = body
    head = f"GET {callback_target('BODY')} HTTP/1.1\r\nHost: localhost\r\n".encode() + framing
    async with callback_server() as (server, port):
        reply = await send_raw(port, head, payload)
        assert status_of(reply) == 413
        assert server.rejections == ["request body too large"]
        await assert_still_serves(server, port)


async def test_a_callback_with_a_small_body_is_still_taken() -> None:
    body = b"ignored=1"
    request = f"GET {callback_target('WITHBODY')} HTTP/1.1\r\nHost: localhost\r\n".encode()
    async with callback_server() as (server, port):
        code, reply = await deliver_and_finish(
            server, port, request + b"Content-Length: %d\r\n\r\n" % len(body) + body
        )
    assert code == "WITHBODY"
    assert status_of(reply) == 200


async def test_pipelined_garbage_after_the_callback_gets_no_answer_of_its_own() -> None:
    request = f"GET {callback_target('FIRST')} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
    async with callback_server() as (server, port):
        code, reply = await deliver_and_finish(server, port, request + b"\x00\xffNOT HTTP AT ALL\r\n\r\n")
    assert code == "FIRST"
    assert status_of(reply) == 200
    assert reply.count(b"HTTP/1.1 ") == 1  # one answer, then the connection was closed
    assert server.rejections == []


async def test_a_second_request_pipelined_behind_garbage_is_never_read() -> None:
    follow = f"GET {callback_target('SMUGGLED')} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
    async with callback_server() as (server, port):
        reply = await send_raw(port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n" + follow)
        assert status_of(reply) == 400
        assert reply.count(b"HTTP/1.1 ") == 1
        with pytest.raises(OAuthError):
            await server.wait(0.2)
        assert server.rejections == ["malformed request"]
        await assert_still_serves(server, port)


@pytest.mark.parametrize(
    "request_line",
    [
        "GET {target} HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
        "GET {target} extra HTTP/1.1\r\nHost: localhost\r\n\r\n",  # a space in the target
        "GET {target} HTTP/1.1\r\nHost: localhost\r\nbad header line\r\n\r\n",
        "GET {target} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "GET {target}\r\n\r\n",  # HTTP/0.9
    ],
    ids=["no-host", "space-in-target", "bad-header", "two-lengths", "http-0.9"],
)
async def test_malformed_requests_are_400_without_echo_or_log_of_their_code(
    request_line: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "MALFORMED-CODE-7f3a"
    raw = request_line.format(target=callback_target(secret)).encode()
    async with callback_server() as (server, port):
        reply = await send_raw(port, raw)
        assert status_of(reply) == 400
        assert secret.encode() not in reply
        with pytest.raises(OAuthError):
            await server.wait(0.2)
        assert server.rejections == ["malformed request"]
        await assert_still_serves(server, port)
    assert secret not in caplog.text


async def test_a_request_cut_short_by_the_client_is_400() -> None:
    async with callback_server() as (server, port):
        reply = await send_raw(port, b"GET /cb?code=HALF&sta", half_close=True)
        assert status_of(reply) == 400
        assert server.rejections == ["malformed request"]
        await assert_still_serves(server, port)


async def test_a_client_too_slow_to_send_its_request_is_closed_unanswered() -> None:
    async with callback_server(request_timeout=0.3) as (server, port):
        async with asyncio.timeout(30):  # hang guard
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET {callback_target('SLOW')} HTTP/1.1\r\nHost: loc".encode())
            await writer.drain()
            assert await reader.read() == b""  # closed by the server, nothing written
            writer.close()
            await writer.wait_closed()
        with pytest.raises(OAuthError):
            await server.wait(0.1)
        await assert_still_serves(server, port)


async def test_head_is_405_with_no_body() -> None:
    async with callback_server() as (server, port):
        reply = await send_raw(
            port, f"HEAD {callback_target('HEAD')} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
        )
        assert status_of(reply) == 405
        head, _, body = reply.partition(b"\r\n\r\n")
        assert body == b""
        assert b"content-length: " in head.lower()
        assert server.rejections == ["method HEAD"]
