"""One line (and an exit status) for every failure a user can act on.

Every message passes through ``_secrets.scrub``: a server or library that echoes a secret
(the client secret, a token) in its text does not get it onto the CLI's stderr.
"""

from __future__ import annotations

import socket
import ssl

import httpx

from ctrader_typed import _secrets
from ctrader_typed._cli._common import EXIT_FAILURE, EXIT_USAGE, CLIError
from ctrader_typed.errors import (
    APIError,
    AuthenticationError,
    ConnectionClosedError,
    CTraderError,
    MaintenanceError,
    OAuthError,
    RequestTimeoutError,
    TLSVerificationError,
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
    if exc.error_code == "CALLBACK_UNAVAILABLE":
        return "no loopback address can be bound on this machine; use --manual"
    if exc.error_code == "STATE_MISSING":
        return "paste the whole redirected URL (it carries the state), or run 'ctrader-typed auth' again"
    if "redirect" in text:
        return "the redirect URI must match a registered one exactly (scheme, host, port and path)"
    if "code" in text or "grant" in text:
        return "authorization codes work once and for about one minute: run 'ctrader-typed auth' again"
    if "refresh" in text:
        return "refresh tokens work once; sign in again with 'ctrader-typed auth'"
    if "client" in text or "credential" in text or "secret" in text:
        return "check CTRADER_CLIENT_ID and CTRADER_CLIENT_SECRET, and that the application is active"
    return ""


CA_HINT = (
    "if the server uses its own CA (a simulator's is its ca_file), pass it with --ca-file PEM "
    "or CTRADER_CA_FILE"
)


def describe(exc: BaseException) -> tuple[str | None, int]:
    """``(message, exit status)``; ``(None, 1)`` for errors that are bugs and deserve a traceback.

    The message is one line with every registered secret scrubbed out.
    """
    message, status = _describe(exc)
    if message is None:
        return None, status
    return " ".join(_secrets.scrub(message).splitlines()), status


def _describe(exc: BaseException) -> tuple[str | None, int]:
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
    if isinstance(exc, TLSVerificationError):
        reason = exc.verify_message or str(exc)
        return f"the server's TLS certificate was not trusted ({reason}); {CA_HINT}", EXIT_FAILURE
    if isinstance(exc, MaintenanceError):
        return f"the server is under maintenance: {exc}; try again after it ends", EXIT_FAILURE
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
            f"the server's TLS certificate was not trusted ({exc.verify_message}); {CA_HINT}",
            EXIT_FAILURE,
        )
    if isinstance(exc, ConnectionError | socket.gaierror):
        return f"cannot connect: {exc.strerror or exc}", EXIT_FAILURE
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}", EXIT_FAILURE
    return None, EXIT_FAILURE
