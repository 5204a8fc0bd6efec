"""pytest plugin (entry point ``pytest11``): the ``ctrader_simulator``, ``raw_server`` and ``ctrader_replay`` fixtures.

``ctrader_simulator`` is a started ``Simulator`` for one test, with fast test intervals
(quotes every 50 ms, heartbeat every 1 s, idle timeout 10 s). To change its options, mark
the test::

    @pytest.mark.ctrader_simulator(seed=7, rate_limits=False)
    async def test_something(ctrader_simulator): ...

``raw_server`` is a started ``RawServer`` (a scripted, hostile TLS server on 127.0.0.1, an
ephemeral port, a throwaway CA) for one test, closed afterwards; its ``RawServer.start``
options come from a ``raw_server`` mark the same way::

    @pytest.mark.raw_server(cert_hosts=("example.test",))
    async def test_hostname(raw_server): ...

``ctrader_replay`` is a started ``ReplayServer`` playing the recording the ``ctrader_replay`` mark
names (its other keywords are ``ReplayServer`` options); divergences that the test did not
already raise (``await ctrader_replay.finished()`` or ``.check()``) fail it at teardown::

    @pytest.mark.ctrader_replay("tests/data/session.ctrec")
    async def test_bot(ctrader_replay):
        async with AsyncClient(**ctrader_replay.client_options()) as client:
            await my_bot(client, ctrader_replay.accounts[0])
        await ctrader_replay.finished()
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ctrader_typed.testing.raw import RawServer
from ctrader_typed.testing.replay import ReplayServer
from ctrader_typed.testing.simulator import Simulator

_HAVE_PYTEST_ASYNCIO: bool
try:
    import pytest_asyncio

    _HAVE_PYTEST_ASYNCIO = True
except ImportError:  # pragma: no cover - the fixture needs an asyncio pytest plugin
    _HAVE_PYTEST_ASYNCIO = False

__all__ = ["ctrader_replay", "ctrader_simulator", "raw_server"]

DEFAULTS: dict[str, Any] = {"spot_interval": 0.05, "heartbeat_interval": 1.0, "idle_timeout": 10.0}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "ctrader_simulator(**options): keyword arguments for the ctrader_simulator fixture's Simulator",
    )
    config.addinivalue_line(
        "markers",
        "raw_server(**options): keyword arguments for the raw_server fixture's RawServer.start",
    )
    config.addinivalue_line(
        "markers",
        "ctrader_replay(path, **options): the recording and ReplayServer options of the ctrader_replay fixture",
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

    @pytest_asyncio.fixture
    async def raw_server(request: pytest.FixtureRequest) -> AsyncIterator[RawServer]:
        """A listening ``RawServer`` on 127.0.0.1 (ephemeral port), closed after the test."""
        marker = request.node.get_closest_marker("raw_server")
        options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
        async with await RawServer.start(**options) as server:
            yield server

    @pytest_asyncio.fixture
    async def ctrader_replay(request: pytest.FixtureRequest) -> AsyncIterator[ReplayServer]:
        """A ``ReplayServer`` of the recording the ``ctrader_replay`` mark names, on 127.0.0.1."""
        marker = request.node.get_closest_marker("ctrader_replay")
        if marker is None or not marker.args:
            raise pytest.UsageError("the ctrader_replay fixture needs @pytest.mark.ctrader_replay(path)")
        async with ReplayServer(marker.args[0], **marker.kwargs) as server:
            yield server
            if server.unreported:
                server.check()

else:  # pragma: no cover

    @pytest.fixture
    def ctrader_simulator() -> Simulator:
        pytest.skip("the ctrader_simulator fixture needs pytest-asyncio")

    @pytest.fixture
    def raw_server() -> RawServer:
        pytest.skip("the raw_server fixture needs pytest-asyncio")

    @pytest.fixture
    def ctrader_replay() -> ReplayServer:
        pytest.skip("the ctrader_replay fixture needs pytest-asyncio")
