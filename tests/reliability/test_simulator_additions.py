"""Simulator features the reliability suite added: more accounts on one token, and a drop that
lands after the server acted on a request but before any answer was written."""

from __future__ import annotations

import pytest

from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.testing import RawClient, Simulator


@pytest.mark.ctrader_simulator(extra_demo_accounts=4)
async def test_extra_demo_accounts_share_the_default_token(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    assert len(sim.demo_accounts) == sum(not a.is_live for a in sim.settings.accounts) + 4
    assert sim.accounts == [*sim.demo_accounts, *sim.live_accounts]
    assert len(set(sim.accounts)) == len(sim.accounts)
    async with await RawClient.connect(sim.host, sim.port, sim.ssl_context) as raw:
        await raw.authorize(sim.client_id, sim.client_secret, sim.access_token, sim.demo_accounts)
        [conn] = sim.connections
        assert set(conn.accounts) == set(sim.demo_accounts)
        listing = await raw.request(pb.ProtoOAGetAccountListByAccessTokenReq(accessToken=sim.access_token))
        assert isinstance(listing.message, pb.ProtoOAGetAccountListByAccessTokenRes)
        listed = {a.ctidTraderAccountId: a.isLive for a in listing.message.ctidTraderAccount}
        assert listed == {a: a in sim.live_accounts for a in sim.accounts}
        trader = await raw.request(pb.ProtoOATraderReq(ctidTraderAccountId=sim.demo_accounts[-1]))
        assert isinstance(trader.message, pb.ProtoOATraderRes)
        assert trader.message.trader.balance > 0


def test_extra_demo_accounts_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="extra_demo_accounts"):
        Simulator(extra_demo_accounts=-1)


async def test_drop_instead_of_answering_acts_then_drops(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    account = sim.demo_accounts[0]
    async with (
        await RawClient.connect(sim.host, sim.port, sim.ssl_context) as raw,
        await RawClient.connect(sim.host, sim.port, sim.ssl_context) as watcher,
    ):
        await raw.authorize(sim.client_id, sim.client_secret, sim.access_token, [account])
        await watcher.authorize(sim.client_id, sim.client_secret, sim.access_token, [account])
        first, second = sim.connections
        state = sim.broker.account(account)
        assert state is not None
        positions_before = len(state.positions)
        sim.drop_instead_of_answering(connection=first)
        order = pb.ProtoOANewOrderReq(
            ctidTraderAccountId=account,
            symbolId=1,
            orderType=model_pb.MARKET,
            tradeSide=model_pb.BUY,
            volume=100_000,
        )
        await raw.send(order, client_msg_id="lost")
        frames = await raw.read_until_closed()
        assert [f for f in frames if f.payload_type != 51] == []  # no answer was written
        # The order was executed all the same: the other session of the account saw it.
        filled = await watcher.expect(
            lambda r: (
                isinstance(r.message, pb.ProtoOAExecutionEvent)
                and r.message.executionType == model_pb.ORDER_FILLED
            )
        )
        assert filled.client_msg_id is None
        assert len(state.positions) == positions_before + 1
        await sim.wait_until(lambda: sim.connections == [second])


async def test_spots_sent_counts_only_what_was_written(ctrader_simulator: Simulator) -> None:
    """After the server closed a connection (still finishing), further quotes take no sequence
    number: ``spots_sent`` equals the spot events the peer received."""
    sim = ctrader_simulator
    sim.pause_market()
    account = sim.demo_accounts[0]
    async with await RawClient.connect(sim.host, sim.port, sim.ssl_context) as raw:
        await raw.authorize(sim.client_id, sim.client_secret, sim.access_token, [account])
        await raw.request(pb.ProtoOASubscribeSpotsReq(ctidTraderAccountId=account, symbolId=[1]))
        [conn] = sim.connections
        state = sim.market.state(1)
        assert state is not None
        step = state.spec.step
        sim.drop_after_frames(1, connection=conn)
        for n in range(1, 4):  # the first quote is the last frame; the others come after the close
            sim.set_price(1, state.bid + 10 * n * step)
        frames = await raw.read_until_closed()
    spots = [f for f in [*raw.backlog, *frames] if f.payload_type == model_pb.PROTO_OA_SPOT_EVENT]
    assert conn.spots_sent == len(spots) == 2  # the subscription's first event, then one quote
