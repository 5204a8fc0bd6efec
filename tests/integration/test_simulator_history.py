"""History requests over real sockets: per-period windows (INCORRECT_BOUNDARIES past them) and paging.

The windows are the pre-release-89 proto's (``to - from <=`` 5 weeks for M1-M5, 35 weeks for
M10-H1, a year of 366 days for H4-D1, five years for W1/MN1, a week for ticks).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.testing import Simulator
from ctrader_typed.testing.raw import RawClient

EURUSD = 1
TO_MS = 1_700_006_400_000  # a midnight UTC in the past
DAY_MS = 86_400_000
WINDOWS = {
    model_pb.M1: 3_024_000_000,
    model_pb.M5: 3_024_000_000,
    model_pb.M10: 21_168_000_000,
    model_pb.H1: 21_168_000_000,
    model_pb.H4: 31_622_400_000,
    model_pb.D1: 31_622_400_000,
    model_pb.W1: 158_112_000_000,
    model_pb.MN1: 158_112_000_000,
}
WEEK_MS = 604_800_000


@pytest_asyncio.fixture
async def raw(ctrader_simulator: Simulator) -> AsyncIterator[RawClient]:
    sim = ctrader_simulator
    sim.set_rate_limits(False)
    client = await RawClient.connect(sim.host, sim.port, sim.ssl_context)
    await client.authorize(sim.client_id, sim.client_secret, sim.access_token, [sim.accounts[0]])
    yield client
    await client.close()


def bars_request(
    sim: Simulator, period: model_pb.ProtoOATrendbarPeriod.ValueType, from_ms: int, to_ms: int, count: int = 0
) -> pb.ProtoOAGetTrendbarsReq:
    request = pb.ProtoOAGetTrendbarsReq(
        ctidTraderAccountId=sim.accounts[0],
        symbolId=EURUSD,
        period=period,
        fromTimestamp=from_ms,
        toTimestamp=to_ms,
    )
    if count:
        request.count = count
    return request


@pytest.mark.parametrize("period", sorted(WINDOWS))
async def test_trendbar_window_edge_accepted_one_past_refused(
    ctrader_simulator: Simulator, raw: RawClient, period: model_pb.ProtoOATrendbarPeriod.ValueType
) -> None:
    window = WINDOWS[period]
    edge = await raw.request(bars_request(ctrader_simulator, period, TO_MS - window, TO_MS, count=3))
    assert isinstance(edge.message, pb.ProtoOAGetTrendbarsRes), edge
    assert len(edge.message.trendbar) == 3
    past = await raw.request(bars_request(ctrader_simulator, period, TO_MS - window - 1, TO_MS, count=3))
    assert getattr(past.message, "errorCode", None) == "INCORRECT_BOUNDARIES", past


async def test_m1_bars_from_1970_to_2023_are_refused(ctrader_simulator: Simulator, raw: RawClient) -> None:
    answer = await raw.request(bars_request(ctrader_simulator, model_pb.M1, 0, TO_MS))
    assert getattr(answer.message, "errorCode", None) == "INCORRECT_BOUNDARIES", answer


async def test_trendbars_without_from_default_to_the_window(
    ctrader_simulator: Simulator, raw: RawClient
) -> None:
    request = pb.ProtoOAGetTrendbarsReq(
        ctidTraderAccountId=ctrader_simulator.accounts[0],
        symbolId=EURUSD,
        period=model_pb.W1,
        toTimestamp=TO_MS,
    )
    answer = await raw.request(request)
    assert isinstance(answer.message, pb.ProtoOAGetTrendbarsRes), answer
    oldest = answer.message.trendbar[0].utcTimestampInMinutes * 60_000
    assert TO_MS - WINDOWS[model_pb.W1] <= oldest < TO_MS - WINDOWS[model_pb.W1] + 7 * DAY_MS


@pytest.mark.ctrader_simulator(tick_chunk_size=5)
async def test_tick_window_edge_accepted_one_past_refused(
    ctrader_simulator: Simulator, raw: RawClient
) -> None:
    account = ctrader_simulator.accounts[0]
    for from_ms, refused in ((TO_MS - WEEK_MS, False), (TO_MS - WEEK_MS - 1, True)):
        answer = await raw.request(
            pb.ProtoOAGetTickDataReq(
                ctidTraderAccountId=account, symbolId=EURUSD, type=model_pb.BID, fromTimestamp=from_ms,
                toTimestamp=TO_MS,
            )
        )  # fmt: skip
        if refused:
            assert getattr(answer.message, "errorCode", None) == "INCORRECT_BOUNDARIES", answer
        else:
            assert isinstance(answer.message, pb.ProtoOAGetTickDataRes), answer
            assert len(answer.message.tickData) == 5
            assert answer.message.hasMore


@pytest.mark.ctrader_simulator(history_chunk_size=50)
async def test_trendbar_pages_hold_the_chunk_size_then_the_rest(
    ctrader_simulator: Simulator, raw: RawClient
) -> None:
    sim = ctrader_simulator
    from_ms = TO_MS - DAY_MS // 2  # 145 M5 bars open in [from, to]: pages of 50, 50, 45
    sizes: list[int] = []
    minutes: list[int] = []
    end = TO_MS
    while True:
        answer = await raw.request(bars_request(sim, model_pb.M5, from_ms, end))
        assert isinstance(answer.message, pb.ProtoOAGetTrendbarsRes), answer
        page = answer.message
        sizes.append(len(page.trendbar))
        minutes = [b.utcTimestampInMinutes for b in page.trendbar] + minutes
        if not page.hasMore:
            break
        end = page.trendbar[0].utcTimestampInMinutes * 60_000 - 1
    assert sizes == [50, 50, 45]
    assert minutes == list(range(from_ms // 60_000, TO_MS // 60_000 + 1, 5))


def bars_by_minute(res: pb.ProtoOAGetTrendbarsRes) -> dict[int, tuple[int, int, int, int, int]]:
    return {
        b.utcTimestampInMinutes: (
            b.low + b.deltaOpen,
            b.low + b.deltaHigh,
            b.low,
            b.low + b.deltaClose,
            b.volume,
        )
        for b in res.trendbar
    }


async def fetch(raw: RawClient, request: pb.ProtoOAGetTrendbarsReq) -> pb.ProtoOAGetTrendbarsRes:
    answer = await raw.request(request)
    assert isinstance(answer.message, pb.ProtoOAGetTrendbarsRes), answer
    return answer.message


async def test_same_and_overlapping_windows_give_identical_bars(
    ctrader_simulator: Simulator, raw: RawClient
) -> None:
    sim = ctrader_simulator
    wide = bars_by_minute(await fetch(raw, bars_request(sim, model_pb.M1, TO_MS - 3 * DAY_MS, TO_MS)))
    again = bars_by_minute(await fetch(raw, bars_request(sim, model_pb.M1, TO_MS - 3 * DAY_MS, TO_MS)))
    assert wide == again
    assert len(wide) == 3 * 1440 + 1
    # A window starting off the chunk grid, inside the first one, and one reaching further back.
    for from_ms, to_ms in (
        (TO_MS - DAY_MS - 7 * 60_000, TO_MS - 3_600_000 + 1),
        (TO_MS - 5 * DAY_MS, TO_MS - DAY_MS),
    ):
        part = bars_by_minute(await fetch(raw, bars_request(sim, model_pb.M1, from_ms, to_ms)))
        shared = part.keys() & wide.keys()
        assert shared
        assert {m: part[m] for m in shared} == {m: wide[m] for m in shared}
    for o, h, lo, c, v in wide.values():
        assert lo <= min(o, c) <= max(o, c) <= h
        assert v >= 1


async def test_bars_open_and_close_alike_in_every_period(
    ctrader_simulator: Simulator, raw: RawClient
) -> None:
    sim = ctrader_simulator
    m1 = bars_by_minute(await fetch(raw, bars_request(sim, model_pb.M1, TO_MS - 2 * DAY_MS, TO_MS)))
    for period, minutes in ((model_pb.M5, 5), (model_pb.H1, 60), (model_pb.H4, 240), (model_pb.D1, 1440)):
        longer = bars_by_minute(await fetch(raw, bars_request(sim, period, TO_MS - 2 * DAY_MS, TO_MS)))
        assert longer
        for start, (o, _h, _lo, c, _v) in longer.items():
            if start + minutes - 1 in m1:
                assert o == m1[start][0], (period, start)
                assert c == m1[start + minutes - 1][3], (period, start)
