"""The OAuth endpoints over plain HTTP on 127.0.0.1: the consent page and ``/apps/token``.

The consent page is served at both of its addresses: ``/apps/auth`` (the official SDKs') and
``/my/settings/openapi/grantingaccess/`` (Spotware's current docs, which add ``product=web``;
``product`` is accepted and not checked, its meaning is undocumented). It approves at once (no
login page) and redirects to ``redirect_uri?code=...&state=...``; the redirect URI must be
registered for the client (any ``http://127.0.0.1:*/...`` or ``http://localhost:*/...`` loopback
URI is accepted too).

``/apps/token`` serves the ``authorization_code`` and ``refresh_token`` grants the way Spotware
documents them: GET with query parameters, answered with camelCase keys only, and no ``scope``
(the real reply does not state it; ``ProtoOAGetAccountListByAccessTokenRes.permissionScope``
does). Any other method gets HTTP 405 with ``Allow: GET`` and an ``errorCode``/``description``
JSON body (the documented service names GET only; what it does with a POST is not documented,
and a refusal is what surfaces a client that depends on it). Lenient mode (``lenient=True``,
``Simulator(oauth_lenient=True)``) also takes a POST form or JSON body and adds the snake_case
duplicates of the old official sample to every success reply.

Errors are ``{"errorCode": ..., "description": ...}`` with HTTP 200, as the real service does.
Error codes used: ``INVALID_REQUEST`` (missing parameter), ``UNSUPPORTED_GRANT_TYPE``,
``ACCESS_DENIED`` (bad client credentials), ``INVALID_GRANT`` (unknown, used or expired
code or refresh token, redirect URI mismatch), ``METHOD_NOT_ALLOWED`` (the 405 above).
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from typing import Final

from ctrader_typed._http1 import HttpExchange, HttpRefusal, HttpRequest
from ctrader_typed.testing._auth import Authority, AuthorityError, Grant, Scope

__all__ = ["OAuthHttpServer"]

log = logging.getLogger("ctrader_typed.testing.oauth")

_MAX_HEAD: Final = 16 * 1024
_MAX_BODY: Final = 64 * 1024
_SCOPES: Final[dict[str, Scope]] = {"accounts": "accounts", "trading": "trading"}
CONSENT_PATHS: Final = ("/apps/auth", "/my/settings/openapi/grantingaccess/")
"""The consent page's paths: the official SDKs' and the one in Spotware's current docs."""


class OAuthHttpServer:
    """A deliberately small HTTP/1.1 server: one request per connection, parsed by h11.

    A request head over 16 KiB is answered 431, a body over 64 KiB 413, a malformed request
    400; a connection that has not sent its whole request within ``request_timeout`` seconds
    is closed unanswered. ``lenient`` lets ``/apps/token`` take POST and add snake_case keys.
    """

    def __init__(
        self,
        authority: Authority,
        host: str,
        port: int = 0,
        *,
        request_timeout: float = 10.0,
        lenient: bool = False,
    ) -> None:
        self._authority = authority
        self._lenient = lenient
        self._request_timeout = request_timeout
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.requests: list[tuple[str, str]] = []
        """(method, path) of every request served, for tests."""

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the OAuth server is not running")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._host, self._port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        exchange = HttpExchange(reader, writer, max_head=_MAX_HEAD, max_body=_MAX_BODY)
        try:
            request = await exchange.receive(self._request_timeout)
            if request is None:  # silent past the time limit, or gone
                return
            if isinstance(request, HttpRefusal):
                status, headers, body = _text(request.status, request.reason)
            else:
                status, headers, body = self._respond(request)
            await exchange.respond(status, headers, body)
        finally:
            if task is not None:
                self._tasks.discard(task)
            await exchange.close()

    def _respond(self, request: HttpRequest) -> tuple[int, list[tuple[str, str]], bytes]:
        method = request.method
        url = urllib.parse.urlsplit(request.target)
        self.requests.append((method, url.path))
        params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        if url.path in CONSENT_PATHS:
            if method != "GET":
                return _text(405, "use GET")
            return self._authorize(params)
        if url.path == "/apps/token":
            if method == "POST" and self._lenient:
                params.update(_body_params(request.header("content-type") or "", request.body))
            elif method != "GET":
                allowed = "GET, POST" if self._lenient else "GET"
                _, headers, body = _json(
                    {"errorCode": "METHOD_NOT_ALLOWED", "description": f"use {allowed.replace(', ', ' or ')}"}
                )
                return 405, [*headers, ("Allow", allowed)], body
            return _json(self._token(params))
        return _text(404, "not found")

    def _authorize(self, params: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
        client_id = params.get("client_id", "")
        redirect_uri = params.get("redirect_uri", "")
        if client_id != self._authority.client_id:
            return _text(400, "Unknown client_id")
        if not redirect_uri or not self._authority.redirect_allowed(client_id, redirect_uri):
            return _text(400, "redirect_uri is not registered for this application")
        query: dict[str, str] = {}
        scope = _SCOPES.get(params.get("scope", "trading"))
        if scope is not None:
            query["code"] = self._authority.create_code(client_id, redirect_uri, scope)
        else:
            query["error"] = "invalid_scope"
        if "state" in params:
            query["state"] = params["state"]
        separator = "&" if urllib.parse.urlsplit(redirect_uri).query else "?"
        location = redirect_uri + separator + urllib.parse.urlencode(query)
        return 302, [("Location", location), ("Content-Type", "text/plain")], b"Redirecting"

    def _token(self, params: dict[str, str]) -> dict[str, object]:
        grant_type = params.get("grant_type", "")
        client_id = params.get("client_id", "")
        client_secret = params.get("client_secret", "")
        try:
            if grant_type == "authorization_code":
                code = params.get("code")
                if not code or not client_id or not client_secret:
                    raise AuthorityError("INVALID_REQUEST", "code, client_id and client_secret are required")
                grant = self._authority.exchange_code(
                    code, client_id, client_secret, params.get("redirect_uri")
                )
            elif grant_type == "refresh_token":
                refresh_token = params.get("refresh_token")
                if not refresh_token or not client_id or not client_secret:
                    raise AuthorityError(
                        "INVALID_REQUEST", "refresh_token, client_id and client_secret are required"
                    )
                grant = self._authority.refresh_for_client(refresh_token, client_id, client_secret)
            elif not grant_type:
                raise AuthorityError("INVALID_REQUEST", "grant_type is required")
            else:
                raise AuthorityError("UNSUPPORTED_GRANT_TYPE", f"grant_type {grant_type!r} is not supported")
        except AuthorityError as exc:
            log.info("token request refused: %s", exc.code)
            return {"errorCode": exc.code, "description": exc.description}
        return self._token_body(grant)

    def _token_body(self, grant: Grant) -> dict[str, object]:
        pair = self._authority.pair(grant)
        body: dict[str, object] = {
            "accessToken": pair.access_token,
            "tokenType": "bearer",
            "expiresIn": pair.expires_in,
            "refreshToken": pair.refresh_token,
            "errorCode": None,
            "description": None,
        }
        if self._lenient:
            body |= {
                "access_token": pair.access_token,
                "token_type": "bearer",
                "expires_in": pair.expires_in,
                "refresh_token": pair.refresh_token,
            }
        return body


def _body_params(content_type: str, body: bytes) -> dict[str, str]:
    if not body:
        return {}
    if content_type.split(";")[0].strip().lower() == "application/json":
        try:
            data = json.loads(body)
        except ValueError:
            return {}
        if isinstance(data, dict):
            return {str(k): str(v) for k, v in data.items() if v is not None}
        return {}
    return dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _text(status: int, text: str) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, [("Content-Type", "text/plain; charset=utf-8")], text.encode()


def _json(data: dict[str, object]) -> tuple[int, list[tuple[str, str]], bytes]:
    return 200, [("Content-Type", "application/json")], json.dumps(data).encode()
