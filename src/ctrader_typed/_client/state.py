"""The client's lifecycle: one state, the transitions allowed between states, the current link.

::

    NEW -> CONNECTING -> READY <-> RECONNECTING
                  \\         \\          /
                   +-------> FAILED <-+          (stopped for good, with an error)
    any but CLOSED/FAILED -> CLOSING -> CLOSED   (close())

``READY`` means a link is up and the session on it is restored: requests go out. While
``CONNECTING`` / ``RECONNECTING`` they wait (``wait_ready``); in the other states they fail.
``FAILED`` and ``CLOSED`` are final; ``close()`` on a failed client only releases what it
still holds (``close_requested``), the state stays ``FAILED``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from typing import Final

from ctrader_typed._transport import Link
from ctrader_typed.errors import CTraderError

__all__ = ["ClientState", "Lifecycle"]


class ClientState(enum.Enum):
    NEW = "new"
    CONNECTING = "connecting"
    READY = "ready"
    RECONNECTING = "reconnecting"
    CLOSING = "closing"
    CLOSED = "closed"
    FAILED = "failed"


_S = ClientState
_ALLOWED: Final[dict[ClientState, frozenset[ClientState]]] = {
    _S.NEW: frozenset({_S.CONNECTING, _S.CLOSING}),
    _S.CONNECTING: frozenset({_S.READY, _S.CLOSING, _S.FAILED}),
    _S.READY: frozenset({_S.RECONNECTING, _S.CLOSING, _S.FAILED}),
    _S.RECONNECTING: frozenset({_S.READY, _S.CLOSING, _S.FAILED}),
    _S.CLOSING: frozenset({_S.CLOSED}),
    _S.CLOSED: frozenset(),
    _S.FAILED: frozenset(),
}
"""State -> the states it may move to; every transition goes through ``Lifecycle._move``."""
_REQUESTS_WAIT: Final = frozenset({_S.NEW, _S.CONNECTING, _S.RECONNECTING})


class Lifecycle:
    """The state of one client, and what follows from it.

    ``wait_ready`` returns whenever a request need not wait for a link (``READY``, or the
    client is ending: the request then fails at once). ``sleep`` is cut short when the
    client closes or stops.
    """

    __slots__ = ("_ready", "_wakeup", "close_requested", "error", "link", "state", "was_ready")

    def __init__(self) -> None:
        self.state = ClientState.NEW
        self.link: Link | None = None
        """The link requests go out on (also while it is being restored); ``None`` between links."""
        self.error: CTraderError | None = None
        """Why the client stopped (``FAILED``), if it did."""
        self.close_requested = False
        self.was_ready = False
        """The state before ``CLOSING`` was ``READY`` and its link has not closed yet."""
        self._ready = asyncio.Event()
        self._wakeup: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"<Lifecycle {self.state.value}>"

    # -- transitions -------------------------------------------------------------------------

    def _move(self, to: ClientState) -> None:
        if to not in _ALLOWED[self.state]:
            raise RuntimeError(f"the client cannot go from {self.state.value} to {to.value}")
        self.was_ready = self.state is ClientState.READY and to is ClientState.CLOSING
        self.state = to
        if to in _REQUESTS_WAIT:
            self._ready.clear()
        else:
            self._ready.set()

    def connecting(self) -> None:
        """``connect()`` began (once per client)."""
        if self.state is not ClientState.NEW:
            raise RuntimeError("this client was already started; make a new AsyncClient to connect again")
        self._move(ClientState.CONNECTING)
        self._wakeup = asyncio.get_running_loop().create_future()

    def restored(self) -> None:
        """A link is up and its session restored: requests go out."""
        self._move(ClientState.READY)

    def link_lost(self, *, will_reconnect: bool) -> bool:
        """The current link closed; return whether the state was ``READY`` (or closing from it)."""
        was_ready = self.state is ClientState.READY or self.was_ready
        self.was_ready = False
        self.link = None
        if will_reconnect and self.state is ClientState.READY:
            self._move(ClientState.RECONNECTING)
        return was_ready

    def closing(self) -> bool:
        """``close()`` began; return False when it had begun already."""
        if self.close_requested:
            return False
        self.close_requested = True
        if self.state not in (ClientState.CLOSED, ClientState.FAILED):
            self._move(ClientState.CLOSING)
        self.wake()
        return True

    def stop(self, error: CTraderError | None) -> bool:
        """Stop for good: ``CLOSED`` after a close, else ``FAILED`` with ``error``; return
        False when the client had stopped already."""
        if self.state in (ClientState.CLOSED, ClientState.FAILED):
            return False
        if self.state is ClientState.CLOSING:
            self._move(ClientState.CLOSED)
        else:
            self._move(ClientState.FAILED)
        self.error = error
        self.wake()
        return True

    # -- questions ----------------------------------------------------------------------------

    @property
    def is_ready(self) -> bool:
        return self.state is ClientState.READY

    @property
    def stopped(self) -> bool:
        """Closed, or given up for good."""
        return self.state in (ClientState.CLOSED, ClientState.FAILED)

    def ending(self) -> bool:
        """Closed, closing or given up: nothing more may be sent."""
        return self.close_requested or self.stopped

    @property
    def started(self) -> bool:
        return self.state is not ClientState.NEW

    # -- waiting ------------------------------------------------------------------------------

    async def wait_ready(self) -> None:
        """Until requests need not wait for a link any more (see ``ready``)."""
        await self._ready.wait()

    def wake(self) -> None:
        """Cut short every ``sleep`` (the client closes or stops)."""
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def sleep(self, delay: float) -> None:
        """Sleep ``delay`` seconds, or less if the client closes or stops meanwhile."""
        wakeup = self._wakeup
        if wakeup is None or wakeup.done():
            await asyncio.sleep(0)  # still a suspension point: a cancellation gets through
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await asyncio.shield(wakeup)
