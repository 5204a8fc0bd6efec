"""A one-shot loopback HTTP server that catches the OAuth redirect.

``CallbackServer`` listens only on the loopback address of an ``http://`` redirect URI,
answers anything that is not the callback path with 404, ignores callbacks whose
``state`` is not ours (400), takes exactly one valid callback, and stops listening as
soon as it has it.

``localhost`` is every loopback address it may mean - 127.0.0.1, ::1 and any other
loopback address the resolver gives for it - all on the same port, because a browser
may try any of them: if one of them is held by another program (which would then
receive the code), starting fails with ``OAuthError("CALLBACK_PORT_IN_USE")``. An
address this machine does not have at all (no IPv6) is skipped. Addresses the resolver
gives for ``localhost`` that are not loopback addresses are never listened on. The browser that
delivered the code is kept waiting until ``finish()`` says whether the code could be
exchanged, so the page it shows tells the truth.

Each connection carries one request, parsed by h11 (``_http1``) within size and time limits,
and is closed after the answer: a malformed request is answered 400, a request head or body over
16 KiB 431 or 413; a connection that has not sent its whole request within ``request_timeout``
is closed unanswered.
"""

from __future__ import annotations

import asyncio
import errno
import html
import ipaddress
import os
import socket
import urllib.parse
from types import TracebackType
from typing import Final, Self

from ctrader_typed import _secrets
from ctrader_typed._http1 import HttpExchange, HttpRefusal, HttpRequest
from ctrader_typed.errors import OAuthError

__all__ = ["CallbackServer"]

logger = _secrets.get_logger("ctrader_typed.oauth")

_MAX_HEAD: Final = 16 * 1024
"""Most bytes a request line and its headers may take (a browser's callback takes far fewer)."""
_MAX_BODY: Final = 16 * 1024
"""Most bytes a request body may take (the callback is a GET: it has none)."""
_LOCALHOST: Final = ("127.0.0.1", "::1")
_NOT_ON_THIS_MACHINE: Final = frozenset(
    code
    for name in (
        "EAFNOSUPPORT",  # no IPv6 in the kernel
        "EPFNOSUPPORT",
        "EPROTONOSUPPORT",
        "EADDRNOTAVAIL",  # IPv6 present but ::1 not configured (containers)
        "WSAEAFNOSUPPORT",
        "WSAEPFNOSUPPORT",
        "WSAEPROTONOSUPPORT",
        "WSAEADDRNOTAVAIL",
    )
    if (code := getattr(errno, name, None)) is not None
)
"""``errno`` values meaning "this machine has no such address family or address"."""
_EPHEMERAL_ATTEMPTS: Final = 8
"""Port 0: how many free ports to try before giving up (one may be free on 127.0.0.1 only)."""


class CallbackServer:
    """Listen on a loopback redirect URI for one OAuth callback.

    Args:
        redirect_uri: ``http://localhost:PORT/path``, ``http://127.0.0.1:PORT/path`` or
            ``http://[::1]:PORT/path``. Port 0 picks a free port (tests); read the real
            one back from ``redirect_uri``.
        state: The ``state`` sent to the consent page; callbacks without it are refused.
            ``None`` accepts any state.
        request_timeout: Seconds a connection may take to send its whole request.
        finish_timeout: Seconds the browser is kept waiting for ``finish()``.
    """

    def __init__(
        self,
        redirect_uri: str,
        *,
        state: str | None,
        request_timeout: float = 10.0,
        finish_timeout: float = 60.0,
    ) -> None:
        parsed = urllib.parse.urlsplit(redirect_uri)
        if parsed.scheme != "http":
            raise ValueError(f"a local callback needs an http:// redirect URI, not {redirect_uri!r}")
        host = parsed.hostname or ""
        self._localhost = host == "localhost"
        if self._localhost:
            self._hosts = list(_LOCALHOST)
        else:
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = False
            if not loopback:
                raise ValueError(
                    f"a local callback needs a loopback redirect URI (localhost, 127.0.0.1 or [::1]), "
                    f"not {redirect_uri!r}"
                )
            self._hosts = [host]
        self._requested_uri = redirect_uri
        self._parsed = parsed
        self._port = parsed.port if parsed.port is not None else 80
        self._path = parsed.path or "/"
        self._state = state
        self._request_timeout = request_timeout
        self._finish_timeout = finish_timeout
        self._servers: list[asyncio.Server] = []
        self._handlers: set[asyncio.Task[None]] = set()
        self._winner: asyncio.Task[None] | None = None
        self._code: asyncio.Future[str] | None = None
        self._outcome: asyncio.Future[tuple[bool, str]] | None = None
        self.rejections: list[str] = []
        """Why requests were turned away (``"wrong path"``, ``"state mismatch"`` ...)."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            await self.finish(False, "Sign-in failed; see the terminal for details.")
        await self.close()

    @property
    def redirect_uri(self) -> str:
        """The redirect URI in use: as given, or with the chosen port if port 0 was given."""
        if self._parsed.port != 0 or not self._servers:
            return self._requested_uri
        host = self._parsed.hostname or ""
        netloc = f"[{host}]:{self._port}" if ":" in host else f"{host}:{self._port}"
        return urllib.parse.urlunsplit(self._parsed._replace(netloc=netloc))

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The (host, port) pairs actually listened on."""
        result: list[tuple[str, int]] = []
        for server in self._servers:
            for sock in server.sockets:
                name = sock.getsockname()
                result.append((str(name[0]), int(name[1])))
        return result

    async def start(self) -> None:
        """Listen on every address of the redirect URI's host, or raise ``OAuthError``.

        Raises:
            OAuthError: ``CALLBACK_PORT_IN_USE`` when any of the addresses cannot be bound
                (another program holds the port there, or it is not allowed);
                ``CALLBACK_UNAVAILABLE`` when this machine has none of them.
        """
        loop = asyncio.get_running_loop()
        self._code = loop.create_future()
        self._outcome = loop.create_future()
        if self._localhost:
            self._hosts = await _localhost_addresses(loop)
        attempts = _EPHEMERAL_ATTEMPTS if self._port == 0 else 1
        for attempt in range(attempts):
            try:
                sockets = _bind_all(self._hosts, self._port)
                break
            except _BindError as exc:
                if exc.in_use and attempt + 1 < attempts:
                    continue  # port 0: the port picked on the first address is taken on another
                await self.close()
                raise exc.to_oauth_error() from None
        else:  # pragma: no cover - the loop always breaks or raises
            raise AssertionError("unreachable")
        self._port = sockets[0].getsockname()[1]
        try:
            for sock in sockets:
                self._servers.append(await asyncio.start_server(self._serve, sock=sock))
        except BaseException:
            for sock in sockets:
                sock.close()
            await self.close()
            raise

    async def wait(self, timeout: float) -> str:
        """The code of the one valid callback; ``OAuthError`` on timeout or a refused consent."""
        if self._code is None:
            raise RuntimeError("CallbackServer.start() was not called")
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(self._code)
        except TimeoutError:
            raise OAuthError(
                "CALLBACK_TIMEOUT", f"no redirect reached {self.redirect_uri} within {timeout:g}s"
            ) from None

    async def finish(self, ok: bool, message: str) -> None:
        """Tell the waiting browser how the sign-in ended, then let its connection close."""
        if self._outcome is not None and not self._outcome.done():
            self._outcome.set_result((ok, message))
        await self._wait_for_winner(self._finish_timeout)

    async def close(self) -> None:
        """Stop listening and end every connection; safe to call twice."""
        self._stop_listening()
        if self._outcome is not None and not self._outcome.done():
            self._outcome.set_result((False, "Sign-in was abandoned; see the terminal."))
        await self._wait_for_winner(2.0)
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        servers, self._servers = self._servers, []
        for server in servers:
            await server.wait_closed()
        if self._code is not None:
            if not self._code.done():
                self._code.cancel()
            elif not self._code.cancelled():
                self._code.exception()  # mark a refused consent as seen if nobody waited for it

    def _stop_listening(self) -> None:
        for server in self._servers:
            server.close()

    async def _wait_for_winner(self, timeout: float) -> None:
        """Let the connection that brought the code write its page."""
        if self._winner is not None and not self._winner.done():
            await asyncio.wait([self._winner], timeout=timeout)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        exchange = HttpExchange(reader, writer, max_head=_MAX_HEAD, max_body=_MAX_BODY)
        try:
            request = await exchange.receive(self._request_timeout)
            if request is None:  # silent past the time limit, or gone
                return
            if isinstance(request, HttpRefusal):
                status, title, text = self._refuse(request)
            else:
                status, title, text = await self._answer(request)
            await exchange.respond(status, _PAGE_HEADERS, _page(title, text))
        finally:
            self._handlers.discard(task)
            await exchange.close()

    def _refuse(self, refusal: HttpRefusal) -> tuple[int, str, str]:
        if refusal.status == 400:
            return self._reject(400, "malformed request", "Bad request", "This is not an HTTP request.")
        return self._reject(refusal.status, refusal.reason, "Request too large", "This request is too large.")

    async def _answer(self, request: HttpRequest) -> tuple[int, str, str]:
        assert self._code is not None
        assert self._outcome is not None
        if request.method != "GET":
            method = request.method[:16]
            return self._reject(405, f"method {method}", "Method not allowed", "Only GET is served here.")
        url = urllib.parse.urlsplit(request.target)
        if url.path != self._path:
            return self._reject(404, "wrong path", "Not found", "This is not the sign-in callback address.")
        if self._code.done():
            return self._reject(
                410, "second callback", "Already used", "This sign-in has already completed; start a new one."
            )
        params = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        if self._state is not None and params.get("state") != [self._state]:
            return self._reject(
                400,
                "state mismatch",
                "Sign-in refused",
                "This answer does not belong to the sign-in running in the terminal (state mismatch).",
            )
        if "error" in params:
            error = _secrets.scrub(params["error"][0]) or "ACCESS_DENIED"
            description = _secrets.scrub(params.get("error_description", [""])[0]) or None
            self._code.set_exception(OAuthError(error, description))
            self._stop_listening()
            shown = error if not description else f"{error}: {description}"
            return 400, "Sign-in refused", f"The authorization server said: {shown}"
        code = params.get("code", [""])[0]
        if not code:
            return self._reject(400, "no code", "Sign-in refused", "The redirect carries no code.")
        _secrets.register(code)  # only the one code taken: strangers must not crowd the registry
        self._code.set_result(code)
        self._winner = asyncio.current_task()
        self._stop_listening()
        try:
            ok, message = await asyncio.wait_for(asyncio.shield(self._outcome), self._finish_timeout)
        except TimeoutError:
            ok, message = True, "Authorization received; return to the terminal."
        return (200, "Signed in", message) if ok else (500, "Sign-in failed", message)

    def _reject(self, status: int, reason: str, title: str, text: str) -> tuple[int, str, str]:
        self.rejections.append(reason)
        logger.warning("OAuth callback server turned a request away: %s", reason)
        return status, title, text


_PAGE_HEADERS: Final = (
    ("Content-Type", "text/html; charset=utf-8"),
    ("Cache-Control", "no-store"),
    ("Referrer-Policy", "no-referrer"),
)


def _page(title: str, text: str) -> bytes:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)} - ctrader-typed</title></head>"
        f"<body style='font-family:sans-serif;margin:3em'><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(text)}</p></body></html>"
    ).encode()


async def _localhost_addresses(loop: asyncio.AbstractEventLoop) -> list[str]:
    """127.0.0.1, ::1 and any other loopback address the resolver gives for ``localhost``."""
    found = list(_LOCALHOST)
    try:
        infos = await loop.getaddrinfo("localhost", None, type=socket.SOCK_STREAM)
    except OSError:  # no resolver answer: the two standard addresses
        return found
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]
        try:
            loopback = ipaddress.ip_address(address).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            logger.warning(
                "localhost resolves to %s, which is not a loopback address; not listening there", address
            )
        elif address not in found:
            found.append(address)
    return found


class _BindError(Exception):
    def __init__(self, host: str, port: int, error: OSError | None) -> None:
        super().__init__(host, port)
        self.host, self.port, self.error = host, port, error
        self.in_use = error is not None and error.errno in {
            errno.EADDRINUSE,
            getattr(errno, "WSAEADDRINUSE", -1),
        }

    def to_oauth_error(self) -> OAuthError:
        where = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        if self.error is None:
            return OAuthError(
                "CALLBACK_UNAVAILABLE",
                f"cannot listen on {where}: this machine has no such address; register a redirect URI "
                "on another loopback address (http://127.0.0.1:PORT/...)",
            )
        return OAuthError(
            "CALLBACK_PORT_IN_USE",
            f"cannot listen on {where} ({self.error.strerror or self.error}); another program may "
            "be listening there and would receive the code; free the port or register another "
            "loopback redirect URI",
        )


def _bind_all(hosts: list[str], port: int) -> list[socket.socket]:
    """A listening socket on each of ``hosts``, all on one port (``port``, or the first free one).

    Addresses this machine does not have are skipped; any other failure raises ``_BindError``
    (with every socket opened so far closed).
    """
    sockets: list[socket.socket] = []
    try:
        for host in hosts:
            try:
                sock = _listening_socket(host, port)
            except OSError as exc:
                if exc.errno in _NOT_ON_THIS_MACHINE:
                    logger.debug("no %s on this machine; not listening there", host)
                    continue
                raise _BindError(host, port, exc) from None
            sockets.append(sock)
            port = sock.getsockname()[1]
        if not sockets:
            raise _BindError(hosts[0], port, None)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if os.name != "nt":  # POSIX: rebinding over TIME_WAIT; Windows' variant would allow hijacking
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        elif hasattr(socket, "SO_EXCLUSIVEADDRUSE"):  # Windows: nobody may bind the port after us
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(8)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
