"""Delivery of what arrives: routes per payload type, handlers, streams and the client's own events.

``on_envelope`` is the callback every link feeds its envelopes to. An envelope that answers
a request goes to the request (``answer_with``: the pipeline's correlation); every other
one - and execution events and order errors even when they answered - is parsed once and
handed to the sinks of its payload type: your streams and handlers first, then the
client's own reaction (``react``). ``emit`` delivers the client's own events
(``ClientEvent``) to the streams and handlers that asked for their class.

``on_envelope`` is also a ``_framing.BatchingSink``: its ``batch_routes`` let a link's
``FrameDecoder`` skip the envelope parse of unsolicited events and hand a run of them over as
one list, which a stream queues at once (``EventStream._push_many``). Only payload types the
client itself does not react to are batched, so the order in which your sinks and the
client's reactions see events does not change; within a run, each sink gets the whole run in
order, one sink after the other.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import inspect
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Final, Literal, TypeVar, cast

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtobufMessage

from ctrader_typed._base import ProtoWrapper, Wrapper
from ctrader_typed._client.scrubbing import TEXT_BEARING, Scrubber
from ctrader_typed._client.tasks import TaskSet
from ctrader_typed._filters import make_filter
from ctrader_typed._framing import ORDER_ERROR_PAYLOAD_TYPE, BatchRoute, Envelope, envelope_head
from ctrader_typed._generated.messages import LITE_BUILDERS
from ctrader_typed._generated.registry import PAYLOAD_TYPES
from ctrader_typed._lite import lite_class
from ctrader_typed._secrets import get_logger
from ctrader_typed.errors import RemoteProtocolError
from ctrader_typed.events import (
    DEFAULT_MAX_BYTES,
    SIZED,
    ClientEvent,
    Event,
    EventStream,
    UnknownMessage,
    size_hint,
)

__all__ = ["UNANSWERED", "EventRouter", "HandlerRegistration", "Unanswered"]

logger = get_logger("ctrader_typed.client")

T = TypeVar("T")

_EXECUTION_EVENT: Final = 2126  # ExecutionEvent.PAYLOAD_TYPE (a literal: compared per answered message)
MAX_UNKNOWN_TYPES: Final = 256
"""Distinct unknown payload types remembered (each is warned about once); past this, none is."""
UNKNOWN_WARNINGS_PER_MINUTE: Final = 10

Sink = Callable[[Any], None]
BatchSink = Callable[[list[Any]], None]
Ender = Callable[[BaseException | None], None]
_Route = tuple[
    type[Wrapper], Callable[[bytes], ProtobufMessage], Callable[[Any, bool], Wrapper], tuple[Sink, ...]
]
"""Dispatch entry of a payload type: wrapper class, its parse and build, then the sinks."""


class Unanswered(enum.Enum):
    UNANSWERED = "unanswered"


UNANSWERED: Final = Unanswered.UNANSWERED
"""What ``answer_with``'s correlation returns for an envelope that answers no request."""

Correlate = Callable[[int, str, bytes], "Wrapper | Literal[Unanswered.UNANSWERED] | None"]
"""(payload type, clientMsgId, payload) -> the answer delivered to its request (``None`` when it
could not be decoded), or ``UNANSWERED``."""


def _no_request(payload_type: int, client_msg_id: str, payload: bytes) -> Literal[Unanswered.UNANSWERED]:
    return UNANSWERED


class EnvelopeReceiver:
    """The router's inbound side as links see it: called with each envelope, and a
    ``_framing.BatchingSink`` (``batch_routes``) for the runs of unsolicited events."""

    __slots__ = ("_deliver", "batch_routes")

    def __init__(self, deliver: Callable[[Envelope], None], batch_routes: dict[int, BatchRoute]) -> None:
        self._deliver = deliver
        self.batch_routes = batch_routes

    def __call__(self, envelope: Envelope, /) -> None:
        self._deliver(envelope)


def _each(sink: Sink) -> BatchSink:
    """A per-event sink taking a list (a handler, the client's own reactions)."""

    def each(events: list[Any]) -> None:
        for event in events:
            sink(event)

    return each


def _all(sinks: tuple[BatchSink, ...]) -> BatchSink:
    def every(events: list[Any]) -> None:
        for sink in sinks:
            sink(events)

    return every


class HandlerRegistration:
    """What ``AsyncClient.on`` returns: call it to unregister the handler.

    A coroutine handler runs as a task per event, at most ``limit`` (the client's
    ``handler_task_limit``, by default its ``event_queue_size``) at a time: while that many are still running, further events are
    not handed to it and are counted in ``dropped`` (a warning is logged each time the
    handler falls behind). The events its running tasks hold are bounded in bytes too
    (``max_bytes``, the client's ``event_queue_bytes``). Memory stays bounded however slow
    the handler is.
    """

    __slots__ = ("_behind", "_unregister", "dropped", "limit", "max_bytes", "running", "running_bytes")

    def __init__(
        self, unregister: Callable[[], None], limit: int, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        self._unregister: Callable[[], None] | None = unregister
        self._behind = False
        self.limit = limit
        self.max_bytes = max_bytes
        """Bound on the frame bytes of the events its running tasks hold (large frames only)."""
        self.running_bytes = 0
        self.running = 0
        """Tasks of this (coroutine) handler still running."""
        self.dropped = 0
        """Events not handed to the handler because ``limit`` of its tasks were running."""

    def __repr__(self) -> str:
        return f"<HandlerRegistration running={self.running} dropped={self.dropped}>"

    def __call__(self) -> None:
        """Unregister the handler (running tasks finish); safe to call twice."""
        unregister, self._unregister = self._unregister, None
        if unregister is not None:
            unregister()

    def _admit(self, label: str, size: int = 0) -> bool:
        if self.running < self.limit and (size < SIZED or self.running_bytes + size <= self.max_bytes):
            return True
        self.dropped += 1
        if not self._behind:
            self._behind = True
            logger.warning(
                "event handler %s has %d events in progress; dropping events until it catches up",
                label,
                self.running,
            )
        return False

    def _finished(self, size: int) -> None:
        self.running -= 1
        if size >= SIZED:
            self.running_bytes -= size
        if self.running < self.limit:
            self._behind = False


class EventRouter:
    """Routes, sinks and streams of one client."""

    def __init__(
        self, *, queue_size: int, queue_bytes: int, task_limit: int, scrubber: Scrubber, tasks: TaskSet
    ) -> None:
        self.queue_size = queue_size
        self.queue_bytes = queue_bytes
        self.task_limit = task_limit
        self._scrubber = scrubber
        self._tasks = tasks
        self._size_hint = size_hint()
        self._correlate: Correlate = _no_request
        # payload type -> _Route; client-event class -> sinks.
        self._routes: dict[int, _Route] = {}
        self._user_sinks: dict[int, tuple[Sink, ...]] = {}
        self._internal_sinks: dict[int, Sink] = {}
        self._class_sinks: dict[type, tuple[Sink, ...]] = {}
        self._streams: dict[Sink, Ender] = {}
        """Open streams: their push -> how to end them."""
        self._batch_sinks: dict[Sink, BatchSink] = {}
        """Sinks that take a list at once (streams): their push -> that."""
        self.batch_routes: dict[int, BatchRoute] = {}
        """Envelope head (``_framing.envelope_head``) -> parse, build, deliver a run."""
        self._lite: set[int] = set()
        """Payload types whose batch route parses the lite variant (``ctrader_typed._lite``)."""
        self._lite_refused: set[int] = set()
        """Payload types that came the full way while their batch route was lite: never lite again."""
        self.on_envelope = EnvelopeReceiver(self._on_envelope, self.batch_routes)
        """The callback every link feeds its envelopes to (a ``_framing.BatchingSink``)."""
        self._ended = False
        self._end_error: BaseException | None = None
        self.unknown_seen: set[int] = set()
        self._unknown_warnings: collections.deque[float] = collections.deque(
            maxlen=UNKNOWN_WARNINGS_PER_MINUTE
        )
        self._unknown_suppressed = 0

    def answer_with(self, correlate: Correlate) -> None:
        """Envelopes carrying a ``clientMsgId`` are offered to ``correlate`` first."""
        self._correlate = correlate

    def react(self, event_type: type[Wrapper], sink: Sink) -> None:
        """The client's own reaction to ``event_type``: runs after every sink of yours, so you
        see the server's event before the events the client emits in response."""
        assert event_type.PAYLOAD_TYPE is not None
        self._internal_sinks[event_type.PAYLOAD_TYPE] = sink
        self._route(event_type.PAYLOAD_TYPE, event_type)

    # -- streams and handlers -----------------------------------------------------------------

    def stream(
        self,
        event_types: tuple[type[object], ...],
        *,
        account_id: int | None,
        symbol_id: int | None,
        maxsize: int | None,
    ) -> EventStream[Event]:
        """A new stream (see ``AsyncClient.events``); ended at once when the client has stopped.

        Raises:
            TypeError: No event type, or a filter the types cannot be filtered by
                (``_filters.check_filters``).
        """
        if not event_types:
            raise TypeError("events() needs at least one event type, e.g. client.events(SpotEvent)")
        return EventStream(
            event_types,
            account_id=account_id,
            symbol_id=symbol_id,
            maxsize=maxsize if maxsize is not None else self.queue_size,
            source=self,
            max_bytes=self.queue_bytes,
            hint=self._size_hint,
        )

    def attach(
        self,
        types: tuple[type[object], ...],
        push: Sink,
        finish: Ender,
        push_many: BatchSink | None = None,
    ) -> None:
        """A stream hands over its producer side (``EventStream`` calls this): ``push`` takes one
        event, ``push_many`` (if given) a list of them in order."""
        if self._ended:
            finish(self._end_error)
            return
        if push_many is not None:
            self._batch_sinks[push] = push_many
        self._attach(types, push)
        self._streams[push] = finish

    def detach(self, types: tuple[type[object], ...], push: Sink) -> None:
        """A stream was closed (``EventStream`` calls this)."""
        self._streams.pop(push, None)
        self._detach(types, push)
        self._batch_sinks.pop(push, None)

    def finish_streams(self, error: BaseException | None) -> None:
        """The client stopped: every stream ends (raising ``error`` if any), and so do later ones."""
        self._ended = True
        self._end_error = error
        streams, self._streams = self._streams, {}
        for finish in streams.values():
            finish(error)

    def on(
        self,
        event_type: type[T],
        handler: Callable[[T], object],
        *,
        account_id: int | None,
        symbol_id: int | None,
    ) -> HandlerRegistration:
        """Register ``handler`` (see ``AsyncClient.on``).

        Raises:
            TypeError: A filter ``event_type`` cannot be filtered by (``_filters.check_filters``).
        """
        accepts = make_filter(account_id, symbol_id, (event_type,))
        label = getattr(handler, "__qualname__", repr(handler))
        coroutine_function = inspect.iscoroutinefunction(handler)
        hint = self._size_hint
        tasks = self._tasks

        def sink(event: Any) -> None:
            if accepts is not None and not accepts(event):
                return
            size = hint[0]
            if coroutine_function and not registration._admit(label, size):
                return
            try:
                result = handler(event)
            except (Exception, asyncio.CancelledError):
                # A CancelledError out of a plain function cancels nothing of ours: it must not
                # reach the network reader (it would tear the link down).
                logger.exception("event handler %s failed on %s", label, type(event).__name__)
                return
            if inspect.isawaitable(result):
                if not coroutine_function and not registration._admit(label, size):
                    if inspect.iscoroutine(result):
                        result.close()
                    return
                registration.running += 1
                if size >= SIZED:
                    registration.running_bytes += size
                task = tasks.spawn(_run_handler(result, label), f"ctrader-typed handler {label}")
                task.add_done_callback(lambda _: registration._finished(size))

        registration = HandlerRegistration(
            lambda: self._detach((event_type,), sink), self.task_limit, self.queue_bytes
        )
        self._attach((event_type,), sink)
        return registration

    def emit(self, event: ClientEvent) -> None:
        """Deliver one of the client's own events."""
        for cls in type(event).__mro__:
            for sink in self._class_sinks.get(cls, ()):
                sink(event)

    def _attach(self, event_types: Iterable[type[object]], sink: Sink) -> None:
        for event_type in event_types:
            if isinstance(event_type, type) and issubclass(event_type, Wrapper):
                payload_type = event_type.PAYLOAD_TYPE
                if payload_type is None:
                    raise TypeError(
                        f"{event_type.__name__} is part of other messages and never arrives on its own"
                    )
                self._user_sinks[payload_type] = (*self._user_sinks.get(payload_type, ()), sink)
                self._route(payload_type, event_type)
            elif isinstance(event_type, type) and issubclass(event_type, ClientEvent):
                self._class_sinks[event_type] = (*self._class_sinks.get(event_type, ()), sink)
            else:
                raise TypeError(f"{event_type!r} is not an event type (a message wrapper or a ClientEvent)")

    def _detach(self, event_types: Iterable[type[object]], sink: Sink) -> None:
        for event_type in event_types:
            if issubclass(event_type, Wrapper) and event_type.PAYLOAD_TYPE is not None:
                payload_type = event_type.PAYLOAD_TYPE
                self._user_sinks[payload_type] = tuple(
                    s for s in self._user_sinks.get(payload_type, ()) if s != sink
                )
                self._route(payload_type, event_type)
            else:
                remaining = tuple(s for s in self._class_sinks.get(event_type, ()) if s != sink)
                if remaining:
                    self._class_sinks[event_type] = remaining
                else:
                    self._class_sinks.pop(event_type, None)

    def _route(self, payload_type: int, event_type: type[Wrapper]) -> None:
        """Rebuild the dispatch entry of a payload type: your sinks first, then the client's own."""
        sinks = self._user_sinks.get(payload_type, ())
        internal = self._internal_sinks.get(payload_type)
        if internal is not None:
            sinks = (*sinks, internal)
        if sinks:
            wrapper = cast(type[ProtoWrapper[Any]], event_type)
            # Parse and build bound once: the per-event path makes no further Python call.
            build: Callable[[Any, bool], Wrapper] = wrapper._from_proto
            if payload_type in TEXT_BEARING:
                build = self._scrubbing(build)
            parse = wrapper.PROTO.FromString
            self._routes[payload_type] = (event_type, parse, build, sinks)
        else:
            self._routes.pop(payload_type, None)
            self._user_sinks.pop(payload_type, None)
        head = envelope_head(payload_type)
        if head is None:
            return
        if sinks and internal is None:
            # Batched only when the client does not react itself: its reaction must keep following
            # each event's delivery to your sinks.
            batch_sinks = tuple(self._batch_sinks.get(sink) or _each(sink) for sink in sinks)
            deliver = batch_sinks[0] if len(batch_sinks) == 1 else _all(batch_sinks)
            lite = LITE_BUILDERS.get(payload_type)
            if (
                lite is not None
                and lite.wrapper is event_type
                and payload_type not in TEXT_BEARING
                and payload_type not in self._lite_refused
            ):
                # The lite builder refuses a message with a repeated sub-message (or a rare field):
                # that frame takes the full way (``_on_envelope``), which may turn the route off.
                self._lite.add(payload_type)
                self._lite_route(head, lite_class(wrapper.PROTO, lite.refused), lite.builder, deliver)
            else:
                self._lite.discard(payload_type)
                self.batch_routes[head] = (parse, build, deliver)
        else:
            self._lite.discard(payload_type)
            self.batch_routes.pop(head, None)

    def _lite_check(self, payload_type: int, cls: type[Wrapper], event: Wrapper) -> None:
        """An event of a lite batch route came the full way: the lite builder refused it, or the
        frame was unusual in another way (the first spot event after a subscription echoes the
        request's ``clientMsgId``). If it carries what the lite variant refuses (live bars), parse
        that payload type in full from now on: most of its events will."""
        if any(getattr(event, name) for name in LITE_BUILDERS[payload_type].turns_off):
            self._lite_refused.add(payload_type)
            self._route(payload_type, cls)

    def _lite_route(
        self,
        head: int,
        lite: type[ProtobufMessage],
        builder: Callable[[Any], Callable[[object, bool], Any]],
        deliver: Callable[[list[Any]], None],
    ) -> None:
        """A batch route that parses each frame into one lite message and wraps it from there
        (making a new message costs more than the parse). A run's events are wrappers that copied
        what they needed, so the message is free again for the next frame; a new one is made for
        each run all the same, because a parse into a message keeps any unknown fields it met in
        the message's memory until the message is dropped."""
        message = lite()

        def run_done(events: list[Any]) -> None:
            if self.batch_routes.get(head) is route:
                self._lite_route(head, lite, builder, deliver)
            deliver(events)

        route: BatchRoute = (message.ParseFromString, builder(message), run_done)
        self.batch_routes[head] = route

    def _scrubbing(self, build: Callable[[Any, bool], Wrapper]) -> Callable[[Any, bool], Wrapper]:
        scrub = self._scrubber.wrapper

        def scrubbed(message: Any, owned: bool) -> Wrapper:
            return scrub(build(message, owned))

        return scrubbed

    # -- inbound --------------------------------------------------------------------------------

    def _on_envelope(self, envelope: Envelope) -> None:
        """Deliver one envelope a link received."""
        payload_type = envelope.payloadType
        event: Wrapper | None = None
        # ``in`` first: most traffic (spot events) carries no clientMsgId, and reading an
        # absent string field still builds a str.
        if "clientMsgId" in envelope and (client_msg_id := envelope.clientMsgId):
            answer = self._correlate(payload_type, client_msg_id, envelope.payload)
            if answer is not UNANSWERED:
                event = answer
                if payload_type != _EXECUTION_EVENT and payload_type != ORDER_ERROR_PAYLOAD_TYPE:
                    return
        route = self._routes.get(payload_type)
        if route is None:
            if payload_type not in PAYLOAD_TYPES:
                self._on_unknown(payload_type, envelope)
            return
        cls, parse, build, sinks = route
        payload = envelope.payload
        if event is None:
            try:
                # What ``cls.from_bytes`` does (parsed messages are owned: lazy repeated fields).
                event = build(parse(payload), True)
            except DecodeError as exc:
                raise RemoteProtocolError(f"undecodable {cls.__name__} payload: {exc}") from exc
            except ValueError as exc:
                # A value this schema does not know (e.g. a newer enum member): keep it raw.
                logger.warning("cannot represent a %s: %s; delivering it raw", cls.__name__, exc)
                self._on_unknown(payload_type, envelope)
                return
        if payload_type in self._lite:
            self._lite_check(payload_type, cls, event)
        if len(payload) < SIZED:
            for sink in sinks:
                sink(event)
            return
        hint = self._size_hint
        hint[0] = len(payload)  # large frame: the queues count it with its size
        try:
            for sink in sinks:
                sink(event)
        finally:
            hint[0] = 0

    def _on_unknown(self, payload_type: int, envelope: Envelope) -> None:
        seen = self.unknown_seen
        if payload_type not in seen and len(seen) < MAX_UNKNOWN_TYPES:
            seen.add(payload_type)
            self._warn_unknown(payload_type)
        elif logger.isEnabledFor(logging.DEBUG):
            logger.debug("received unknown payload type %d", payload_type)
        payload = envelope.payload
        if not self._class_sinks:
            return
        hint = self._size_hint
        hint[0] = len(payload) if len(payload) >= SIZED else 0
        try:
            self.emit(
                UnknownMessage(
                    payload_type=payload_type,
                    payload=payload,
                    client_msg_id=envelope.clientMsgId or None,
                )
            )
        finally:
            hint[0] = 0

    def _warn_unknown(self, payload_type: int) -> None:
        """A warning per new unknown payload type, at most ``UNKNOWN_WARNINGS_PER_MINUTE``."""
        now = time.monotonic()
        recent = self._unknown_warnings
        if len(recent) == recent.maxlen and now - recent[0] < 60.0:
            self._unknown_suppressed += 1
            return
        recent.append(now)
        suppressed, self._unknown_suppressed = self._unknown_suppressed, 0
        logger.warning(
            "received unknown payload type %d; delivering it as UnknownMessage%s",
            payload_type,
            f" ({suppressed} more new unknown types were not logged)" if suppressed else "",
        )


async def _run_handler(awaitable: Any, label: str) -> None:
    try:
        await awaitable
    except Exception:
        logger.exception("event handler %s failed", label)
