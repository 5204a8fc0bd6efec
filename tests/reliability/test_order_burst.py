"""Hundreds of orders opened and closed as fast as a user can call, on a loaded machine.

The client's default pacing must leave real headroom under the server's limit (50 requests in
any rolling second per connection, read as strictly as the simulator can), so a bot that fires
every order at once gets no ``BLOCKED_PAYLOAD_TYPE`` refusal at all, and every position it
opened is closed again. Both processors are kept busy by burner processes meanwhile.

Sized by ``CTRADER_BURST_ORDERS`` (500 by default: about 25 s of paced requests). Marked
``soak`` so the README's default run stays short; ``.ci/run`` runs it at full size beside the
soak slice, and so does ``nox -s soak``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from ctrader_typed import OrderType, TradeSide
from ctrader_typed.testing import Simulator

from ..integration.support import EURUSD, authorized

ORDERS = int(os.environ.get("CTRADER_BURST_ORDERS", "500"))
NEW_ORDER_REQ = 2106
CLOSE_POSITION_REQ = 2111
VOLUME = 100_000  # 1,000.00 units
GUARD = 600.0
"""Hang guard only: the run normally takes ORDERS * 2 / 40 seconds plus the machine's load."""

pytestmark = pytest.mark.soak


@contextlib.contextmanager
def busy_cores(n: int) -> Iterator[None]:
    """``n`` processes spinning on the CPU (bounded: they die with the test, or after 15 minutes)."""
    spin = "import time\nend = time.monotonic() + 900\nwhile time.monotonic() < end:\n    pass\n"
    burners = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(n)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
        for burner in burners:
            burner.wait()


@pytest.mark.ctrader_simulator(received_log_limit=ORDERS * 4 + 100)
async def test_orders_fired_at_once_are_never_refused_and_all_positions_close(
    ctrader_simulator: Simulator,
) -> None:
    sim = ctrader_simulator
    with busy_cores(os.cpu_count() or 2):
        async with authorized(sim) as (client, account):
            sides = [TradeSide.BUY if i % 2 else TradeSide.SELL for i in range(ORDERS)]
            opened = await asyncio.wait_for(
                asyncio.gather(
                    *(
                        client.send_new_order_req(
                            account, EURUSD, OrderType.MARKET, side, VOLUME, timeout=GUARD
                        )
                        for side in sides
                    )
                ),
                GUARD,
            )
            position_ids = [event.position.position_id for event in opened if event.position is not None]
            assert len(set(position_ids)) == ORDERS, "every order opened a position of its own"

            closed = await asyncio.wait_for(
                asyncio.gather(
                    *(
                        client.send_close_position_req(account, position_id, VOLUME, timeout=GUARD)
                        for position_id in position_ids
                    )
                ),
                GUARD,
            )
            assert len(closed) == ORDERS
            # One connection throughout, and each request reached the server exactly once: a
            # refused request is resent, so any refusal would show up as an extra arrival.
            [conn] = sim.connections
            arrivals = [pt for _, pt, _ in conn.received]

    broker_account = sim.broker.account(account)
    assert broker_account is not None
    assert broker_account.open_positions() == []
    assert arrivals.count(NEW_ORDER_REQ) == ORDERS
    assert arrivals.count(CLOSE_POSITION_REQ) == ORDERS
    assert len(broker_account.orders) == ORDERS * 2  # each open and each close is one order
