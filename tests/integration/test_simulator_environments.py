"""The simulator's demo and live endpoints (``live_endpoint=True``), over real sockets.

Spotware serves demo accounts at demo.ctraderapi.com and live ones at live.ctraderapi.com; a
request naming an account of the other environment is refused with ``CANT_ROUTE_REQUEST``.
Without ``live_endpoint`` the simulator's one endpoint serves both, as it always did.
"""

from __future__ import annotations

import pytest

from ctrader_typed import APIError, AsyncClient, CommonErrorCode, ErrorCode
from ctrader_typed.testing import Simulator, SimulatorSettings
from tests.integration.support import FAST

pytestmark = pytest.mark.ctrader_simulator(live_endpoint=True, rate_limits=False)


def client_at(sim: Simulator, port: int) -> AsyncClient:
    return AsyncClient(
        sim.host,
        port,
        ssl_context=sim.ssl_context,
        client_id=sim.client_id,
        client_secret=sim.client_secret,
        reconnect=False,
        **FAST,
    )


async def test_two_endpoints_with_their_own_ports(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    assert sim.demo_port == sim.port != sim.live_port
    assert all(sim.port_for(a) == sim.demo_port for a in sim.demo_accounts)
    assert all(sim.port_for(a) == sim.live_port for a in sim.live_accounts)
    info = sim.connection_info()
    assert (info["port"], info["demo_port"], info["live_port"]) == (sim.port, sim.port, sim.live_port)
    assert f"live {sim.host}:{sim.live_port}" in repr(sim)
    with pytest.raises(KeyError):
        sim.port_for(123)


async def test_each_endpoint_authorises_its_own_accounts(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    live, demo = sim.live_accounts[0], sim.demo_accounts[0]
    async with client_at(sim, sim.demo_port) as on_demo, client_at(sim, sim.live_port) as on_live:
        await on_demo.send_account_auth_req(demo, sim.access_token)
        await on_live.send_account_auth_req(live, sim.access_token)
        assert on_demo.authorized_accounts == {demo}
        assert on_live.authorized_accounts == {live}
        trader = await on_live.send_trader_req(live)
        assert trader.trader.ctid_trader_account_id == live
        environments = {conn.environment for conn in sim.connections}
        assert environments == {"demo", "live"}


@pytest.mark.parametrize("live", [True, False])
async def test_an_account_of_the_other_environment_cannot_be_routed(
    ctrader_simulator: Simulator, live: bool
) -> None:
    sim = ctrader_simulator
    account = sim.live_accounts[0] if live else sim.demo_accounts[0]
    wrong_port = sim.demo_port if live else sim.live_port
    async with client_at(sim, wrong_port) as client:
        with pytest.raises(APIError) as auth:
            await client.send_account_auth_req(account, sim.access_token)
        assert auth.value.error_code is CommonErrorCode.CANT_ROUTE_REQUEST
        assert auth.value.account_id == account
        assert ("live" if live else "demo") in str(auth.value)
        assert not client.authorized_accounts
        # Every request naming the account is refused the same way, before the authorisation
        # check (which would say ACCOUNT_NOT_AUTHORIZED).
        with pytest.raises(APIError) as trader:
            await client.send_trader_req(account)
        assert trader.value.error_code is CommonErrorCode.CANT_ROUTE_REQUEST
        # The connection stays usable: the account list (both environments) is served anywhere.
        listing = await client.send_get_account_list_by_access_token_req(sim.access_token)
        listed = {a.ctid_trader_account_id: bool(a.is_live) for a in listing.ctid_trader_account}
        assert listed == {a: a in sim.live_accounts for a in sim.accounts}


async def test_unknown_accounts_are_not_a_routing_question(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with client_at(sim, sim.live_port) as client:
        with pytest.raises(APIError) as caught:
            await client.send_account_auth_req(123, sim.access_token)
        assert caught.value.error_code is ErrorCode.CH_CTID_TRADER_ACCOUNT_NOT_FOUND


@pytest.mark.ctrader_simulator(rate_limits=False)
async def test_without_a_live_endpoint_one_port_serves_both(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    assert sim.demo_port == sim.live_port == sim.port
    async with client_at(sim, sim.port) as client:
        for account in (sim.demo_accounts[0], sim.live_accounts[0]):
            await client.send_account_auth_req(account, sim.access_token)
        assert client.authorized_accounts == {sim.demo_accounts[0], sim.live_accounts[0]}
    assert sim.connection_info()["live_port"] == sim.port


def test_live_port_needs_the_live_endpoint() -> None:
    with pytest.raises(ValueError, match="live_port is only used with live_endpoint"):
        SimulatorSettings(live_port=5036)
    with pytest.raises(ValueError, match="port and live_port must differ"):
        SimulatorSettings(live_endpoint=True, port=5035, live_port=5035)
