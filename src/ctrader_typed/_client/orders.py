"""Order outcomes: the execution events of each order placed through the client, and waiting
for the one that finishes it."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from typing import Final

from ctrader_typed._generated.enums import ExecutionType
from ctrader_typed._generated.messages import ExecutionEvent
from ctrader_typed.errors import ConnectionClosedError

__all__ = ["TERMINAL_EXECUTION_TYPES", "OrderBook", "OrderTracker"]

TERMINAL_EXECUTION_TYPES: Final = frozenset(
    {
        ExecutionType.ORDER_FILLED,
        ExecutionType.ORDER_CANCELLED,
        ExecutionType.ORDER_REJECTED,
        ExecutionType.ORDER_EXPIRED,
    }
)
"""Execution types after which an order is finished."""

MAX_TRACKED_ORDERS: Final = 1024
"""Orders followed at once; past this the oldest one nobody waits for is forgotten."""


@dataclasses.dataclass(slots=True, eq=False)
class OrderTracker:
    """The execution events of one order, its terminal one, and who waits for it."""

    events: list[ExecutionEvent] = dataclasses.field(default_factory=list)
    terminal: ExecutionEvent | None = None
    waiters: list[asyncio.Future[ExecutionEvent]] = dataclasses.field(default_factory=list)

    def add(self, event: ExecutionEvent) -> None:
        self.events.append(event)
        if self.terminal is None and event.execution_type in TERMINAL_EXECUTION_TYPES:
            self.terminal = event
            for waiter in self.waiters:
                if not waiter.done():
                    waiter.set_result(event)
            self.waiters.clear()

    def fail(self, error: BaseException) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_exception(error)
        self.waiters.clear()


class OrderBook:
    """The orders followed by one client, keyed by (account id, order id).

    An order is followed from the first execution event that answers a trading request
    (``follow``); every later execution event of it is added (``on_execution``).
    """

    __slots__ = ("_trackers",)

    def __init__(self) -> None:
        self._trackers: collections.OrderedDict[tuple[int, int], OrderTracker] = collections.OrderedDict()

    def follow(self, account_id: int, order_id: int) -> OrderTracker:
        key = (account_id, order_id)
        tracker = self._trackers.get(key)
        if tracker is None:
            tracker = self._trackers[key] = OrderTracker()
            if len(self._trackers) > MAX_TRACKED_ORDERS:
                for old_key, old in self._trackers.items():
                    if not old.waiters:
                        del self._trackers[old_key]
                        break
        return tracker

    def on_execution(self, event: ExecutionEvent) -> None:
        """Every execution event that arrives (the router calls it after your own sinks)."""
        if event.order is not None:
            tracker = self._trackers.get((event.ctid_trader_account_id, event.order.order_id))
            if tracker is not None:
                tracker.add(event)

    def executions(self, account_id: int, order_id: int) -> tuple[ExecutionEvent, ...]:
        tracker = self._trackers.get((account_id, order_id))
        return tuple(tracker.events) if tracker is not None else ()

    async def outcome(self, execution: ExecutionEvent, timeout: float | None) -> ExecutionEvent:
        """The terminal execution of the order of ``execution`` (see ``AsyncClient.wait_for_order_outcome``)."""
        if execution.execution_type in TERMINAL_EXECUTION_TYPES:
            return execution
        if execution.order is None:
            raise ValueError("this execution event carries no order to follow")
        tracker = self.follow(execution.ctid_trader_account_id, execution.order.order_id)
        if tracker.terminal is not None:
            return tracker.terminal
        waiter: asyncio.Future[ExecutionEvent] = asyncio.get_running_loop().create_future()
        tracker.waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                return await waiter
        finally:
            if waiter in tracker.waiters:
                tracker.waiters.remove(waiter)

    def link_lost(self, text: str, cause: BaseException | None) -> None:
        """The link dropped: whoever waits may have missed the outcome."""
        for tracker in self._trackers.values():
            if tracker.waiters:
                failure = ConnectionClosedError(
                    f"{text}; the order's outcome may have been missed", may_have_been_sent=True
                )
                failure.__cause__ = cause
                tracker.fail(failure)

    def stop(self) -> None:
        """The client stopped: every wait fails."""
        for tracker in self._trackers.values():
            tracker.fail(ConnectionClosedError("the client stopped", may_have_been_sent=True))
