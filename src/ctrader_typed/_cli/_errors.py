"""One line (and an exit status) for every failure a user can act on."""

from __future__ import annotations

import socket
import ssl

import httpx

from ctrader_typed._cli._common import EXIT_FAILURE, EXIT_USAGE, CLIError
from ctrader_typed.errors import (
    APIError,
    AuthenticationError,
    ConnectionClosedError,
    CTraderError,
    OAuthError,
    RequestTimeoutError,
)
from ctrader_typed.tokens import TokenStoreError

__all__ = ["describe", "oauth_hint"]

TOKEN_CODES = frozenset({"CH_ACCESS_TOKEN_INVALID", "OA_AUTH_TOKEN_EXPIRED"})
APP_CODES = frozenset({"CH_CLIENT_AUTH_FAILURE", "CH_OA_CLIENT_NOT_FOUND"})


def oauth_hint(exc: OAuthError) -> str:
    """What to do about an OAuth failure, from its code and the server's words."""
    text = f"{exc.error_code} {exc.description or ''}".lower()
    if exc.error_code == "CALLBACK_TIMEOUT":
        return "finish the sign-in in the browser sooner, or use --manual"
    if exc.error_code == "CALLBACK_PORT_IN_USE":
        return "another program uses that port; stop it or register and pass another --redirect-uri"
    if "redirect" in text:
        return "the redirect URI must match a registered one exactly (scheme, host, port and path)"
    if "code" in text or "grant" in text:
        return "authorization codes work once and for about one minute: run 'ctrader-typed auth' again"
    if "refresh" in text:
        return "refresh tokens work once; sign in again with 'ctrader-typed auth'"
    if "client" in text or "credential" in text or "secret" in text:
        return "check CTRADER_CLIENT_ID and CTRADER_CLIENT_SECRET, and that the application is active"
    return ""


def describe(exc: BaseException) -> tuple[str | None, int]:
    """``(message, exit status)``; ``(None, 1)`` for errors that are bugs and deserve a traceback."""
    if isinstance(exc, CLIError):
        return str(exc), exc.exit_code
    if isinstance(exc, OAuthError):
        hint = oauth_hint(exc)
        return f"sign-in failed: {exc}" + (f"; {hint}" if hint else ""), EXIT_FAILURE
    if isinstance(exc, AuthenticationError) and exc.error_code in TOKEN_CODES:
        return (
            f"the access token was refused ({exc.error_code}: it expired or was revoked); "
            "run 'ctrader-typed auth' to sign in again",
            EXIT_FAILURE,
        )
    if isinstance(exc, AuthenticationError) and exc.error_code in APP_CODES:
        return (
            f"the application credentials were refused ({exc.error_code}); "
            "check CTRADER_CLIENT_ID and CTRADER_CLIENT_SECRET",
            EXIT_FAILURE,
        )
    if isinstance(exc, APIError):
        return f"the server refused the request: {exc}", EXIT_FAILURE
    if isinstance(exc, TokenStoreError):
        return f"{exc}; delete it and run 'ctrader-typed auth'", EXIT_USAGE
    if isinstance(exc, ConnectionClosedError):
        return f"the connection closed: {exc}", EXIT_FAILURE
    if isinstance(exc, RequestTimeoutError):
        return f"no answer in time: {exc}", EXIT_FAILURE
    if isinstance(exc, CTraderError):
        return str(exc), EXIT_FAILURE
    if isinstance(exc, httpx.HTTPError):
        return f"an HTTP request failed: {type(exc).__name__}: {exc}", EXIT_FAILURE
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"the server's TLS certificate was not trusted ({exc.verify_message}); "
            "for a simulator pass its CA with --ca-file",
            EXIT_FAILURE,
        )
    if isinstance(exc, ConnectionError | socket.gaierror):
        return f"cannot connect: {exc.strerror or exc}", EXIT_FAILURE
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}", EXIT_FAILURE
    return None, EXIT_FAILURE
