"""The client-behaviour tests run over both transports (``AsyncClient(transport=...)``).

Every test of the modules in ``BOTH_TRANSPORTS`` runs twice, as ``[tls]`` and ``[websocket]``:
the autouse ``client_transport`` fixture sets the transport that ``support.make_client`` (and
so ``support.authorized``) gives its clients, and the simulator serves both on the same port.
The other modules (the simulator's own tests, the CLI, OAuth, the scripted TLS servers of
the hostile-server and trust tests, the account arithmetic) run once, over TLS;
``test_transports`` covers what is particular to WebSocket and JSON.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ctrader_typed._client.options import Transport

from . import support

BOTH_TRANSPORTS = frozenset(
    {
        "test_accounts",
        "test_client_basic",
        "test_client_close",
        "test_client_history",
        "test_client_ratelimit",
        "test_client_reconnect",
        "test_client_tokens",
        "test_client_transport",
        "test_quotes",
        "test_symbols",
        "test_trading_helpers",
    }
)
"""The modules whose tests exercise the client's behaviour through ``support.make_client``.

``test_account_state`` is left out on purpose: it checks the tracked account's arithmetic
against the simulator's step by step (a third of this set's run time), and nothing in it
depends on how the envelopes travelled."""

TRANSPORTS: tuple[Transport, ...] = ("tls", "websocket")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rpartition(".")[2]
    if module in BOTH_TRANSPORTS and "client_transport" in metafunc.fixturenames:
        metafunc.parametrize("client_transport", TRANSPORTS, indirect=True)


@pytest.fixture(autouse=True)
def client_transport(request: pytest.FixtureRequest) -> Iterator[Transport]:
    """The transport of this test's clients: its parameter, or TLS for a test that has none."""
    transport: Transport = getattr(request, "param", "tls")
    previous = support.TRANSPORT
    support.TRANSPORT = transport
    try:
        yield transport
    finally:
        support.TRANSPORT = previous
