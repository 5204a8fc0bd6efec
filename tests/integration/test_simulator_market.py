"""Market data over the wire: spots and their traceability, live and historical bars, ticks, depth."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.testing import Simulator
from ctrader_typed.testing.raw import RawClient, Received

EURUSD, GBPUSD, USDJPY = 1, 2, 3
SPOT = model_pb.PROTO_OA_SPOT_EVENT
DAY_MS = 86_400_000


@pytest_asyncio.fixture
async def raw(ctrader_simulator: Simulator) -> AsyncIterator[RawClient]:
    sim = ctrader_simulator
    sim.set_rate_limits(False)
    client = await RawClient.connect(sim.host, sim.port, sim.ssl_context)
    await client.authorize(sim.client_id, sim.client_secret, sim.access_token, [sim.accounts[0]])
    yield client
    await client.close()


def spot(received: Received) -> pb.ProtoOASpotEvent:
    assert received.payload_type == SPOT
    assert isinstance(received.message, pb.ProtoOASpotEvent)
    return received.message


async def spots(raw: RawClient, count: int, timeout: float = 10.0) -> list[pb.ProtoOASpotEvent]:
    return [spot(await raw.expect(SPOT, timeout)) for _ in range(count)]


async def subscribe(raw: RawClient, account: int, symbols: list[int], timestamps: bool = False) -> None:
    answer = await raw.request(
        pb.ProtoOASubscribeSpotsReq(
            ctidTraderAccountId=account, symbolId=symbols, subscribeToSpotTimestamp=timestamps
        )
    )
    assert answer.payload_type == model_pb.PROTO_OA_SUBSCRIBE_SPOTS_RES


@pytest.mark.ctrader_simulator(spot_interval=0.01)
async def test_subscription_starts_with_a_technical_spot_then_streams(
    ctrader_simulator: Simulator, raw: RawClient
) -> None:
    sim = ctrader_simulator
    account = sim.accounts[0]
    await raw.send(
        pb.ProtoOASubscribeSpotsReq(ctidTraderAccountId=account, symbolId=[EURUSD]), client_msg_id="s"
    )
    first = await raw.recv()
    assert (first.payload_type, first.client_msg_id) == (model_pb.PROTO_OA_SUBSCRIBE_SPOTS_RES, "s")
    technical = spot(await raw.recv())
    assert technical.HasField("bid")
    assert technical.HasField("ask")
    assert technical.HasField("sessionClose")
    assert not technical.HasField("timestamp")
    assert technical.ctidTraderAccountId == account
    assert technical.symbolId == EURUSD
    assert 0 < technical.bid < technical.ask
    assert technical.bid % 1 == 0  # EURUSD has 5 digits: every integer is a valid price
    stream = await spots(raw, 10)
    assert all(s.symbolId == EURUSD and s.ctidTraderAccountId == account for s in stream)
    assert all(s.HasField("bid") or s.HasField("ask") for s in stream)

    duplicate = await raw.request(pb.ProtoOASubscribeSpotsReq(ctidTraderAccountId=account, symbolId=[EURUSD]))
    assert getattr(duplicate.message, "errorCode", None) == "ALREADY_SUBSCRIBED"
    answer = await raw.request(pb.ProtoOAUnsubscribeSpotsReq(ctidTraderAccountId=account, symbolId=[EURUSD]))
    assert answer.payload_type == model_pb.PROTO_OA_UNSUBSCRIBE_SPOTS_RES
    (conn,) = sim.connections
    sent = conn.spots_sent
    sim.market_step()
    assert conn.spots_sent == sent
    again = await raw.request(pb.ProtoOAUnsubscribeSpotsReq(ctidTraderAccountId=account, symbolId=[EURUSD]))
    assert getattr(again.message, "errorCode", None) == "NOT_SUBSCRIBED_TO_SPOTS"


@pytest.mark.ctrader_simulator(spot_interval=0.01, spot_timestamps="sequence")
async def test_every_spot_is_traceable_nothing_lost_or_duplicated(
    ctrader_simulator: Simulator, raw: RawClient
) -> None:
    sim = ctrader_simulator
    await subscribe(raw, sim.accounts[0], [EURUSD, GBPUSD, USDJPY], timestamps=True)
    received = await spots(raw, 60)
    (conn,) = sim.connections
    sequences = [s.timestamp - conn.spot_timestamp_base for s in received]
    assert sequences == list(range(1, 61))
    logged = list(conn.spot_log)[:60]
    assert [(q, s.symbolId, s.bid if s.HasField("bid") else None, s.ask if s.HasField("ask") else None)
            for q, s in zip(sequences, received, strict=True)] == logged  # fmt: skip
    assert conn.spots_sent >= 60


@pytest.mark.ctrader_simulator(spot_interval=0.01)  # the default spot_timestamps="clock"
async def test_clock_timestamps_are_strictly_increasing_wall_time(
    ctrader_simulator: Simulator, raw: RawClient
) -> None:
    (conn,) = ctrader_simulator.connections
    await asyncio.sleep(1.1)  # no subscription yet: a counter from the open time would not move
    before = time.time() * 1000
    await subscribe(raw, ctrader_simulator.accounts[0], [EURUSD, GBPUSD], timestamps=True)
    stamps = [s.timestamp for s in await spots(raw, 20)]
    assert stamps == sorted(set(stamps))
    assert stamps[0] >= conn.spot_timestamp_base + 1_100  # Unix ms now, not the open time + 1
    assert before - 1_000 <= stamps[0] <= time.time() * 1000 + 1_000


@pytest.mark.ctrader_simulator(spot_interval=0.01)
async def test_live_trendbars_ride_in_spot_events(ctrader_simulator: Simulator, raw: RawClient) -> None:
    account = ctrader_simulator.accounts[0]
    refused = await raw.request(
        pb.ProtoOASubscribeLiveTrendbarReq(ctidTraderAccountId=account, symbolId=EURUSD, period=model_pb.M1)
    )
    assert getattr(refused.message, "errorCode", None) == "NOT_SUBSCRIBED_TO_SPOTS"
    await subscribe(raw, account, [EURUSD])
    for period in (model_pb.M1, model_pb.H1):
        answer = await raw.request(
            pb.ProtoOASubscribeLiveTrendbarReq(ctidTraderAccountId=account, symbolId=EURUSD, period=period)
        )
        assert answer.payload_type == model_pb.PROTO_OA_SUBSCRIBE_LIVE_TRENDBAR_RES
    # Spot events read while waiting for the H1 answer were sent before it: they carry the M1 bar
    # alone. The server sent everything after it with both; those are the ones checked.
    raw.backlog.clear()
    with_bars = [s for s in await spots(raw, 10) if s.trendbar]
    assert with_bars
    latest_bid = 0
    for event in with_bars:
        assert [b.period for b in event.trendbar] == [model_pb.M1, model_pb.H1]
        if event.HasField("bid"):
            latest_bid = event.bid
        for bar in event.trendbar:
            high, low = bar.low + bar.deltaHigh, bar.low
            assert low <= bar.low + bar.deltaOpen <= high
            assert low <= bar.low + bar.deltaClose <= high
            assert bar.volume > 0
            minutes = 1 if bar.period == model_pb.M1 else 60
            assert bar.utcTimestampInMinutes % minutes == 0
            assert abs(bar.utcTimestampInMinutes - time.time() / 60) < minutes + 1
            if latest_bid:
                assert bar.low + bar.deltaClose == latest_bid  # the live bar closes at the last bid
    await raw.request(
        pb.ProtoOAUnsubscribeLiveTrendbarReq(ctidTraderAccountId=account, symbolId=EURUSD, period=model_pb.M1)
    )
    await raw.request(
        pb.ProtoOAUnsubscribeLiveTrendbarReq(ctidTraderAccountId=account, symbolId=EURUSD, period=model_pb.H1)
    )
    raw.backlog.clear()
    assert not any(s.trendbar for s in await spots(raw, 5))


async def fetch_bars(
    sim: Simulator,
    period: model_pb.ProtoOATrendbarPeriod.ValueType,
    from_ms: int | None,
    to_ms: int,
    count: int | None = None,
) -> pb.ProtoOAGetTrendbarsRes:
    async with await RawClient.connect(sim.host, sim.port, sim.ssl_context) as raw:
        await raw.authorize(sim.client_id, sim.client_secret, sim.access_token, [sim.accounts[0]])
        request = pb.ProtoOAGetTrendbarsReq(
            ctidTraderAccountId=sim.accounts[0],
            symbolId=EURUSD,
            period=period,
            toTimestamp=to_ms,
        )
        if from_ms is not None:
            request.fromTimestamp = from_ms
        if count is not None:
            request.count = count
        answer = await raw.request(request)
        assert isinstance(answer.message, pb.ProtoOAGetTrendbarsRes), answer
        return answer.message


async def test_historical_trendbars_are_deterministic_per_seed() -> None:
    to_ms = 1_700_000_000_000  # a fixed moment in the past
    results = []
    for seed in (1, 1, 2):
        async with Simulator(seed=seed) as sim:
            results.append(await fetch_bars(sim, model_pb.H1, to_ms - 2 * DAY_MS, to_ms))
    assert results[0].SerializeToString() == results[1].SerializeToString()
    assert results[0].SerializeToString() != results[2].SerializeToString()
    bars = results[0].trendbar
    assert len(bars) == 48  # hourly bars opening in [to - 48h, to], "to" being 22:13:20
    assert not results[0].hasMore
    minutes = [b.utcTimestampInMinutes for b in bars]
    assert minutes == list(range(minutes[0], minutes[0] + 60 * 48, 60))
    for bar in bars:
        assert bar.period == model_pb.H1
        assert bar.deltaHigh >= max(bar.deltaOpen, bar.deltaClose)
        assert 90_000 < bar.low < 130_000  # EURUSD stays plausible


@pytest.mark.ctrader_simulator(history_chunk_size=30)
async def test_trendbar_count_and_has_more_paging(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    to_ms = 1_700_006_400_000  # midnight UTC
    counted = await fetch_bars(sim, model_pb.M5, None, to_ms, count=7)
    assert len(counted.trendbar) == 7
    assert counted.trendbar[-1].utcTimestampInMinutes * 60_000 <= to_ms
    # A day of M5 bars is 288 bars: pages of 30, newest first, following hasMore.
    from_ms = to_ms - DAY_MS
    collected: list[int] = []
    end = to_ms
    while True:
        page = await fetch_bars(sim, model_pb.M5, from_ms, end)
        assert len(page.trendbar) <= 30
        collected = [b.utcTimestampInMinutes for b in page.trendbar] + collected
        if not page.hasMore:
            break
        end = page.trendbar[0].utcTimestampInMinutes * 60_000 - 1
    assert collected == list(range(collected[0], collected[0] + 5 * len(collected), 5))
    assert len(collected) == DAY_MS // 300_000 + 1
    daily = await fetch_bars(sim, model_pb.D1, to_ms - 10 * DAY_MS, to_ms)
    assert [b.utcTimestampInMinutes % 1440 for b in daily.trendbar] == [0] * len(daily.trendbar)
    weekly = await fetch_bars(sim, model_pb.W1, to_ms - 60 * DAY_MS, to_ms)
    assert all(((b.utcTimestampInMinutes // 1440) + 4) % 7 == 0 for b in weekly.trendbar)  # Sundays
    monthly = await fetch_bars(sim, model_pb.MN1, to_ms - 100 * DAY_MS, to_ms)
    assert len(monthly.trendbar) in (3, 4)


def decode_ticks(res: pb.ProtoOAGetTickDataRes) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    t = price = 0
    for tick in res.tickData:
        t += tick.timestamp
        price += tick.tick
        out.append((t, price))
    return out


@pytest.mark.ctrader_simulator(tick_chunk_size=200)
async def test_tick_data_newest_first_delta_encoded_with_paging(
    ctrader_simulator: Simulator, raw: RawClient
) -> None:
    account = ctrader_simulator.accounts[0]
    to_ms = 1_700_000_000_000
    from_ms = to_ms - 600_000
    end = to_ms
    ticks: list[tuple[int, int]] = []
    pages = 0
    while True:
        answer = await raw.request(
            pb.ProtoOAGetTickDataReq(
                ctidTraderAccountId=account,
                symbolId=EURUSD,
                type=model_pb.BID,
                fromTimestamp=from_ms,
                toTimestamp=end,
            )
        )
        assert isinstance(answer.message, pb.ProtoOAGetTickDataRes)
        page = decode_ticks(answer.message)
        pages += 1
        assert len(page) <= 200
        assert answer.message.tickData[1].timestamp <= 0  # deltas walk back in time
        ticks += page
        if not answer.message.hasMore:
            break
        end = page[-1][0] - 1
    assert pages > 1
    times = [t for t, _ in ticks]
    assert times == sorted(times, reverse=True)
    assert from_ms <= times[-1]
    assert times[0] <= to_ms
    assert all(100_000 < p < 110_000 for _, p in ticks)
    asks = await raw.request(
        pb.ProtoOAGetTickDataReq(
            ctidTraderAccountId=account,
            symbolId=EURUSD,
            type=model_pb.ASK,
            fromTimestamp=to_ms - 1000,
            toTimestamp=to_ms,
        )
    )
    assert isinstance(asks.message, pb.ProtoOAGetTickDataRes)
    bids = {t: p for t, p in ticks}
    for t, ask in decode_ticks(asks.message):
        assert ask > bids[t]


@pytest.mark.ctrader_simulator(spot_interval=0.01)
async def test_tick_data_after_start_is_what_was_streamed(
    ctrader_simulator: Simulator, raw: RawClient
) -> None:
    sim = ctrader_simulator
    account = sim.accounts[0]
    start = int(time.time() * 1000)
    await subscribe(raw, account, [GBPUSD])
    streamed = [s.bid for s in (await spots(raw, 15))[1:] if s.HasField("bid")]  # after the technical one
    sim.pause_market()
    answer = await raw.request(
        pb.ProtoOAGetTickDataReq(
            ctidTraderAccountId=account, symbolId=GBPUSD, type=model_pb.BID, fromTimestamp=start,
            toTimestamp=int(time.time() * 1000),
        )
    )  # fmt: skip
    assert isinstance(answer.message, pb.ProtoOAGetTickDataRes)
    history = [p for _, p in reversed(decode_ticks(answer.message))]
    # The streamed bids appear, in order, within the recorded history.
    position = 0
    for bid in streamed:
        position = history.index(bid, position) + 1


@pytest.mark.ctrader_simulator(spot_interval=0.01)
async def test_depth_snapshot_then_consistent_updates(ctrader_simulator: Simulator, raw: RawClient) -> None:
    sim = ctrader_simulator
    account = sim.accounts[0]
    answer = await raw.request(
        pb.ProtoOASubscribeDepthQuotesReq(ctidTraderAccountId=account, symbolId=[EURUSD])
    )
    assert answer.payload_type == model_pb.PROTO_OA_SUBSCRIBE_DEPTH_QUOTES_RES
    book: dict[int, tuple[bool, int, int]] = {}
    for n in range(15):
        event = (await raw.expect(model_pb.PROTO_OA_DEPTH_EVENT)).message
        assert isinstance(event, pb.ProtoOADepthEvent)
        if n == 0:
            assert not event.deletedQuotes
            assert any(q.HasField("bid") for q in event.newQuotes)
            assert any(q.HasField("ask") for q in event.newQuotes)
        for level_id in event.deletedQuotes:
            del book[level_id]
        for quote in event.newQuotes:
            assert quote.id not in book
            assert quote.size > 0
            book[quote.id] = (quote.HasField("bid"), quote.bid or quote.ask, quote.size)
        best_bid = max(p for is_bid, p, _ in book.values() if is_bid)
        best_ask = min(p for is_bid, p, _ in book.values() if not is_bid)
        assert best_bid < best_ask
    sim.pause_market()
    raw.backlog.clear()
    await raw.request(pb.ProtoOAVersionReq())  # everything sent before this answer has been read
    for received in list(raw.backlog):
        if received.payload_type == model_pb.PROTO_OA_DEPTH_EVENT:
            assert isinstance(received.message, pb.ProtoOADepthEvent)
            for level_id in received.message.deletedQuotes:
                del book[level_id]
            for quote in received.message.newQuotes:
                book[quote.id] = (quote.HasField("bid"), quote.bid or quote.ask, quote.size)
    assert book == sim.market.depth(EURUSD).levels
    answer = await raw.request(
        pb.ProtoOAUnsubscribeDepthQuotesReq(ctidTraderAccountId=account, symbolId=[EURUSD])
    )
    assert answer.payload_type == model_pb.PROTO_OA_UNSUBSCRIBE_DEPTH_QUOTES_RES


@pytest.mark.ctrader_simulator(spot_timestamps="sequence")
async def test_burst_spots_arrive_complete_and_in_order(ctrader_simulator: Simulator, raw: RawClient) -> None:
    sim = ctrader_simulator
    sim.pause_market()
    await subscribe(raw, sim.accounts[0], [EURUSD, GBPUSD], timestamps=True)
    technical = await spots(raw, 2)
    (conn,) = sim.connections
    sent = await sim.burst_spots(20_000)
    assert sent == 20_000
    burst = await spots(raw, sent)
    sequences = [s.timestamp - conn.spot_timestamp_base for s in technical + burst]
    assert sequences == list(range(1, sent + 3))
    assert [s.symbolId for s in burst[:4]] == [EURUSD, GBPUSD, EURUSD, GBPUSD]
    assert conn.spots_sent == sent + 2
    assert all(s.HasField("bid") and s.HasField("ask") and s.bid < s.ask for s in burst)
    assert [(s.bid, s.ask) for s in burst] == [(e[2], e[3]) for e in list(conn.spot_log)[2:]]


@pytest.mark.ctrader_simulator(spot_timestamps="sequence")
async def test_burst_to_an_unsubscribed_target_and_cut_short_by_a_drop(
    ctrader_simulator: Simulator, raw: RawClient
) -> None:
    sim = ctrader_simulator
    sim.pause_market()
    account = sim.accounts[0]
    assert await sim.burst_spots(10, account_id=account) == 0  # no subscription: nothing to pick
    (conn,) = sim.connections
    sim.drop_after_frames(1_000)
    sent = await sim.burst_spots(5_000, account_id=account, symbol_id=USDJPY)
    assert sent == 1_000
    assert conn.spots_sent == 1_000
    frames = await raw.read_until_closed(timeout=10.0)
    received = [spot(f) for f in frames if f.payload_type == SPOT]
    assert len(received) == 1_000
    assert [s.timestamp - conn.spot_timestamp_base for s in received] == list(range(1, 1_001))
    assert {s.symbolId for s in received} == {USDJPY}
