"""Hand-written bases that the generated code builds on.

``Wrapper`` is the untyped-by-message view every generated wrapper shares (what the
registry and the client's dispatch need); ``ProtoWrapper[P]`` adds the conversions
typed by the protobuf class ``P``. Generated wrappers are frozen, slotted dataclasses
deriving from ``ProtoWrapper``. ``RequestSender`` declares the one primitive that every
generated ``send_*_req`` coroutine calls.
"""

from __future__ import annotations

from typing import ClassVar, Generic, Self, TypeVar, cast

from google.protobuf.message import Message as ProtobufMessage

__all__ = ["ProtoWrapper", "RequestSender", "Wrapper"]

P = TypeVar("P", bound=ProtobufMessage)
W = TypeVar("W", bound="Wrapper")


class Wrapper:
    """What every generated message wrapper offers, whatever its protobuf class.

    ``PROTO`` is the protobuf class the wrapper mirrors; ``PAYLOAD_TYPE`` is the
    message's payload-type number, or ``None`` for model messages that never travel on
    their own.
    """

    __slots__ = ()

    PROTO: ClassVar[type[ProtobufMessage]]
    PAYLOAD_TYPE: ClassVar[int | None] = None

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Parse serialized protobuf bytes (a ``ProtoMessage.payload``) into the wrapper."""
        raise NotImplementedError

    def to_proto(self) -> ProtobufMessage:
        """Build the protobuf message this wrapper mirrors."""
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """Serialize to protobuf bytes; raises ``EncodeError`` if a required field is unset."""
        return self.to_proto().SerializeToString()


class ProtoWrapper(Wrapper, Generic[P]):
    """A wrapper whose conversions are typed by its protobuf class ``P``."""

    __slots__ = ()

    @classmethod
    def from_proto(cls, m: P) -> Self:
        """Build the wrapper from its protobuf message."""
        raise NotImplementedError

    def to_proto(self) -> P:
        """Build the protobuf message this wrapper mirrors."""
        raise NotImplementedError

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Parse serialized protobuf bytes (a ``ProtoMessage.payload``) into the wrapper."""
        return cls.from_proto(cast(P, cls.PROTO.FromString(data)))


class RequestSender:
    """The single primitive behind every generated ``send_*_req`` method.

    The network client implements it; tests may implement it in memory.
    """

    __slots__ = ()

    async def _request(
        self,
        message: ProtobufMessage,
        response_type: type[W],
        *,
        timeout: float | None = None,
    ) -> W:
        """Send ``message`` and return its answer wrapped as ``response_type``."""
        raise NotImplementedError
