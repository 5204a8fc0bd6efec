"""pytest plugin (entry point ``pytest11``): the ``ctrader_simulator`` fixture.

``ctrader_simulator`` is a started ``Simulator`` for one test, with fast test intervals
(quotes every 50 ms, heartbeat every 1 s, idle timeout 10 s). To change its options, mark
the test::

    @pytest.mark.ctrader_simulator(seed=7, rate_limits=False)
    async def test_something(ctrader_simulator): ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ctrader_typed.testing.simulator import Simulator

_HAVE_PYTEST_ASYNCIO: bool
try:
    import pytest_asyncio

    _HAVE_PYTEST_ASYNCIO = True
except ImportError:  # pragma: no cover - the fixture needs an asyncio pytest plugin
    _HAVE_PYTEST_ASYNCIO = False

__all__ = ["ctrader_simulator"]

DEFAULTS: dict[str, Any] = {"spot_interval": 0.05, "heartbeat_interval": 1.0, "idle_timeout": 10.0}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "ctrader_simulator(**options): keyword arguments for the ctrader_simulator fixture's Simulator",
    )


def _options(request: pytest.FixtureRequest) -> dict[str, Any]:
    options = dict(DEFAULTS)
    marker = request.node.get_closest_marker("ctrader_simulator")
    if marker is not None:
        options.update(marker.kwargs)
    return options


if _HAVE_PYTEST_ASYNCIO:

    @pytest_asyncio.fixture
    async def ctrader_simulator(request: pytest.FixtureRequest) -> AsyncIterator[Simulator]:
        """A running simulator on 127.0.0.1 (ephemeral ports), stopped after the test."""
        async with Simulator(**_options(request)) as sim:
            yield sim

else:  # pragma: no cover

    @pytest.fixture
    def ctrader_simulator() -> Simulator:
        pytest.skip("the ctrader_simulator fixture needs pytest-asyncio")
