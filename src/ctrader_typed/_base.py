"""Hand-written bases that the generated code builds on.

``Wrapper`` is the untyped-by-message view every generated wrapper shares (what the
registry and the client's dispatch need); ``ProtoWrapper[P]`` adds the conversions
typed by the protobuf class ``P``. Generated wrappers are frozen, slotted dataclasses
deriving from ``ProtoWrapper``. ``RequestSender`` declares the one primitive that every
generated ``send_*_req`` coroutine calls.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Generic, NamedTuple, Self, TypeVar, cast

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
        """Build the wrapper from a protobuf message.

        Everything is converted at once, so later changes to ``m`` never show through.
        """
        return cls._from_proto(m, False)

    @classmethod
    def _from_proto(cls, m: P, owned: bool) -> Self:
        """Build the wrapper; ``owned`` messages are private to it and may be read lazily."""
        raise NotImplementedError

    def to_proto(self) -> P:
        """Build the protobuf message this wrapper mirrors."""
        raise NotImplementedError

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Parse serialized protobuf bytes (a ``ProtoMessage.payload``) into the wrapper.

        Repeated sub-messages (a symbol list, a page of bars) are wrapped the first time
        the field is read, so decoding a large answer costs little more than parsing it.
        """
        return cls._from_proto(cast(P, cls.PROTO.FromString(data)), True)


class LiteMessageRefused(Exception):
    """A lite builder (``_generated.messages.LITE_BUILDERS``) met a field it refuses (one its lite
    variant reads as bytes, or one that is rarely there: ``ctrader_typed._lite``): the message must
    be parsed in full. Internal: the frame decoder takes such a frame the full way, and this never
    reaches you."""

    def __init__(self, wrapper: str, field: str) -> None:
        super().__init__(f"{wrapper} carries {field}: parse it in full")


class LiteEvent(NamedTuple):
    """An event with a lite variant (``_generated.messages.LITE_BUILDERS``, ``ctrader_typed._lite``)."""

    wrapper: type[Wrapper]
    builder: Callable[[Any], Callable[[object, bool], Any]]
    """Given the lite message that each frame is parsed into, the ``build(parsed, owned)`` of the
    stream fast path (raising ``LiteMessageRefused`` for a message it refuses)."""
    refused: tuple[str, ...]
    """The schema names of the fields the lite variant gathers in its oneof ``lite_refused``."""
    turns_off: tuple[str, ...]
    """The wrapper fields that, when an event of the full parse has them, make the client stop
    using the lite variant (the repeated sub-messages: once live bars come, most events have them)."""


# From this many items on, wrapping a repeated field runs with the cyclic garbage collector
# paused: every wrapper is a new container object, and the collections their allocation
# triggers (full ones included, which walk every object of the process) only find them
# alive. Measured on 100,000 bars: about a fifth of the wrapping time.
_PAUSE_GC_FROM = 1_000


class _Pending:
    """A repeated sub-message field of a parsed message, not wrapped yet.

    ``many`` is the generated list builder of the item wrapper (``_X_many(items, owned)``).
    """

    __slots__ = ("items", "many")

    def __init__(self, items: Sequence[Any], many: Callable[[Sequence[Any], bool], tuple[Any, ...]]) -> None:
        self.items = items
        self.many = many

    def materialize(self) -> tuple[Any, ...]:
        items = self.items
        if len(items) < _PAUSE_GC_FROM or not gc.isenabled():
            return self.many(items, True)
        gc.disable()
        try:
            return self.many(items, True)
        finally:
            gc.enable()


class _LazyField:
    """Data descriptor over a slot that turns a ``_Pending`` value into a tuple on first read."""

    __slots__ = ("_slot",)

    def __init__(self, slot: Any) -> None:
        self._slot = slot

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = self._slot.__get__(obj, owner)
        if type(value) is _Pending:
            value = value.materialize()
            self._slot.__set__(obj, value)
        return value

    def __set__(self, obj: object, value: object) -> None:
        self._slot.__set__(obj, value)

    def __delete__(self, obj: object) -> None:
        self._slot.__delete__(obj)


def _install_lazy(cls: type, *names: str) -> None:
    """Let the named slots of a generated wrapper hold ``_Pending`` values until read."""
    for name in names:
        setattr(cls, name, _LazyField(cls.__dict__[name]))


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
