"""OAuth 2.0 (authorization-code grant) for the cTrader Open API, over httpx.

The flow, end to end::

    async with AsyncAuth(client_id, client_secret, redirect_uri) as auth:
        url = auth.get_auth_uri(scope="trading")      # 1. the user opens this and consents
        tokens = await auth.get_token(code)           # 2. the code from ?code=... (lives ~1 minute)
        tokens = await auth.refresh_token(tokens.refresh_token)   # 3. later; single use, rotates

or, with a one-shot loopback server that catches the redirect and exchanges the code at once::

        tokens = await auth.authorize_in_browser(scope="trading")

``base_url`` is the OAuth host (``https://openapi.ctrader.com``; the simulator's
``oauth_url`` works the same way): the consent page is ``{base_url}/apps/auth`` and the
token endpoint ``{base_url}/apps/token``. Token calls are HTTP GETs with query parameters,
as the official SDKs send them. Replies are parsed from camelCase (falling back to
snake_case) into a ``TokenSet``; an ``errorCode`` in a 200 reply, a non-2xx status, a body
that is not a JSON object or a reply without tokens all raise ``OAuthError``.

Secrets stay out of messages and logs: exception texts are scrubbed of the client secret,
codes and tokens, and httpx's request log line has the secret query parameters redacted
(a filter on the ``httpx`` logger, installed when this module is imported).
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import ssl
import threading
import urllib.parse
import webbrowser
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Literal, Self

import httpx

from ctrader_typed._callback import CallbackServer
from ctrader_typed.errors import OAuthError
from ctrader_typed.tokens import TokenSet

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_REDIRECT_URI",
    "AsyncAuth",
    "Scope",
    "code_from_redirect",
    "parse_token_reply",
]

DEFAULT_BASE_URL = "https://openapi.ctrader.com"
DEFAULT_REDIRECT_URI = "http://localhost:8080/auth/callback"

Scope = Literal["trading", "accounts"]
"""``accounts`` reads account data only; ``trading`` also places and manages orders."""

_SCOPES: frozenset[str] = frozenset({"trading", "accounts"})
_SECRET_PARAMS = frozenset({"client_secret", "code", "refresh_token", "access_token"})
_REDACTED = "[redacted]"

logger = logging.getLogger(__name__)


class AsyncAuth:
    """Client of the cTrader OAuth endpoints.

    Use it as an async context manager (or call ``aclose()``): it owns an
    ``httpx.AsyncClient`` that is opened on first use.

    Args:
        client_id: The application's client id.
        client_secret: The application's client secret.
        redirect_uri: A redirect URI registered for the application, byte for byte.
        base_url: The OAuth host; the simulator's ``oauth_url`` for offline work.
        timeout: Seconds allowed for each HTTP request.
        verify: TLS verification for httpx: ``True`` (system store), a CA bundle path,
            or an ``ssl.SSLContext`` (the simulator's ``ssl_context``).
        transport: An httpx transport to use instead of the network (tests).
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        redirect_uri: str = DEFAULT_REDIRECT_URI,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 30.0,
        verify: ssl.SSLContext | str | bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not client_id:
            raise ValueError("client_id is empty")
        if not client_secret:
            raise ValueError("client_secret is empty")
        self.client_id = client_id
        self._client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._verify = verify
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"AsyncAuth(client_id={self.client_id!r}, redirect_uri={self.redirect_uri!r}, base_url={self.base_url!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connection pool; the object cannot be used afterwards."""
        self._closed = True
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    # -- URLs -------------------------------------------------------------------------------

    @property
    def auth_endpoint(self) -> str:
        return f"{self.base_url}/apps/auth"

    @property
    def token_endpoint(self) -> str:
        return f"{self.base_url}/apps/token"

    def get_auth_uri(self, scope: Scope = "trading", state: str | None = None) -> str:
        """The consent page the user must open: ``{base_url}/apps/auth?client_id=...``.

        Pass a random ``state`` and check it on the redirect (``code_from_redirect``
        does); ``authorize_in_browser`` does both for you.
        """
        return self._auth_uri(scope, state, self.redirect_uri)

    def _auth_uri(self, scope: str, state: str | None, redirect_uri: str) -> str:
        if scope not in _SCOPES:
            raise ValueError(f"scope must be 'trading' or 'accounts', not {scope!r}")
        params = {"client_id": self.client_id, "redirect_uri": redirect_uri, "scope": scope}
        if state is not None:
            params["state"] = state
        return f"{self.auth_endpoint}?{urllib.parse.urlencode(params)}"

    # -- token endpoint ---------------------------------------------------------------------

    async def get_token(self, code: str, *, scope: Scope | None = None) -> TokenSet:
        """Exchange an authorization code (single use, valid about one minute) for tokens.

        ``scope`` is recorded on the token set when the server's reply does not say.
        """
        code = code.strip()
        if not code:
            raise OAuthError("MISSING_CODE", "the authorization code is empty")
        return await self._exchange(code, self.redirect_uri, scope)

    async def refresh_token(self, refresh_token: str, *, scope: str | None = None) -> TokenSet:
        """Swap a refresh token for a new pair. The old pair stops working: persist the new one."""
        if not refresh_token:
            raise OAuthError("MISSING_TOKEN", "the refresh token is empty")
        params = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": self.client_id,
            "client_secret": self._client_secret,
        }
        return await self._call_token_endpoint(params, scope=scope, hide=(refresh_token,))

    async def _exchange(self, code: str, redirect_uri: str, scope: str | None) -> TokenSet:
        params = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.client_id,
            "client_secret": self._client_secret,
        }
        return await self._call_token_endpoint(params, scope=scope, hide=(code,))

    def _client(self) -> httpx.AsyncClient:
        if self._closed:
            raise RuntimeError("this AsyncAuth is closed")
        if self._http is None:
            verify = self._verify
            if isinstance(verify, str):  # a CA bundle path (httpx itself deprecates passing one)
                verify = ssl.create_default_context(cafile=verify)
            self._http = httpx.AsyncClient(
                timeout=self.timeout,
                verify=verify,
                transport=self._transport,
                headers={"Accept": "application/json"},
            )
        return self._http

    async def _call_token_endpoint(
        self, params: Mapping[str, str], *, scope: str | None, hide: Iterable[str]
    ) -> TokenSet:
        hidden = [self._client_secret, *hide]
        try:
            response = await self._client().get(self.token_endpoint, params=dict(params))
        except httpx.TimeoutException:
            raise OAuthError(
                "TIMEOUT", f"no answer from {self.token_endpoint} within {self.timeout:g}s"
            ) from None
        except httpx.HTTPError as exc:
            detail = _scrub(str(exc) or type(exc).__name__, hidden)
            raise OAuthError("CONNECTION_ERROR", f"{self.token_endpoint}: {detail}") from None
        return parse_token_reply(response.status_code, response.content, scope=scope, hidden=hidden)

    # -- interactive flows ------------------------------------------------------------------

    async def authorize_in_browser(
        self,
        scope: Scope = "trading",
        *,
        open_browser: bool = True,
        timeout: float = 300.0,
        on_url: Callable[[str], object] | None = None,
        check_state: bool = True,
    ) -> TokenSet:
        """Run the whole consent flow through a one-shot loopback server on ``redirect_uri``.

        Listens on the redirect URI's loopback address and port, announces the consent
        URL through ``on_url``, opens it with :mod:`webbrowser` (which honours
        ``$BROWSER``) unless ``open_browser`` is false, waits up to ``timeout`` seconds
        for exactly one callback carrying our ``state``, exchanges the code at once and
        tells the browser how it went.

        Raises:
            OAuthError: ``CALLBACK_TIMEOUT``, the provider's ``error`` (consent refused),
                ``CALLBACK_PORT_IN_USE``, or whatever the token exchange raised.
            ValueError: ``redirect_uri`` is not an ``http://`` loopback address.
        """
        state = secrets.token_urlsafe(24)
        async with CallbackServer(self.redirect_uri, state=state if check_state else None) as server:
            url = self._auth_uri(scope, state, server.redirect_uri)
            if on_url is not None:
                on_url(url)
            if open_browser:
                _open_in_background(url)
            code = await server.wait(timeout)
            try:
                tokens = await self._exchange(code, server.redirect_uri, scope)
            except OAuthError as exc:
                await server.finish(False, f"The code could not be exchanged for tokens ({exc.error_code}).")
                raise
            await server.finish(True, "Signed in. You can close this tab and return to the terminal.")
        return tokens


def code_from_redirect(text: str, *, state: str | None = None) -> str:
    """The authorization code from what the user pasted: the bare code or the redirected URL.

    With a URL, a provider ``error`` raises ``OAuthError``; if ``state`` is given and the
    URL carries a different one, ``OAuthError("STATE_MISMATCH")`` is raised.
    """
    text = text.strip()
    if not text:
        raise OAuthError("MISSING_CODE", "nothing was entered")
    looks_like_url = "://" in text or text.startswith(("/", "?"))
    if not looks_like_url and "code=" not in text and "error=" not in text:
        return text  # the bare code
    parsed = urllib.parse.urlsplit(text)
    query = parsed.query or parsed.fragment or ("" if looks_like_url else text)
    values = urllib.parse.parse_qs(query, keep_blank_values=True)
    if "error" in values:
        description = values.get("error_description", [""])[0] or None
        raise OAuthError(values["error"][0] or "ACCESS_DENIED", description)
    got_state = values.get("state", [None])[0]
    if state is not None and got_state is not None and got_state != state:
        raise OAuthError("STATE_MISMATCH", "the redirect's state is not the one this session sent")
    code = values.get("code", [""])[0].strip()
    if not code:
        raise OAuthError("MISSING_CODE", "the URL has no code= parameter")
    return code


def parse_token_reply(
    status_code: int, body: bytes, *, scope: str | None = None, hidden: Iterable[str] = ()
) -> TokenSet:
    """Turn a token-endpoint reply into a ``TokenSet`` or raise ``OAuthError``.

    ``hidden`` lists secrets to scrub from any text the server sent back.
    """
    hidden = [h for h in hidden if h]
    data: Any
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if not 200 <= status_code < 300:
        code = f"HTTP_{status_code}"
        description = "the token endpoint refused the request"
        if isinstance(data, dict):
            code = _text(data.get("errorCode") or data.get("error")) or code
            description = _text(data.get("description") or data.get("error_description")) or description
        raise OAuthError(code, _scrub(description, hidden), status_code=status_code)
    if not isinstance(data, dict):
        what = "is not JSON" if data is None else "is not a JSON object"
        raise OAuthError("INVALID_JSON", f"the token endpoint's reply {what}", status_code=status_code)
    error_code = _text(data.get("errorCode") or data.get("error"))
    if error_code:
        description = _text(data.get("description") or data.get("error_description"))
        raise OAuthError(error_code, _scrub(description, hidden) or None, status_code=status_code)
    access_token = _pick(data, "accessToken", "access_token")
    refresh_token = _pick(data, "refreshToken", "refresh_token")
    if not isinstance(access_token, str) or not access_token:
        raise OAuthError("MISSING_TOKEN", "the reply carries no access token", status_code=status_code)
    if not isinstance(refresh_token, str) or not refresh_token:
        raise OAuthError("MISSING_TOKEN", "the reply carries no refresh token", status_code=status_code)
    token_type = _pick(data, "tokenType", "token_type")
    reply_scope = _pick(data, "scope", "scope")
    return TokenSet.from_expires_in(
        access_token,
        refresh_token,
        _seconds(_pick(data, "expiresIn", "expires_in"), status_code),
        token_type=token_type if isinstance(token_type, str) and token_type else "bearer",
        scope=reply_scope if isinstance(reply_scope, str) and reply_scope else scope,
    )


def _pick(data: Mapping[str, Any], camel: str, snake: str) -> Any:
    value = data.get(camel)
    return data.get(snake) if value is None else value


def _text(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _seconds(value: object, status_code: int) -> float | None:
    if value is None or value == "":
        return None
    number: float
    if isinstance(value, bool):
        number = math.nan
    elif isinstance(value, int | float):
        number = float(value)
    else:
        try:
            number = float(str(value))
        except ValueError:
            number = math.nan
    if not math.isfinite(number) or number < 0:
        raise OAuthError("INVALID_REPLY", "expiresIn is not a number of seconds", status_code=status_code)
    return number


def _scrub(text: str, hidden: Iterable[str]) -> str:
    for secret in hidden:
        if secret:
            text = text.replace(secret, _REDACTED)
    return text


def _open_in_background(url: str) -> None:
    """Open ``url`` without blocking the event loop (a ``$BROWSER`` command may block)."""

    def run() -> None:
        try:
            opened = webbrowser.open(url)
        except Exception:  # a broken $BROWSER must not kill the flow; the URL was printed
            opened = False
        if not opened:
            logger.info("could not open a web browser; open the printed URL by hand")

    threading.Thread(target=run, name="ctrader-typed-browser", daemon=True).start()


class _RedactSecretQuery(logging.Filter):
    """Redacts secret query parameters from httpx's ``HTTP Request: GET <url>`` log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(_redact_url(a) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


def _redact_url(url: httpx.URL) -> httpx.URL:
    if not url.query:
        return url
    pairs = urllib.parse.parse_qsl(url.query.decode("ascii", "replace"), keep_blank_values=True)
    if not any(k in _SECRET_PARAMS for k, _ in pairs):
        return url
    clean = [(k, _REDACTED if k in _SECRET_PARAMS else v) for k, v in pairs]
    return url.copy_with(query=urllib.parse.urlencode(clean).encode("ascii"))


_HTTPX_FILTER = _RedactSecretQuery()
logging.getLogger("httpx").addFilter(_HTTPX_FILTER)
