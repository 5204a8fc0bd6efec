"""The request pipeline: every ``send_*_req`` goes through ``RequestPipeline.call``, which

* waits until the link is usable (while the client reconnects, requests wait for the
  restored session, within their timeout),
* paces them well under the per-connection limits (``_pacing.SendGate``),
* honours ``BLOCKED_PAYLOAD_TYPE`` locks and ``REQUEST_FREQUENCY_EXCEEDED`` refusals: a
  request refused that way was not executed, so it is sent again once the lock ends -
  trading requests included - within ``rate_limit_retries``, ``rate_limit_max_wait``
  and the caller's timeout (past those it raises ``RateLimitError``),
* correlates the answer by ``clientMsgId`` (``correlate``, offered every inbound
  envelope that carries one) and raises ``APIError`` subclasses for error answers,
* fails at once with ``ConnectionClosedError`` when the link drops, with
  ``RequestTimeoutError`` on timeout, and leaves nothing behind when the caller is cancelled,
* renews a refused held access token once (``tokens.TokenKeeper.renew_refused``), takes
  "already done" refusals as success, and records what a successful request means for
  the session - each request's rules are its policy (``_generated.registry.REQUEST_POLICIES``,
  from ``protos/policy.toml``).

An ``internal`` request (the client restoring its session) belongs to the link it started
on: it does not wait for the session to be ready, and fails when that link drops.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
import logging
import math
from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal, TypeVar, cast

from google.protobuf.message import DecodeError, EncodeError
from google.protobuf.message import Message as ProtobufMessage

from ctrader_typed._base import ProtoWrapper, Wrapper
from ctrader_typed._client.maintenance import Maintenance
from ctrader_typed._client.options import ClientSettings
from ctrader_typed._client.orders import OrderBook
from ctrader_typed._client.router import UNANSWERED, Unanswered
from ctrader_typed._client.scrubbing import _SECRET_REQUESTS as SECRET_REQUESTS
from ctrader_typed._client.scrubbing import Scrubber
from ctrader_typed._client.session import SessionState
from ctrader_typed._client.state import ClientState, Lifecycle
from ctrader_typed._client.tokens import TokenKeeper
from ctrader_typed._framing import Answer, PendingTable, encode_envelope, encode_request, envelope_prefix
from ctrader_typed._generated import OpenApiMessages_pb2 as _pb
from ctrader_typed._generated.messages import (
    CommonErrorRes,
    ErrorRes,
    ExecutionEvent,
    OrderErrorEvent,
    RefreshTokenRes,
)
from ctrader_typed._generated.registry import (
    PAYLOAD_TYPES,
    REQUEST_POLICIES,
    TRADING_PAYLOAD_TYPES,
    RequestPolicy,
    payload_type_of,
)
from ctrader_typed._pacing import SendGate, Turn
from ctrader_typed._ratelimit import RateLimiter
from ctrader_typed._secrets import get_logger
from ctrader_typed._transport import Link
from ctrader_typed.errors import (
    APIError,
    ConnectionClosedError,
    CTraderError,
    LocalProtocolError,
    RateLimitError,
    RemoteProtocolError,
    RequestTimeoutError,
)
from ctrader_typed.events import AccountReady, ClientEvent

__all__ = ["Deadlines", "PendingRequest", "RequestPipeline", "name_of"]

logger = get_logger("ctrader_typed.client")

W = TypeVar("W", bound=Wrapper)


def name_of(payload_type: int) -> str:
    cls = PAYLOAD_TYPES.get(payload_type)
    return cls.__name__ if cls is not None else f"payload type {payload_type}"


@dataclasses.dataclass(slots=True, eq=False)
class PendingRequest:
    """A request sent (or about to be) and not answered yet: what the pending table holds."""

    future: asyncio.Future[Any]
    response_type: type[Wrapper]
    payload_type: int
    when: float = math.inf
    """Its deadline, when the pipeline's in-order expiry watches it (``RequestPipeline._expire``);
    infinite when something else does (a ``Deadline`` scope, or ``Deadlines.watch``)."""
    sent: bool = False


_ENTERED, _EXPIRING, _EXITED = 1, 2, 3
_READY = ClientState.READY


class Deadline:
    """The time limit of one request (``with deadlines.scope(when):``): what ``asyncio.timeout_at``
    does - at ``when`` the task is cancelled and the block raises ``TimeoutError`` - on the one
    timer the client's ``Deadlines`` share, instead of a timer of its own per request."""

    __slots__ = ("_cancelling", "_owner", "_task", "state", "when")

    def __init__(self, owner: Deadlines, when: float) -> None:
        self._owner = owner
        self.when = when
        self.state = 0
        self._task: asyncio.Task[Any] | None = None
        self._cancelling = 0

    def __enter__(self) -> Deadline:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a request deadline needs a task")
        self._task = task
        self._cancelling = task.cancelling()
        self.state = _ENTERED
        self._owner._add(self)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        state, self.state = self.state, _EXITED
        self._owner._live -= 1
        if state == _EXPIRING:
            assert self._task is not None
            if self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
                raise TimeoutError from exc  # our cancellation, and nobody else's since

    def done(self) -> bool:
        """Exited, or expiring: nothing (more) for the timer to do."""
        return self.state != _ENTERED

    def _expire(self) -> None:
        assert self._task is not None
        self.state = _EXPIRING
        self._task.cancel()


class Deadlines:
    """The deadlines of the requests in flight, on one event-loop timer armed at the earliest.

    A heap of ``(when, n, item)``. An item is a ``Deadline`` (a scope whose task is cancelled when
    it expires) or, for a request that awaits nothing but its answer, that answer's future
    (``watch``): an expired one gets a ``TimeoutError``. Finished items are dropped when they reach
    the heap's top, or all at once when they outnumber the live ones. Per request that is a heap
    push, where ``asyncio.timeout_at`` schedules and cancels a timer handle of its own.
    """

    __slots__ = ("_count", "_heap", "_live", "_loop", "_timer", "_timer_at")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline | asyncio.Future[Any]]] = []
        self._count = itertools.count()
        self._live = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._loop: asyncio.AbstractEventLoop | None = None

    def scope(self, when: float) -> Deadline:
        return Deadline(self, when)

    def _add(self, deadline: Deadline) -> None:
        self.watch(deadline.when, deadline, asyncio.get_running_loop())

    def watch(
        self, when: float, item: Deadline | asyncio.Future[Any], loop: asyncio.AbstractEventLoop
    ) -> None:
        """Expire ``item`` at ``when`` unless it is done by then: a ``Deadline`` cancels its task,
        a future gets a ``TimeoutError``. For a future, the caller calls ``unwatch`` once done
        with it (however it ended); a ``Deadline`` does that on its way out."""
        heap = self._heap
        # Finished ones at the top go at once (with one timeout for all, the oldest is on top),
        # the rest when they outnumber the live ones.
        while heap and heap[0][2].done():
            heapq.heappop(heap)
        if len(heap) > 64 and len(heap) > 4 * self._live:
            heap[:] = [entry for entry in heap if not entry[2].done()]
            heapq.heapify(heap)
        heapq.heappush(heap, (when, next(self._count), item))
        self._live += 1
        if when < self._timer_at or loop is not self._loop:
            self._arm(loop, when)

    def unwatch(self) -> None:
        """A watched future's request is over (its entry goes when it reaches the heap's top)."""
        self._live -= 1

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._loop = loop
        self._timer = loop.call_at(when, self._fire)
        self._timer_at = when

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        loop = self._loop
        assert loop is not None
        now = loop.time()
        heap = self._heap
        while heap and (heap[0][0] <= now or heap[0][2].done()):
            _, _, item = heapq.heappop(heap)
            if item.done():
                continue
            if isinstance(item, Deadline):
                item._expire()
            else:
                item.set_exception(TimeoutError())
        if heap:
            self._arm(loop, heap[0][0])


class RequestPipeline:
    """Sends the requests of one client and matches their answers."""

    def __init__(
        self,
        *,
        settings: ClientSettings,
        lifecycle: Lifecycle,
        session: SessionState,
        tokens: TokenKeeper,
        orders: OrderBook,
        maintenance: Maintenance,
        scrubber: Scrubber,
        emit: Callable[[ClientEvent], None],
    ) -> None:
        self._request_timeout = settings.request_timeout
        self.limiter = RateLimiter(
            requests_per_second=settings.requests_per_second if settings.rate_limits else None,
            historical_per_second=settings.historical_per_second if settings.rate_limits else None,
        )
        self._rate_limit_retries = settings.rate_limit_retries
        self._rate_limit_max_wait = settings.rate_limit_max_wait
        self._state = lifecycle
        self._session = session
        self._tokens = tokens
        self._orders = orders
        self._maintenance = maintenance
        self._scrubber = scrubber
        self._emit = emit
        self.gate: SendGate | None = None
        self.pending: PendingTable[PendingRequest] = PendingTable()
        self._deadlines = Deadlines()
        self._last_when = -math.inf
        """The latest deadline the in-order expiry watches (see ``_expire``)."""
        self._expiry: asyncio.TimerHandle | None = None
        self._expiry_loop: asyncio.AbstractEventLoop | None = None
        self._paced = self.limiter.enabled
        """Requests take turns (``SendGate``): the limits are fixed when the client is made."""
        self._blocking = False
        """A payload type was locked (``block``) on this client at some point."""

    def start(self) -> None:
        """The client connects (the gate needs the running loop)."""
        self.gate = SendGate(self.limiter)

    @property
    def waiting(self) -> int:
        """Requests waiting for their turn under the rate limits (not sent yet)."""
        return self.gate.waiting if self.gate is not None else 0

    def fail_waiting(self, error: CTraderError) -> None:
        """Fail every request waiting for its turn (the client closes or stops)."""
        if self.gate is not None:
            self.gate.fail(error)

    def link_lost(self, text: str, cause: CTraderError | None) -> None:
        """Every request in flight fails: ``may_have_been_sent`` tells whether it was written."""
        for pending in self.pending.drain():
            if not pending.future.done():
                failure = ConnectionClosedError(text, may_have_been_sent=pending.sent)
                failure.__cause__ = cause
                pending.future.set_exception(failure)

    # -- sending ----------------------------------------------------------------------------------

    async def call(
        self,
        message: ProtobufMessage,
        response_type: type[W],
        timeout: float | None,
        *,
        internal: bool = False,
    ) -> W:
        """Send ``message`` and return its answer as ``response_type`` (see the module docstring).

        The common case - the link usable now, no lock on the payload type, and the pace allowing
        a send now (``SendGate.try_turn``) or no pacing - sends at once and awaits nothing but the
        answer, whose future is failed at its deadline (in the pending table's order, see
        ``_expire``; or by the client's ``Deadlines``). Anything else (waiting for the link or a
        turn, a refusal to retry or renew after) continues in ``_call_slowly``.
        """
        known = _KNOWN.get(type(message))
        if known is None:
            known = _learn(type(message))
        payload_type, prefix, restores, holds_secrets = known
        try:
            payload = message.SerializeToString()
        except EncodeError as exc:
            raise LocalProtocolError(f"cannot encode {name_of(payload_type)}: {exc}") from exc
        if holds_secrets:
            self._scrubber.hold_sent(payload_type, message)
        response_payload_type = response_type.PAYLOAD_TYPE
        if response_payload_type is None:
            raise TypeError(f"{response_type.__name__} cannot answer a request")
        if timeout is None:
            timeout = self._request_timeout
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadline = now + timeout
        state = self._state
        link = state.link
        if (
            link is None
            or not link.is_open
            or (state.state is not _READY and (not internal or state.ending()))
            or (self._blocking and self.limiter.blocked_until(payload_type, now) is not None)
        ):
            return await self._call_slowly(
                message, payload_type, payload, response_type, timeout, deadline, internal, None, None
            )
        turn: Turn | None = None
        if self._paced:
            # Paced: the turn now, if nothing holds it back (else wait for it on the slow path).
            gate = self.gate
            if gate is None or (turn := gate.try_turn(payload_type)) is None:
                return await self._call_slowly(
                    message, payload_type, payload, response_type, timeout, deadline, internal, None, None
                )
        future: asyncio.Future[W] = loop.create_future()  # correlate sets a response_type
        in_order = deadline >= self._last_when
        if not in_order and not self.pending:
            # Nothing is watched in order any more (a long timeout came before): start again.
            in_order = True
            self._arm_expiry(loop, deadline)
        if in_order:
            # The commonest case by far (every request with the client's timeout): no later
            # deadline is watched in order, so the pending table, in the order requests were
            # added, is in the order of their deadlines: one timer for all, at the oldest.
            self._last_when = deadline
            pending = PendingRequest(future, response_type, payload_type, deadline)
            if self._expiry is None or self._expiry_loop is not loop:
                self._arm_expiry(loop, deadline)
        else:
            pending = PendingRequest(future, response_type, payload_type)
            self._deadlines.watch(deadline, future, loop)
        client_msg_id = self.pending.add(response_payload_type, pending)
        # The send below mirrors the slow path's (``_attempt``), written out here: a helper both
        # could call would cost every request a call.
        try:
            try:
                link.send(encode_request(prefix, payload, client_msg_id))
            finally:
                if turn is not None:
                    turn.done(sent=True)
            pending.sent = True
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("sent %s as %s", name_of(payload_type), client_msg_id)
            result = await future
            # Answered: correlate took the request out of the table (no discard needed).
        except APIError as exc:
            self.pending.discard(client_msg_id)  # (taken out already, as for any answer)
            refused: APIError | None = exc
        except TimeoutError as exc:
            self.pending.discard(client_msg_id)
            raise RequestTimeoutError(f"no answer to {name_of(payload_type)} within {timeout:g} s") from exc
        except BaseException:
            self.pending.discard(client_msg_id)  # cancelled, the link lost, not written ...
            raise
        else:
            refused = None
        finally:
            if not in_order:
                self._deadlines.unwatch()
        if refused is not None:
            # A refusal to retry after, a token to renew, an "already done": the slow path's rules.
            return await self._call_slowly(
                message,
                payload_type,
                payload,
                response_type,
                timeout,
                deadline,
                internal,
                refused,
                link if internal else None,
            )
        if restores or isinstance(result, RefreshTokenRes):
            # Only these change the session (see _after_success): the rest costs nothing more here.
            policy = REQUEST_POLICIES.get(payload_type) or _unruled(payload_type, response_payload_type)
            await self._after_success(policy, message, result, internal)
        return result

    def _arm_expiry(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry_loop = loop
        self._expiry = loop.call_at(when, self._expire)

    def _expire(self) -> None:
        """Fail the requests watched in order whose deadline has passed (with ``TimeoutError``,
        which ``call`` turns into ``RequestTimeoutError``), then wait for the next deadline.

        Those are the pending requests with a finite ``when``: in the table's order, their
        deadlines never decrease (``call`` watches a request in order only if its deadline is
        the latest yet), so the first one still ahead ends the walk. The table holds no
        finished request, so the walk is short."""
        self._expiry = None
        loop = self._expiry_loop
        assert loop is not None
        now = loop.time()
        expired: list[asyncio.Future[Any]] = []
        for pending in self.pending.handles():
            when = pending.when
            if when > now:
                if when == math.inf:
                    continue
                self._arm_expiry(loop, when)
                break
            expired.append(pending.future)
        for future in expired:
            if not future.done():
                future.set_exception(TimeoutError())

    async def _call_slowly(
        self,
        message: ProtobufMessage,
        payload_type: int,
        payload: bytes,
        response_type: type[W],
        timeout: float,
        deadline: float,
        internal: bool,
        refused: APIError | None,
        bound: Link | None,
    ) -> W:
        """``call`` when the request must wait (for the link, a turn, a lock to end) or was
        ``refused`` once already (on ``bound``, the link an internal request belongs to); the
        whole of it runs within one ``Deadline`` scope."""
        response_payload_type = response_type.PAYLOAD_TYPE
        assert response_payload_type is not None
        policy = REQUEST_POLICIES.get(payload_type) or _unruled(payload_type, response_payload_type)
        attempts = 0
        renewed = False
        result: Wrapper
        try:
            with self._deadlines.scope(deadline):
                while True:
                    try:
                        if refused is not None:
                            error, refused = refused, None
                            raise error
                        result = await self._attempt(
                            payload_type,
                            payload,
                            response_type,
                            response_payload_type,
                            deadline,
                            internal,
                            bound,
                        )
                    except RateLimitError as exc:
                        if not self._retry_after_rate_limit(payload_type, exc, attempts, deadline):
                            raise
                        attempts += 1
                        logger.info(
                            "%s was rate-limited (%s); retry %d",
                            name_of(payload_type),
                            exc.error_code,
                            attempts,
                        )
                        continue
                    except APIError as exc:
                        if exc.maintenance_end is not None:
                            self._maintenance.note(exc.maintenance_end)
                        if (
                            not renewed
                            and not internal
                            and policy.restore == "account_auth"
                            and await self._tokens.renew_refused(message, exc)
                        ):
                            renewed = True
                            payload = message.SerializeToString()
                            logger.info(
                                "%s was refused with the held token (%s); retrying with the refreshed one",
                                name_of(payload_type),
                                exc.error_code,
                            )
                            continue
                        # "Already in that state" is success - except for a subscription, where it
                        # is the caller's own duplicate (the supervisor takes it when restoring).
                        if policy.already_done != exc.error_code or policy.subscription is not None:
                            raise
                        result = _already_done(message, policy)
                    break
        except TimeoutError as exc:
            if isinstance(exc, RequestTimeoutError):
                raise
            raise RequestTimeoutError(f"no answer to {name_of(payload_type)} within {timeout:g} s") from exc
        if policy.restore is not None or isinstance(result, RefreshTokenRes):
            # Only these change the session (see _after_success): the rest costs nothing more here.
            await self._after_success(policy, message, result, internal)
        return cast(W, result)

    async def _attempt(
        self,
        payload_type: int,
        payload: bytes,
        response_type: type[Wrapper],
        response_payload_type: int,
        deadline: float,
        internal: bool,
        bound: Link | None,
    ) -> Wrapper:
        loop = asyncio.get_running_loop()
        limiter = self.limiter
        gate = self.gate
        # An internal request (restoring the session) belongs to the link it started on.
        while True:
            # Usable right now needs no await; otherwise wait until it is.
            now_usable = self._link_now(internal)
            link = now_usable if now_usable is not None else await self._usable_link(internal)
            if internal:
                if bound is None:
                    bound = link
                elif link is not bound:
                    raise ConnectionClosedError("the connection dropped while the session was being restored")
            now = loop.time()
            until = limiter.blocked_until(payload_type, now)
            if until is not None:
                remaining = until - now
                if until > deadline:
                    raise RateLimitError(
                        "BLOCKED_PAYLOAD_TYPE",
                        f"{name_of(payload_type)} is blocked by the server for another {remaining:.1f} s, "
                        "longer than the request may wait",
                        retry_after=remaining,
                    )
                await self._state.sleep(remaining)
                continue
            if gate is None or not limiter.enabled:
                turn = None
                break  # nothing awaited since the link was found usable
            turn = await gate.turn(payload_type)
            # The turn is ours now: send at once, on the link as it is now.
            current = self._link_now(internal)
            if current is None or (bound is not None and current is not bound):
                turn.done(sent=False)
                continue
            link = current
            break
        future: asyncio.Future[Wrapper] = loop.create_future()
        pending = PendingRequest(future, response_type, payload_type)
        client_msg_id = self.pending.add(response_payload_type, pending)
        try:
            try:
                link.send(encode_envelope(payload_type, payload, client_msg_id))
            finally:
                if turn is not None:
                    turn.done(sent=True)
            pending.sent = True
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("sent %s as %s", name_of(payload_type), client_msg_id)
            return await future
        finally:
            self.pending.discard(client_msg_id)

    def block(self, payload_type: int, until: float) -> None:
        """Hold requests of ``payload_type`` back until ``until`` (loop time): the limiter's lock,
        which ``call`` then looks at for every request (it does not while nothing was ever locked)."""
        self._blocking = True
        self.limiter.block(payload_type, until)

    def _retry_after_rate_limit(
        self, payload_type: int, error: RateLimitError, attempts: int, deadline: float
    ) -> bool:
        """A rate-limit refusal: the request was not executed. Lock its payload type for the
        time the server said (or back off), and say whether to send it again - which is safe
        for every request, trading ones included."""
        now = asyncio.get_running_loop().time()
        wait = error.retry_after if error.retry_after is not None else min(2.0**attempts, 10.0)
        self.block(payload_type, now + wait)
        return (
            attempts < self._rate_limit_retries
            and wait <= self._rate_limit_max_wait
            and now + wait < deadline
        )

    async def _usable_link(self, internal: bool) -> Link:
        state = self._state
        while True:
            if state.ending():
                error = ConnectionClosedError(
                    "the client is closed" if state.close_requested else "the client has stopped"
                )
                error.__cause__ = state.error
                raise error
            if state.state is ClientState.NEW:
                raise ConnectionClosedError(
                    "not connected: use 'async with AsyncClient(...)' or 'await client.connect()'"
                )
            link = state.link
            if internal:
                if link is None or not link.is_open:
                    raise ConnectionClosedError("the connection dropped while the session was being restored")
                return link
            if state.is_ready and link is not None and link.is_open:
                return link
            await state.wait_ready()

    def _link_now(self, internal: bool) -> Link | None:
        """The link a request may be sent on right now, or ``None`` (wait for it again)."""
        state = self._state
        if state.ending():
            return None
        link = state.link
        if link is None or not link.is_open:
            return None
        if not internal and not state.is_ready:
            return None
        return link

    # -- answers ----------------------------------------------------------------------------------

    def correlate(
        self, payload_type: int, client_msg_id: str, payload: bytes
    ) -> Wrapper | Literal[Unanswered.UNANSWERED] | None:
        """Hand an inbound message to the request it answers; return the decoded answer (``None``
        when it could not be decoded), or ``UNANSWERED`` when it answers no pending request."""
        hit = self.pending.match(payload_type, client_msg_id)
        if hit is None:
            return UNANSWERED
        kind, pending = hit
        future = pending.future
        cls: type[Wrapper]
        if kind is Answer.RESPONSE:
            cls = pending.response_type
        elif kind is Answer.ORDER_ERROR:
            cls = OrderErrorEvent
        else:
            cls = ErrorRes if payload_type == ErrorRes.PAYLOAD_TYPE else CommonErrorRes
        value: Wrapper
        try:
            if issubclass(cls, ProtoWrapper):
                # What ``cls.from_bytes`` does (a parsed message is owned), two calls fewer.
                value = cls._from_proto(cls.PROTO.FromString(payload), True)
            else:
                value = cls.from_bytes(payload)
        except (DecodeError, ValueError) as exc:
            error = RemoteProtocolError(
                f"undecodable {cls.__name__} answering {name_of(pending.payload_type)}: {exc}"
            )
            error.__cause__ = exc
            if not future.done():
                future.set_exception(error)
            if isinstance(exc, DecodeError):
                raise error from exc
            return None
        if future.done():
            return value
        if kind is Answer.RESPONSE:
            trading = pending.payload_type in TRADING_PAYLOAD_TYPES
            if trading and isinstance(value, ExecutionEvent) and value.order is not None:
                self._orders.follow(value.ctid_trader_account_id, value.order.order_id)
            future.set_result(value)
        else:
            assert isinstance(value, ErrorRes | CommonErrorRes | OrderErrorEvent)
            api_error = self._scrubber.api_error(value)
            value = api_error.raw if api_error.raw is not None else value
            future.set_exception(api_error)
        return value

    # -- what a success means -----------------------------------------------------------------------

    async def _after_success(
        self, policy: RequestPolicy, message: ProtobufMessage, result: Wrapper, internal: bool
    ) -> None:
        if isinstance(result, RefreshTokenRes):
            await self._tokens.store(result)
            return
        tokens = self._tokens.tokens
        self._session.record(policy.request, message, managed_token=tokens.access_token if tokens else None)
        if policy.restore == "application_auth":
            self._tokens.application_authorised()
        elif policy.restore == "account_auth" and not internal:
            assert isinstance(message, _pb.ProtoOAAccountAuthReq)
            self._emit(AccountReady(account_id=message.ctidTraderAccountId))


def _unruled(payload_type: int, response_payload_type: int) -> RequestPolicy:
    """The policy of a message the schema does not list as a request: no rule applies."""
    return RequestPolicy(
        request=payload_type,
        response=response_payload_type,
        method="_request",
        historical=False,
        trading=False,
        scope="none",
        already_done=None,
        restore=None,
        subscription=None,
    )


def _already_done(message: ProtobufMessage, policy: RequestPolicy) -> Wrapper:
    """The answer a request already done would have had (e.g. already authenticated / logged in):
    its response, naming the request's account if the response has one."""
    response = PAYLOAD_TYPES[policy.response]
    assert issubclass(response, ProtoWrapper)
    answer = response.PROTO()
    if "ctidTraderAccountId" in answer.DESCRIPTOR.fields_by_name:
        cast(Any, answer).ctidTraderAccountId = cast(Any, message).ctidTraderAccountId
    return response.from_proto(answer)


_KNOWN: dict[type[ProtobufMessage], tuple[int, bytes, bool, bool]] = {}
"""Request class -> its payload type, the start of its envelope (``envelope_prefix``), whether a
success changes the session (its policy has a ``restore``), and whether it carries a secret the
scrubber must hold (``Scrubber.hold_sent``): what ``call`` needs of the class."""


def _learn(cls: type[ProtobufMessage]) -> tuple[int, bytes, bool, bool]:
    """``_KNOWN[cls]``, computed and kept. Raises ``KeyError`` for a message without a payload type."""
    payload_type = payload_type_of(cls.DESCRIPTOR.full_name)
    policy = REQUEST_POLICIES.get(payload_type)
    known = _KNOWN[cls] = (
        payload_type,
        envelope_prefix(payload_type),
        policy is not None and policy.restore is not None,
        bool(SECRET_REQUESTS.get(payload_type)),
    )
    return known
