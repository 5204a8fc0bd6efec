"""The secrets a client holds, and the scrubbing of them out of every text the server wrote.

Every secret the client sends or receives (client secret, access and refresh tokens) is
remembered here; server-written text (error descriptions, disconnect reasons) is scrubbed
of all of them before it reaches an exception, a log record or an event.
"""

from __future__ import annotations

import dataclasses
from typing import Final, TypeVar

from google.protobuf.message import Message as ProtobufMessage

from ctrader_typed._base import ProtoWrapper, Wrapper
from ctrader_typed._generated.messages import (
    AccountsTokenInvalidatedEvent,
    ClientDisconnectEvent,
    CommonErrorRes,
    ErrorRes,
    ExecutionEvent,
    OrderErrorEvent,
)
from ctrader_typed._generated.registry import PAYLOAD_TYPES
from ctrader_typed._secrets import Secrets, register, scrub, scrub_exception
from ctrader_typed.errors import APIError, api_error_from

__all__ = ["TEXT_BEARING", "Scrubber"]

W = TypeVar("W", bound=Wrapper)
X = TypeVar("X", bound=BaseException)

_SECRET_FIELDS: Final = {"clientSecret", "accessToken", "refreshToken"}
_SECRET_REQUESTS: Final = {
    pt: tuple(f.name for f in cls.PROTO.DESCRIPTOR.fields if f.name in _SECRET_FIELDS)
    for pt, cls in PAYLOAD_TYPES.items()
    if issubclass(cls, ProtoWrapper) and any(f.name in _SECRET_FIELDS for f in cls.PROTO.DESCRIPTOR.fields)
}
"""Payload type -> the fields of it that carry a secret (the client holds what it sends)."""
_TEXT_FIELDS: Final = ("description", "reason", "error_code")
TEXT_BEARING: Final = frozenset(
    cls.PAYLOAD_TYPE
    for cls in (
        CommonErrorRes,
        ErrorRes,
        OrderErrorEvent,
        ExecutionEvent,
        AccountsTokenInvalidatedEvent,
        ClientDisconnectEvent,
    )
    if cls.PAYLOAD_TYPE is not None
)
"""Inbound messages whose server-written text may echo a secret: scrubbed before delivery."""


class Scrubber:
    """The secrets of one client, and the texts scrubbed of them."""

    __slots__ = ("secrets",)

    def __init__(self) -> None:
        self.secrets = Secrets()

    def hold(self, *secrets: str | None) -> None:
        """Remember secrets the client holds or sends, to scrub them from every text."""
        for secret in secrets:
            self.secrets.add(secret)
        register(*secrets)

    def hold_sent(self, payload_type: int, message: ProtobufMessage) -> None:
        """Remember the secrets a request of ``payload_type`` carries."""
        fields = _SECRET_REQUESTS.get(payload_type)
        if fields:
            self.hold(*(getattr(message, field) for field in fields))

    def text(self, text: str) -> str:
        return scrub(text, self.secrets)

    def exception(self, error: X) -> X:
        return scrub_exception(error, self.secrets)

    def wrapper(self, wrapper: W) -> W:
        """``wrapper`` with every server-written text scrubbed of the secrets the client holds."""
        changes: dict[str, str] = {}
        for name in _TEXT_FIELDS:
            value = getattr(wrapper, name, None)
            if isinstance(value, str) and value:
                clean = scrub(value, self.secrets)
                if clean != value:
                    changes[name] = clean
        return dataclasses.replace(wrapper, **changes) if changes else wrapper  # type: ignore[type-var]

    def api_error(self, message: ErrorRes | CommonErrorRes | OrderErrorEvent) -> APIError:
        """The ``APIError`` of an error answer, scrubbed."""
        error = api_error_from(self.wrapper(message))
        scrub_exception(error, self.secrets)
        return error
