"""Backtests: the sample strategy on the simulator's synthetic history (exact trades and balance for
a fixed seed), the live account model against the simulator's figures, prices from a recording,
bars and CSV files, the report, and the errors."""

from __future__ import annotations

import csv
import importlib.util
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ctrader_typed import AsyncClient, QuoteType, SpotEvent, TrendbarPeriod
from ctrader_typed.account import TrackedAccount
from ctrader_typed.backtest import (
    BacktestError,
    PriceTick,
    load_bot,
    load_prices,
    prices_from_bars,
    prices_from_ohlc,
    prices_from_recording,
    prices_from_ticks,
    run_backtest,
    save_prices,
    synthetic_prices,
)
from ctrader_typed.errors import MissingExtraError
from ctrader_typed.history import iter_ticks, iter_trendbars
from ctrader_typed.recording import Recorder
from ctrader_typed.testing import Simulator

from .support import EURUSD, make_client, next_of

EXAMPLE = Path(__file__).parents[2] / "examples" / "backtest_sma.py"
START = 1_700_000_000_000


@pytest.fixture(scope="module")
def sma() -> Any:
    return load_bot(str(EXAMPLE))


async def test_the_sample_strategy_trades_the_same_on_every_run(sma: Any, tmp_path: Path) -> None:
    prices = synthetic_prices(EURUSD, START, 3000, interval_ms=1000, seed=7)
    tracked: list[TrackedAccount] = []

    async def bot(client: AsyncClient, account_id: int) -> None:
        tracked.append(await client.track_account(account_id, reanchor_interval=None))
        await sma(client, account_id)

    done: list[tuple[int, int]] = []
    report = await run_backtest(bot, prices, seed=7, progress=lambda n, total: done.append((n, total)))
    assert done[-1] == (3000, 3000)
    assert report.ticks == 3000
    assert (report.start_ms, report.end_ms) == (START, START + 2_999_000)
    assert len(report.trades) == 37
    assert report.open_positions == 1
    assert report.initial_balance == Decimal("12000.00")
    assert report.final_balance == Decimal("11949.02")
    assert report.final_equity == Decimal("11949.60")
    first = report.trades[0]
    assert (first.position_id, first.side, first.volume) == (300000001, "BUY", 1_000_000)
    assert (first.open_ms, first.close_ms) == (START + 146_000, START + 223_000)
    assert (first.entry_price, first.exit_price) == (Decimal("1.07998"), Decimal("1.0799"))
    assert (first.gross_profit, first.commission, first.net_profit) == (
        Decimal("-0.80"),
        Decimal("-0.64"),
        Decimal("-1.44"),
    )
    assert report.trades[-1].balance == report.final_balance
    assert sum(t.net_profit for t in report.trades) == report.profit
    # the live account model, fed by the events the bot's client received, agrees with the broker
    account = tracked[0]
    assert account.balance == report.final_balance
    assert account.equity == report.final_equity

    # the report's files
    trades_csv, equity_csv = report.write_csv(tmp_path / "out")
    rows = list(csv.DictReader(trades_csv.read_text().splitlines()))
    assert len(rows) == 37
    assert rows[0]["net_profit"] == "-1.44"
    curve = list(csv.DictReader(equity_csv.read_text().splitlines()))
    assert curve[0]["balance"] == "12000.00"
    assert curve[-1]["equity"] == "11949.60"
    if importlib.util.find_spec("matplotlib") is not None:
        chart = report.plot(tmp_path / "out" / "equity.png")
        assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "trades: 37" in report.summary()


async def test_virtual_time_reaches_the_bot(tmp_path: Path) -> None:
    """Fills, deals and spot timestamps are in market time; history up to 'now' ends there."""
    prices = [PriceTick(START + n * 60_000, EURUSD, 108_000 + n, 108_010 + n) for n in range(30)]
    seen: list[Any] = []

    async def bot(client: AsyncClient, account_id: int) -> None:
        async with client.events(SpotEvent, account_id=account_id) as spots:
            await client.send_subscribe_spots_req(account_id, [EURUSD], subscribe_to_spot_timestamp=True)
            async for spot in spots:
                seen.append((spot.timestamp, spot.bid, spot.ask))

    report = await run_backtest(bot, prices)
    stamps = [s for s in seen if s[1] is not None]
    assert stamps[-1] == (START + 29 * 60_000, 108_029, 108_039)
    assert all(t is not None and START <= t <= START + 29 * 60_000 for t, _, _ in stamps)
    assert report.trades == ()
    assert report.final_balance == report.initial_balance


async def test_prices_from_a_recording_drive_the_same_quotes(
    ctrader_simulator: Simulator, tmp_path: Path
) -> None:
    sim = ctrader_simulator
    path = tmp_path / "quotes.ctrec"
    async with make_client(
        sim, recorder=Recorder(path), client_id=sim.client_id, client_secret=sim.client_secret
    ) as client:
        account = sim.demo_accounts[0]
        await client.send_account_auth_req(account, sim.access_token)
        async with client.events(SpotEvent, account_id=account) as spots:
            await client.send_subscribe_spots_req(account, [EURUSD], subscribe_to_spot_timestamp=True)
            for _ in range(8):
                await next_of(spots, SpotEvent)
    prices = prices_from_recording(path)
    assert len(prices) >= 6
    assert [p.t_ms for p in prices] == sorted(p.t_ms for p in prices)
    quotes: list[tuple[int, int]] = []

    async def bot(client: AsyncClient, account_id: int) -> None:
        bid = ask = 0
        async with client.events(SpotEvent, account_id=account_id) as spots:
            await client.send_subscribe_spots_req(account_id, [EURUSD])
            async for spot in spots:
                bid, ask = spot.bid or bid, spot.ask or ask
                quotes.append((bid, ask))

    await run_backtest(bot, prices)
    expected = [(p.bid, p.ask) for p in prices]
    # the first spot event repeats the opening quote; after it every quote arrives once, in order
    assert [q for n, q in enumerate(quotes) if n == 0 or q != quotes[n - 1]] == [
        q for n, q in enumerate(expected) if n == 0 or q != expected[n - 1]
    ]
    with pytest.raises(BacktestError, match="no symbol 99"):
        prices_from_recording(path, symbols={EURUSD: 99})


async def test_prices_fetched_with_the_history_helpers(ctrader_simulator: Simulator, tmp_path: Path) -> None:
    sim = ctrader_simulator
    end = START + 3_600_000
    async with make_client(sim) as client:
        await client.send_application_auth_req(sim.client_id, sim.client_secret)
        account = sim.demo_accounts[0]
        await client.send_account_auth_req(account, sim.access_token)
        bars = [bar async for bar in iter_trendbars(client, account, EURUSD, TrendbarPeriod.M5, START, end)]
        bids = [t async for t in iter_ticks(client, account, EURUSD, QuoteType.BID, START, START + 600_000)]
        asks = [t async for t in iter_ticks(client, account, EURUSD, QuoteType.ASK, START, START + 600_000)]
    from_bars = prices_from_ohlc(bars, EURUSD)
    assert len(from_bars) == 4 * len(bars) == 4 * 12  # bars opening from 22:15 to 23:10
    assert from_bars[4].t_ms - from_bars[0].t_ms == 300_000
    assert from_bars[0].bid == round(bars[0].open * 100_000)
    from_ticks = prices_from_ticks(bids, asks, EURUSD)
    assert from_ticks
    assert all(p.bid <= p.ask for p in from_ticks)
    assert len({p.t_ms for p in from_ticks}) == len(from_ticks)
    saved = tmp_path / "history.csv"
    save_prices(saved, from_bars)
    report = await run_backtest(_idle_bot, load_prices(saved))
    assert report.ticks == len(from_bars)
    assert report.end_ms == from_bars[-1].t_ms


async def _idle_bot(client: AsyncClient, account_id: int) -> None:
    await client.send_subscribe_spots_req(account_id, [EURUSD])


def test_price_files_and_bars(tmp_path: Path) -> None:
    ticks = synthetic_prices(EURUSD, START, 5, seed=1)
    saved = tmp_path / "ticks.csv"
    save_prices(saved, ticks)
    assert load_prices(saved) == ticks
    bars_csv = tmp_path / "bars.csv"
    bars_csv.write_text(
        "time,open,high,low,close,tick_volume\n"
        "2023-11-14T22:13:00Z,1.08000,1.08050,1.07990,1.08040,12\n"
        "2023-11-14T22:14:00Z,1.08040,1.08045,1.07900,1.07950,9\n"
    )
    from_bars = load_prices(bars_csv, symbol="EUR/USD")
    assert [(t.t_ms - 1_700_000_000_000 + 20_000, t.bid) for t in from_bars] == [
        (0, 108_000),
        (15_000, 107_990),
        (30_000, 108_050),
        (45_000, 108_040),
        (60_000, 108_040),
        (75_000, 108_045),
        (90_000, 107_900),
        (105_000, 107_950),
    ]
    assert all(t.ask - t.bid == from_bars[0].ask - from_bars[0].bid for t in from_bars)
    assert prices_from_bars([(0, 10, 12, 9, 11)], EURUSD, 4, spread=1)[1] == PriceTick(1, EURUSD, 9, 10)
    with pytest.raises(BacktestError, match="say which symbol"):
        load_prices(bars_csv)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(BacktestError, match="neither"):
        load_prices(bad)
    bad.write_text("t_ms,symbol_id,bid,ask\n1,1,100,90\n")
    with pytest.raises(BacktestError, match="bid <= ask"):
        load_prices(bad)
    bad.write_text("t_ms,symbol_id,bid,ask\n1,1,x,90\n")
    with pytest.raises(BacktestError, match="malformed"):
        load_prices(bad)


async def test_errors_are_typed(tmp_path: Path) -> None:
    async def broken(client: AsyncClient, account_id: int) -> None:
        raise RuntimeError("strategy bug")

    with pytest.raises(BacktestError, match="the bot failed") as failed:
        await run_backtest(broken, synthetic_prices(EURUSD, START, 10))
    assert isinstance(failed.value.__cause__, RuntimeError)
    with pytest.raises(BacktestError, match="no prices"):
        await run_backtest(broken, [])
    with pytest.raises(BacktestError, match="no symbol 999"):
        await run_backtest(broken, [PriceTick(START, 999, 1, 2)])
    with pytest.raises(ValueError, match="speed"):
        await run_backtest(broken, synthetic_prices(EURUSD, START, 2), speed=0)
    module = tmp_path / "not_a_bot.py"
    module.write_text("def main(client, account_id):\n    pass\n")
    with pytest.raises(BacktestError, match="no coroutine function main"):
        load_bot(str(module))
    with pytest.raises(BacktestError, match="no bot module"):
        load_bot(str(tmp_path / "missing.py"))
    with pytest.raises(BacktestError, match="cannot import"):
        load_bot("no_such_package_for_ctrader.bot")


def test_plot_without_matplotlib(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ctrader_typed.backtest import BacktestReport

    report = BacktestReport(1, "USD", 0, 0, 0, (), Decimal(1), Decimal(1), Decimal(1), 0, (), 0.0)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(MissingExtraError, match="plot"):
        report.plot(tmp_path / "x.png")
