"""Exceptions raised by ctrader-typed. One root, split by who failed::

    CTraderError
    ├── APIError                 the server answered with an error (ErrorRes / ProtoErrorRes)
    │   ├── AuthenticationError  credentials, tokens or account authorisation rejected
    │   ├── RateLimitError       REQUEST_FREQUENCY_EXCEEDED / BLOCKED_PAYLOAD_TYPE
    │   └── OrderError           a trading request was refused (OrderErrorEvent)
    ├── ConnectionClosedError    the link dropped; in-flight requests fail at once
    │   ├── TLSVerificationError the server's certificate was not trusted
    │   └── MaintenanceError     the server is down for longer than the client may wait
    ├── RequestTimeoutError      no answer in time (also a built-in TimeoutError)
    ├── ProtocolError            bytes on the wire broke the framing or the schema
    │   ├── LocalProtocolError   we were asked to send something invalid
    │   └── RemoteProtocolError  the peer sent something invalid
    └── OAuthError               the OAuth HTTP endpoints refused or answered garbage

Every error built from a server message keeps that message as ``raw``.
Messages never contain secrets (client secret, access or refresh tokens).

``APIError.error_code`` is a member of the schema's error-code enums (``ErrorCode``,
``CommonErrorCode``) when the code is one the schema lists, else the text the server sent.
Those enums are string-valued, so both comparisons hold::

    exc.error_code == ErrorCode.NOT_ENOUGH_MONEY    # checked by the type checker
    exc.error_code == "NOT_ENOUGH_MONEY"            # the same test, unchecked
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeAlias

from ctrader_typed._generated.enums import CommonErrorCode, ErrorCode
from ctrader_typed._generated.messages import CommonErrorRes, ErrorRes, OrderErrorEvent

__all__ = [
    "APIError",
    "AuthenticationError",
    "CTraderError",
    "ConnectionClosedError",
    "ErrorCodeValue",
    "LocalProtocolError",
    "MaintenanceError",
    "MissingExtraError",
    "OAuthError",
    "OrderError",
    "ProtocolError",
    "RateLimitError",
    "RemoteProtocolError",
    "RequestTimeoutError",
    "TLSVerificationError",
    "api_error_from",
    "error_code_of",
    "maintenance_end_from",
]

AUTHENTICATION_CODES = frozenset(
    {
        "OA_AUTH_TOKEN_EXPIRED",
        "ACCOUNT_NOT_AUTHORIZED",
        "RET_NO_SUCH_LOGIN",
        "RET_ACCOUNT_DISABLED",
        "CH_CLIENT_AUTH_FAILURE",
        "CH_CLIENT_NOT_AUTHENTICATED",
        "CH_ACCESS_TOKEN_INVALID",
        "CH_CTID_TRADER_ACCOUNT_NOT_FOUND",
        "CH_OA_CLIENT_NOT_FOUND",
    }
)
RATE_LIMIT_CODES = frozenset({"REQUEST_FREQUENCY_EXCEEDED", "BLOCKED_PAYLOAD_TYPE"})

# A maintenance end above this is in milliseconds (year 5138 in seconds).
_MS_THRESHOLD = 100_000_000_000

ErrorCodeValue: TypeAlias = ErrorCode | CommonErrorCode | str
"""An error code: a member of a schema error-code enum, or the server's text for a code the
schema does not list (or a local code such as ``"NO_REFRESH_TOKEN"``)."""

_KNOWN_CODES: dict[str, ErrorCode | CommonErrorCode] = {
    **{member.value: member for member in CommonErrorCode},
    **{member.value: member for member in ErrorCode},
}


def error_code_of(name: str) -> ErrorCodeValue:
    """``name`` as a member of ``ErrorCode`` or ``CommonErrorCode`` when the schema lists it
    (the Open API layer's ``ErrorCode`` first), else ``name`` itself, unchanged."""
    return _KNOWN_CODES.get(name, name)


class CTraderError(Exception):
    """Root of every error raised by ctrader-typed."""


class APIError(CTraderError):
    """The server answered a request with an error.

    Attributes:
        error_code: The error's name as the server sent it: an ``ErrorCode`` or
            ``CommonErrorCode`` member when the schema lists it (``ErrorCode.TRADING_BAD_VOLUME``,
            equal to ``"TRADING_BAD_VOLUME"`` too), else the text itself, kept verbatim.
        description: The server's human-readable text, if any.
        account_id: The ``ctidTraderAccountId`` the error concerns, if the server said.
        retry_after: Seconds until the payload type is unblocked (``BLOCKED_PAYLOAD_TYPE``).
        maintenance_end: When the current maintenance ends, as an aware UTC datetime.
        raw: The server's message, unchanged.
    """

    def __init__(
        self,
        error_code: str,
        description: str | None = None,
        *,
        account_id: int | None = None,
        retry_after: float | None = None,
        maintenance_end: datetime | None = None,
        raw: ErrorRes | CommonErrorRes | OrderErrorEvent | None = None,
    ) -> None:
        self.error_code: ErrorCodeValue = error_code_of(error_code)
        self.description = description
        self.account_id = account_id
        self.retry_after = retry_after
        self.maintenance_end = maintenance_end
        self.raw = raw
        text = str(self.error_code) if not description else f"{self.error_code}: {description}"
        if account_id:
            text += f" (account {account_id})"
        if retry_after is not None:
            text += f" (retry after {retry_after:g}s)"
        if maintenance_end is not None:
            text += f" (maintenance until {maintenance_end.isoformat()})"
        super().__init__(text)


class AuthenticationError(APIError):
    """Application credentials, an access token or an account authorisation was rejected."""


class RateLimitError(APIError):
    """The server throttled the request. ``retry_after`` says for how long, when known."""


class OrderError(APIError):
    """A trading request was refused by the server (``OrderErrorEvent``)."""

    def __init__(
        self,
        error_code: str,
        description: str | None = None,
        *,
        account_id: int | None = None,
        order_id: int | None = None,
        position_id: int | None = None,
        raw: OrderErrorEvent | None = None,
    ) -> None:
        self.order_id = order_id
        self.position_id = position_id
        super().__init__(error_code, description, account_id=account_id, raw=raw)


class ConnectionClosedError(CTraderError):
    """The connection closed before the operation completed.

    ``may_have_been_sent`` is true when the request's bytes had already been handed to
    the socket: the server may have acted on it (an order may exist). ctrader-typed never
    resends such a trading request on its own.
    """

    def __init__(self, message: str = "connection closed", *, may_have_been_sent: bool = False) -> None:
        self.may_have_been_sent = may_have_been_sent
        super().__init__(message)


class TLSVerificationError(ConnectionClosedError):
    """The server's TLS certificate was not trusted (unknown CA, wrong host name, expired).

    Nothing was sent. Pass the CA that signed the server's certificate as
    ``ssl_context=ssl.create_default_context(cafile=...)`` (a simulator's is
    ``sim.ssl_context`` / ``sim.ca_file``); ``verify_message`` is OpenSSL's reason.
    """

    def __init__(self, message: str, *, verify_message: str | None = None) -> None:
        self.verify_message = verify_message
        super().__init__(message, may_have_been_sent=False)


class MaintenanceError(ConnectionClosedError):
    """The server announced maintenance ending later than the client's ``max_maintenance_wait``
    allows; the client stopped instead of waiting. ``maintenance_end`` is the announced end."""

    def __init__(self, message: str, *, maintenance_end: datetime | None = None) -> None:
        self.maintenance_end = maintenance_end
        super().__init__(message, may_have_been_sent=True)


class MissingExtraError(CTraderError, ImportError):
    """A feature needs an optional extra that is not installed (``pip install 'ctrader-typed[EXTRA]'``).

    ``extra`` names the extra, ``package`` the distribution it brings in.
    """

    def __init__(self, feature: str, *, extra: str, package: str) -> None:
        self.extra = extra
        self.package = package
        super().__init__(f"{feature} needs the '{package}' package: pip install 'ctrader-typed[{extra}]'")


class RequestTimeoutError(CTraderError, TimeoutError):
    """No answer arrived within the timeout. The request may still have been processed."""


class ProtocolError(CTraderError):
    """Bytes on the wire broke the framing or could not be decoded."""


class LocalProtocolError(ProtocolError):
    """We were asked to send something the protocol cannot carry."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that break the framing or the schema."""


class OAuthError(CTraderError):
    """The OAuth endpoints refused a request or answered something unusable.

    Attributes:
        error_code: The ``errorCode`` of the reply, or a local code such as ``"HTTP_401"``
            or ``"INVALID_JSON"``.
        description: The server's description, or what was wrong with the reply.
        status_code: The HTTP status, when there was a reply.
    """

    def __init__(
        self, error_code: str, description: str | None = None, *, status_code: int | None = None
    ) -> None:
        self.error_code = error_code
        self.description = description
        self.status_code = status_code
        text = error_code if not description else f"{error_code}: {description}"
        if status_code is not None:
            text += f" (HTTP {status_code})"
        super().__init__(text)


def maintenance_end_from(value: int | None, *, unit_hint: str) -> datetime | None:
    """Convert a maintenance end timestamp to an aware UTC datetime.

    ``ProtoErrorRes`` documents milliseconds and ``ProtoOAErrorRes`` seconds
    (``unit_hint`` is ``"ms"`` or ``"s"``); values are checked by magnitude too, since
    servers have been seen to disagree with their own schema. Zero, negative and
    unrepresentable values (past year 9999) give ``None``: the end is unknown.
    """
    if not value or value < 0:
        return None
    seconds = value / 1000 if unit_hint == "ms" or value > _MS_THRESHOLD else float(value)
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (ValueError, OverflowError, OSError):
        # Beyond what datetime represents (past year 9999): the end is unknown, not an error;
        # the raw value stays on the exception's ``raw`` message.
        return None


def api_error_from(message: ErrorRes | CommonErrorRes | OrderErrorEvent) -> APIError:
    """Build the most specific ``APIError`` for a server error message."""
    if isinstance(message, OrderErrorEvent):
        return OrderError(
            message.error_code,
            message.description,
            account_id=message.ctid_trader_account_id,
            order_id=message.order_id,
            position_id=message.position_id,
            raw=message,
        )
    if isinstance(message, ErrorRes):
        account_id = message.ctid_trader_account_id
        retry_after = float(message.retry_after) if message.retry_after is not None else None
        maintenance_end = maintenance_end_from(message.maintenance_end_timestamp, unit_hint="s")
    else:
        account_id = None
        retry_after = None
        maintenance_end = maintenance_end_from(message.maintenance_end_timestamp, unit_hint="ms")
    cls: type[APIError] = APIError
    if message.error_code in AUTHENTICATION_CODES:
        cls = AuthenticationError
    elif message.error_code in RATE_LIMIT_CODES:
        cls = RateLimitError
    return cls(
        message.error_code,
        message.description,
        account_id=account_id,
        retry_after=retry_after,
        maintenance_end=maintenance_end,
        raw=message,
    )
