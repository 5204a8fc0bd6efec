"""OAuth 2.0 (authorization-code grant) for the cTrader Open API, over httpx.

The flow, end to end::

    async with AsyncAuth(client_id, client_secret, redirect_uri) as auth:
        url = auth.get_auth_uri(scope="trading")      # 1. the user opens this and consents
        tokens = await auth.get_token(code)           # 2. the code from ?code=... (lives ~1 minute)
        tokens = await auth.refresh_token(tokens.refresh_token)   # 3. later; single use, rotates

or, with a one-shot loopback server that catches the redirect and exchanges the code at once::

        tokens = await auth.authorize_in_browser(scope="trading")

``base_url`` is the OAuth host (``https://openapi.ctrader.com``; the simulator's
``oauth_url`` works the same way) and the token endpoint is ``{base_url}/apps/token``.
The consent page is, by default, the one in Spotware's current docs:
``https://id.ctrader.com/my/settings/openapi/grantingaccess/?client_id=...&product=web``
(on ``base_url`` itself when it is not the default host, e.g. the simulator);
``consent_page="classic"`` gives ``{base_url}/apps/auth``, the page the official SDKs open.
Token calls are HTTP GETs with query parameters, as Spotware documents them and the
official SDKs send them. Replies are parsed from camelCase (falling back to
snake_case) into a ``TokenSet``; an ``errorCode`` in a 200 reply, a non-2xx status, a body
that is not a JSON object (or too deeply nested to parse), a field of the wrong type, an
``expiresIn`` outside 0 .. ``MAX_LIFETIME_SECONDS`` or a reply without tokens all raise
``OAuthError`` - and nothing else does.

Secrets stay out of messages and logs: the client secret, every code and token an
``AsyncAuth`` sends or receives are held by it and registered with
``ctrader_typed._secrets``, so exception texts and the records of the library's loggers
are scrubbed of them in their literal, URL-encoded and JSON-escaped spellings. Server
texts put into an ``OAuthError`` are also made one line and cut to 500 characters.
httpx's request log line has the secret query parameters redacted (filters on the
``httpx`` logger, installed when this module is imported).
"""

from __future__ import annotations

import json
import logging
import math
import re
import secrets
import ssl
import threading
import urllib.parse
import webbrowser
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Final, Literal, Self

import httpx

from ctrader_typed import _secrets
from ctrader_typed._callback import CallbackServer
from ctrader_typed._secrets import REDACTED, Secrets, get_logger
from ctrader_typed.errors import OAuthError
from ctrader_typed.tokens import MAX_LIFETIME_SECONDS, TokenSet

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_CONSENT_BASE_URL",
    "DEFAULT_REDIRECT_URI",
    "AsyncAuth",
    "ConsentPage",
    "Scope",
    "code_from_redirect",
    "parse_token_reply",
]

DEFAULT_BASE_URL = "https://openapi.ctrader.com"
DEFAULT_REDIRECT_URI = "http://localhost:8080/auth/callback"
DEFAULT_CONSENT_BASE_URL = "https://id.ctrader.com"
"""Host of the current consent page when ``base_url`` is ``DEFAULT_BASE_URL``."""

ConsentPage = Literal["current", "classic"]
"""Which consent page ``AsyncAuth`` sends the user to: ``current``,
``/my/settings/openapi/grantingaccess/`` with ``product=web`` (Spotware's current docs), or
``classic``, ``/apps/auth`` (the official SDKs and the older docs)."""

_CONSENT_PATHS: Final[dict[str, str]] = {
    "current": "/my/settings/openapi/grantingaccess/",
    "classic": "/apps/auth",
}

Scope = Literal["trading", "accounts"]
"""``accounts`` reads account data only; ``trading`` also places and manages orders."""

_SCOPES: frozenset[str] = frozenset({"trading", "accounts"})
_SECRET_PARAMS = frozenset({"client_secret", "code", "refresh_token", "access_token"})

logger = get_logger(__name__)


class AsyncAuth:
    """Client of the cTrader OAuth endpoints.

    Use it as an async context manager (or call ``aclose()``): it owns an
    ``httpx.AsyncClient`` that is opened on first use.

    Args:
        client_id: The application's client id.
        client_secret: The application's client secret.
        redirect_uri: A redirect URI registered for the application, byte for byte.
        base_url: The OAuth host; the simulator's ``oauth_url`` for offline work.
        consent_page: ``"current"`` (default; the page of Spotware's current docs,
            ``/my/settings/openapi/grantingaccess/`` with ``product=web``) or ``"classic"``
            (``/apps/auth``, as the official SDKs build it). The simulator serves both.
        consent_base_url: Host of the consent page. Default: ``DEFAULT_CONSENT_BASE_URL``
            (``https://id.ctrader.com``) for the current page on the default ``base_url``,
            else ``base_url``.
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
        consent_page: ConsentPage = "current",
        consent_base_url: str | None = None,
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
        self._secrets = Secrets([client_secret])
        """Scrubbed from every text this object produces: the secret, codes and tokens it saw."""
        _secrets.register(client_secret)
        self.redirect_uri = redirect_uri
        self.base_url = base_url.rstrip("/")
        if consent_page not in _CONSENT_PATHS:
            raise ValueError(f"consent_page must be 'current' or 'classic', not {consent_page!r}")
        self.consent_page: ConsentPage = consent_page
        if consent_base_url is None:
            on_spotware = consent_page == "current" and self.base_url == DEFAULT_BASE_URL
            consent_base_url = DEFAULT_CONSENT_BASE_URL if on_spotware else self.base_url
        self.consent_base_url = consent_base_url.rstrip("/")
        self.timeout = timeout
        self._verify = verify
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._closed = False
        self._consent_scopes: set[str] = set()
        """The scopes of the consent URLs this object built (what a code it receives was granted)."""

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
        """The consent page, without its query (see ``consent_page``)."""
        return f"{self.consent_base_url}{_CONSENT_PATHS[self.consent_page]}"

    @property
    def token_endpoint(self) -> str:
        return f"{self.base_url}/apps/token"

    def get_auth_uri(self, scope: Scope = "trading", state: str | None = None) -> str:
        """The consent page the user must open: ``auth_endpoint`` with ``client_id``,
        ``redirect_uri``, ``scope`` (and ``product=web`` on the current page) and ``state``.

        Pass a random ``state`` and check it on the redirect (``code_from_redirect``
        does); ``authorize_in_browser`` does both for you.
        """
        return self._auth_uri(scope, state, self.redirect_uri)

    def _auth_uri(self, scope: str, state: str | None, redirect_uri: str) -> str:
        if scope not in _SCOPES:
            raise ValueError(f"scope must be 'trading' or 'accounts', not {scope!r}")
        self._consent_scopes.add(scope)
        params = {"client_id": self.client_id, "redirect_uri": redirect_uri, "scope": scope}
        if self.consent_page == "current":
            params["product"] = "web"
        if state is not None:
            params["state"] = state
        return f"{self.auth_endpoint}?{urllib.parse.urlencode(params)}"

    # -- token endpoint ---------------------------------------------------------------------

    async def get_token(self, code: str, *, scope: Scope | None = None) -> TokenSet:
        """Exchange an authorization code (single use, valid about one minute) for tokens.

        The token set's ``scope`` is the one the server's reply states (``scope``); the
        cTrader token endpoint does not state it today, and then it is ``scope`` if given,
        else the scope of the consent URLs this object built (``get_auth_uri``) when they
        all asked for the same one - the code answers that consent - else ``None``. Over
        the socket, ``send_get_account_list_by_access_token_req`` tells the token's scope
        (``permission_scope``).
        """
        code = code.strip()
        if not code:
            raise OAuthError("MISSING_CODE", "the authorization code is empty")
        recorded: str | None = scope
        if recorded is None and len(self._consent_scopes) == 1:
            [recorded] = self._consent_scopes
        return await self._exchange(code, self.redirect_uri, recorded)

    async def refresh_token(self, refresh_token: str, *, scope: str | None = None) -> TokenSet:
        """Swap a refresh token for a new pair. The old pair stops working: persist the new one.

        A refreshed pair has the scope of the old one: pass it as ``scope`` (e.g.
        ``scope=tokens.scope``) to keep it on the new set, unless the reply states one.
        """
        if not refresh_token:
            raise OAuthError("MISSING_TOKEN", "the refresh token is empty")
        params = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": self.client_id,
            "client_secret": self._client_secret,
        }
        return await self._call_token_endpoint(params, scope=scope, hide=refresh_token)

    async def _exchange(self, code: str, redirect_uri: str, scope: str | None) -> TokenSet:
        params = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.client_id,
            "client_secret": self._client_secret,
        }
        return await self._call_token_endpoint(params, scope=scope, hide=code)

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
        self, params: Mapping[str, str], *, scope: str | None, hide: str
    ) -> TokenSet:
        """One token request; ``hide`` (the code or refresh token sent) is a secret from now on."""
        self._secrets.add(hide)
        _secrets.register(hide)
        grant = params.get("grant_type", "?")
        try:
            try:
                response = await self._client().get(self.token_endpoint, params=dict(params))
            except httpx.TimeoutException:
                raise OAuthError(
                    "TIMEOUT", f"no answer from {self.token_endpoint} within {self.timeout:g}s"
                ) from None
            except httpx.HTTPError as exc:
                detail = _clean(str(exc) or type(exc).__name__, self._secrets)
                raise OAuthError("CONNECTION_ERROR", f"{self.token_endpoint}: {detail}") from None
            tokens = parse_token_reply(
                response.status_code, response.content, scope=scope, hidden=self._secrets
            )
        except OAuthError as exc:
            logger.debug("token request (%s) failed: %s", grant, exc)
            raise
        self._secrets.add(tokens.access_token)
        self._secrets.add(tokens.refresh_token)
        logger.debug("token request (%s) succeeded; the access token expires at %s", grant, tokens.expires_at)
        return tokens

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

        Listens on the redirect URI's port on every loopback address its host means
        (``localhost``: 127.0.0.1 and ::1, and it refuses to start if another program holds
        either, since that program would receive the code), announces the consent
        URL through ``on_url``, opens it with :mod:`webbrowser` (which honours
        ``$BROWSER``) unless ``open_browser`` is false, waits up to ``timeout`` seconds
        for exactly one callback carrying our ``state``, exchanges the code at once and
        tells the browser how it went.

        Raises:
            OAuthError: ``CALLBACK_TIMEOUT``, the provider's ``error`` (consent refused),
                ``CALLBACK_PORT_IN_USE``, ``CALLBACK_UNAVAILABLE`` (the machine has no such
                loopback address), or whatever the token exchange raised.
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


def code_from_redirect(text: str, *, state: str | None = None, check_state: bool = True) -> str:
    """The authorization code from what the user pasted: the bare code or the redirected URL.

    A URL (or a bare query string such as ``code=...&state=...``) is checked: a provider
    ``error`` raises ``OAuthError`` with the provider's code, whatever the state (nothing
    is accepted then). When ``state`` is given, the URL must carry exactly that state:
    none at all raises ``OAuthError("STATE_MISSING")``, another one (or more than one)
    ``OAuthError("STATE_MISMATCH")``. ``check_state=False`` turns the check off, for a
    redirect known to drop the state.

    A bare code carries no state, so there is nothing to check: it is returned as it is,
    on the word of whoever pasted it. The code returned is registered as a secret.
    """
    text = text.strip()
    if not text:
        raise OAuthError("MISSING_CODE", "nothing was entered")
    looks_like_url = "://" in text or text.startswith(("/", "?"))
    if not looks_like_url and "code=" not in text and "error=" not in text:
        _secrets.register(text)
        return text  # the bare code
    parsed = urllib.parse.urlsplit(text)
    query = parsed.query or parsed.fragment or ("" if looks_like_url else text)
    values = urllib.parse.parse_qs(query, keep_blank_values=True)
    held = Secrets(values.get("code", []))
    _secrets.register(*values.get("code", []))
    if "error" in values:
        description = values.get("error_description", [""])[0] or None
        raise _error(values["error"][0] or "ACCESS_DENIED", description, None, held)
    if state is not None and check_state:
        got = values.get("state")
        if not got:
            raise OAuthError(
                "STATE_MISSING",
                "the redirect carries no state, but this session sent one: it is not the answer "
                "to this sign-in (pass check_state=False only for a provider that drops the state)",
            )
        if got != [state]:
            raise OAuthError("STATE_MISMATCH", "the redirect's state is not the one this session sent")
    code = values.get("code", [""])[0].strip()
    if not code:
        raise OAuthError("MISSING_CODE", "the URL has no code= parameter")
    return code


def parse_token_reply(
    status_code: int,
    body: bytes,
    *,
    scope: str | None = None,
    hidden: Iterable[str] | Secrets = (),
) -> TokenSet:
    """Turn a token-endpoint reply into a ``TokenSet`` or raise ``OAuthError``.

    Only ``OAuthError`` comes out of here, whatever the body: not JSON, nested too deep
    to parse (``INVALID_JSON``), a field of the wrong type or an ``expiresIn`` that is not
    a number of seconds between 0 and ``MAX_LIFETIME_SECONDS`` (``INVALID_REPLY``).
    ``hidden`` lists secrets to scrub from any text the server sent back (the tokens of
    the reply and every registered secret are scrubbed too); the tokens of a good reply
    are registered with the process-wide scrubber.
    """
    held = hidden if isinstance(hidden, Secrets) else Secrets(hidden)
    data = _json(body)
    if isinstance(data, dict):
        # Whatever happens next, the tokens this reply carries are secrets.
        for key in ("accessToken", "access_token", "refreshToken", "refresh_token"):
            value = data.get(key)
            if isinstance(value, str):
                held.add(value)
                _secrets.register(value)
    if not 200 <= status_code < 300:
        code = f"HTTP_{status_code}"
        description = "the token endpoint refused the request"
        if isinstance(data, dict):
            code = _server_text(data, "errorCode", "error") or code
            description = _server_text(data, "description", "error_description") or description
        raise _error(code, description, status_code, held)
    if not isinstance(data, dict):
        what = "is not JSON" if data is _NOT_JSON else "is not a JSON object"
        raise OAuthError("INVALID_JSON", f"the token endpoint's reply {what}", status_code=status_code)
    error_code = data.get("errorCode") or data.get("error")
    if error_code:
        if not isinstance(error_code, str):
            raise _invalid("errorCode", "a string", status_code)
        description = _server_text(data, "description", "error_description")
        raise _error(error_code, description or None, status_code, held)
    access_token = _string(data, "accessToken", "access_token", status_code)
    refresh_token = _string(data, "refreshToken", "refresh_token", status_code)
    if not access_token:
        raise OAuthError("MISSING_TOKEN", "the reply carries no access token", status_code=status_code)
    if not refresh_token:
        raise OAuthError("MISSING_TOKEN", "the reply carries no refresh token", status_code=status_code)
    token_type = _string(data, "tokenType", "token_type", status_code)
    reply_scope = _string(data, "scope", "scope", status_code)
    return TokenSet.from_expires_in(
        access_token,
        refresh_token,
        _seconds(_pick(data, "expiresIn", "expires_in"), status_code),
        token_type=token_type or "bearer",
        scope=reply_scope or scope,
    )


_NOT_JSON: Final = object()
_MAX_SERVER_TEXT: Final = 500
"""Server texts (error codes, descriptions) are cut to this many characters."""
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def _json(body: bytes) -> Any:
    """The parsed body, or ``_NOT_JSON``: never RecursionError (deep nesting) or ValueError."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # ValueError also covers integers beyond Python's digit limit for str -> int.
        return _NOT_JSON


def _pick(data: Mapping[str, Any], camel: str, snake: str) -> Any:
    value = data.get(camel)
    return data.get(snake) if value is None else value


def _string(data: Mapping[str, Any], camel: str, snake: str, status_code: int) -> str:
    """A string field; ``""`` when absent or null, ``OAuthError`` when of another type."""
    value = _pick(data, camel, snake)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _invalid(camel, "a string", status_code)
    return value


def _server_text(data: Mapping[str, Any], camel: str, snake: str) -> str:
    """An error field of a refusal: text only (any other type is ignored, the refusal stands)."""
    value = data.get(camel) or data.get(snake)
    return value if isinstance(value, str) else ""


def _invalid(field: str, expected: str, status_code: int) -> OAuthError:
    return OAuthError("INVALID_REPLY", f"{field} in the reply is not {expected}", status_code=status_code)


def _clean(text: str, held: Secrets) -> str:
    """A server text fit for a message: scrubbed, one line, bounded."""
    text = _CONTROL.sub(" ", _secrets.scrub(text, held)).strip()
    if len(text) > _MAX_SERVER_TEXT:
        text = text[: _MAX_SERVER_TEXT - 3] + "..."
    return text


def _error(code: str, description: str | None, status_code: int | None, held: Secrets) -> OAuthError:
    """An ``OAuthError`` from server texts, with every secret scrubbed from both."""
    return OAuthError(
        _clean(code, held) or "UNKNOWN_ERROR",
        (_clean(description, held) or None) if description else None,
        status_code=status_code,
    )


def _seconds(value: object, status_code: int) -> float | None:
    """``expiresIn`` as seconds in ``0 .. MAX_LIFETIME_SECONDS``; ``None`` when absent."""
    if value is None or value == "":
        return None
    number: float
    if isinstance(value, bool):
        number = math.nan
    elif isinstance(value, int):  # exact: float(10**400) would raise OverflowError
        number = float(value) if 0 <= value <= MAX_LIFETIME_SECONDS else math.nan
    elif isinstance(value, float):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = math.nan
    else:
        number = math.nan
    if not 0 <= number <= MAX_LIFETIME_SECONDS:  # NaN fails too
        raise _invalid("expiresIn", f"a number of seconds between 0 and {MAX_LIFETIME_SECONDS}", status_code)
    return number


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
    clean = [(k, REDACTED if k in _SECRET_PARAMS else v) for k, v in pairs]
    return url.copy_with(query=urllib.parse.urlencode(clean).encode("ascii"))


_HTTPX_FILTER = _RedactSecretQuery()
logging.getLogger("httpx").addFilter(_HTTPX_FILTER)
get_logger("httpx")  # then the registry's scrubber, for whatever else httpx logs
