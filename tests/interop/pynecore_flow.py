"""PyneCore's cTrader plugin (``pynesys-pynecore-ctrader``) against our simulator, configured only.

Runs in its own virtualenv (see ``run_interop.py``); reads the simulator's JSON line from
``$CTRADER_SIM_INFO``. The plugin is pointed at the simulator the way a user points it at a proxy:

- its config (``CTraderConfig``: ``demo``, ``client_id``, ``client_secret``, ``account_id``, ``host``,
  ``port``), also written to ``<workdir>/config/plugins/ctrader.toml`` where its broker listing
  reads it;
- its token cache ``<workdir>/cache/ctrader.json``, seeded with a *stale* access token and the
  simulator's refresh token, so the first connection takes the plugin's refresh-on-socket path
  (``ProtoOARefreshTokenReq``) and writes the rotated pair back;
- ``SSL_CERT_FILE`` naming the simulator's CA: the plugin builds ``ssl.create_default_context()``,
  which reads it, so certificate and host name are verified against the simulator's CA.

Then it runs the plugin's data-provider and broker surface: broker list, symbol list, symbol info,
OHLCV download (bid trendbars, then with the ask side rebuilt from tick data), the live connection
(handshake, account probe, live bars from spots and live trendbars, balance), a market entry and its
fill on ``watch_orders``, a native SL/TP bracket, a LIMIT order listed and then cancelled, the close
and its fill, and the disconnect. Exits 0 only if every step held.

Not exercised, because the plugin cannot be pointed elsewhere: the OAuth code exchange
(``pyne ctrader auth``) sends the code to the module constant ``TOKEN_URI`` on openapi.ctrader.com.

Versions exercised (pinned in ``run_interop.py``): ``pynesys-pynecore-ctrader`` 0.9.4 (the newest on
PyPI when written; Python >= 3.11), ``pynesys-pynecore[cli]`` 6.11.0 (its token cache lives under
PyneCore's CLI state), ``typer`` 0.28.0 (6.11.0's CLI imports ``typer._types``, gone in typer 0.29,
although it declares ``typer>=0.16``) and ``protobuf`` 7.36.2.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SYMBOL = "EURUSD"
BROKER = "simbroker"
QTY = 1000.0  # units (the plugin's Pine-level quantity); 100,000 centi-units on the wire
STEP_TIMEOUT_S = 60.0


class FlowError(Exception):
    """A step did not hold."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise FlowError(message)


def ok(step: str) -> None:
    print(f"ok: {step}", flush=True)


def prepare_workdir(info: dict[str, Any]) -> Path:
    """A fresh PyneCore workdir holding the plugin's config file and a token cache to refresh."""
    workdir = Path(tempfile.mkdtemp(prefix="pynecore-interop-")) / "workdir"
    (workdir / "config" / "plugins").mkdir(parents=True)
    (workdir / "cache").mkdir()
    (workdir / "data").mkdir()
    toml = "\n".join(
        [
            "demo = true",
            f"client_id = {json.dumps(info['client_id'])}",
            f"client_secret = {json.dumps(info['client_secret'])}",
            f"account_id = {json.dumps(str(info['accounts'][0]))}",
            f"host = {json.dumps(info['host'])}",
            f"port = {int(info['port'])}",
            "",
        ]
    )
    (workdir / "config" / "plugins" / "ctrader.toml").write_text(toml)
    stale = {
        "demo": {
            "access_token": "stale-access-token-the-server-never-issued",
            "refresh_token": info["refresh_token"],
            "token_type": "bearer",
            "expires_in": 0,
        }
    }
    session = workdir / "cache" / "ctrader.json"
    session.write_text(json.dumps(stale))
    session.chmod(0o600)
    return workdir


class Flow:
    def __init__(self, info: dict[str, Any], workdir: Path) -> None:
        self.info = info
        self.workdir = workdir
        app: Any = importlib.import_module("pynecore.cli.app")
        app.app_state.workdir = workdir  # what `pyne --workdir` does
        plugin: Any = importlib.import_module("pynecore_ctrader")
        self.plugin: Any = plugin
        self.models: Any = importlib.import_module("pynecore.core.broker.models")
        self.ohlcv: Any = importlib.import_module("pynecore.core.ohlcv")
        self.CTrader: Any = plugin.CTrader
        self.config: Any = plugin.CTraderConfig(
            demo=True,
            client_id=info["client_id"],
            client_secret=info["client_secret"],
            account_id=str(info["accounts"][0]),
            host=info["host"],
            port=int(info["port"]),
        )

    def provider(
        self, symbol: str | None, timeframe: str | None = None, ohlcv_dir: Path | None = None
    ) -> Any:
        return self.CTrader(symbol=symbol, timeframe=timeframe, ohlcv_dir=ohlcv_dir, config=self.config)

    def session_tokens(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.workdir / "cache" / "ctrader.json").read_text())
        demo: dict[str, Any] = data["demo"]
        return demo

    # -- data provider (each call opens and closes its own connection) -----------------------------

    def brokers(self) -> None:
        brokers = self.CTrader.get_list_of_brokers()
        check(len(brokers) == 1, f"expected one demo broker, got {brokers}")
        check(brokers[0].id == BROKER, f"broker id {brokers[0].id!r} is not the brokerName slug {BROKER!r}")
        tokens = self.session_tokens()
        check(
            tokens["access_token"] not in ("", "stale-access-token-the-server-never-issued"),
            "the stale access token was not refreshed",
        )
        check(tokens["refresh_token"], "the refreshed session has no refresh token")
        ok(f"broker list {[(b.id, b.name) for b in brokers]} (stale token refreshed over the socket)")

    def symbols(self) -> None:
        names = self.provider(BROKER).get_list_of_symbols()
        check(SYMBOL in names, f"{SYMBOL} not in {names}")
        check(names == sorted(names), "symbol list not sorted")
        ok(f"symbol list ({len(names)} enabled symbols)")

    def symbol_info(self) -> None:
        info = self.provider(f"{BROKER}:{SYMBOL}", "1").update_symbol_info()
        check(info.ticker == SYMBOL, f"ticker {info.ticker!r}")
        check(info.currency == "USD" and info.basecurrency == "EUR", f"{info.basecurrency}/{info.currency}")
        check(abs(info.mintick - 1e-5) < 1e-12 and info.pricescale == 100000, f"mintick {info.mintick}")
        check(bool(info.opening_hours), "no opening hours from the symbol's schedule")
        ok(f"symbol info ({info.description}, mintick {info.mintick}, {len(info.opening_hours)} sessions)")

    def download(self, timeframe: str, span: timedelta, *, with_extra: bool) -> None:
        out = self.workdir / "data" / f"{timeframe}-{'extra' if with_extra else 'bid'}"
        out.mkdir()
        provider = self.provider(f"{BROKER}:{SYMBOL}", timeframe, out)
        provider.get_symbol_info()
        end = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0) - timedelta(minutes=2)
        with provider:
            provider.download_ohlcv(end - span, end, with_extra=with_extra)
        period_ms = {"1": 60_000, "60": 3_600_000}[timeframe]
        with self.ohlcv.OHLCVReader(provider.ohlcv_path) as reader:
            bars = list(reader)
        expected = span // timedelta(milliseconds=period_ms)
        check(expected * 0.9 <= len(bars) <= expected + 1, f"{len(bars)} bars for {expected} periods")
        previous = None
        for bar in bars:
            check(bar.timestamp % period_ms == 0, f"bar at {bar.timestamp} is not on a period boundary")
            check(previous is None or bar.timestamp > previous, "bars not in ascending order")
            check(
                bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high, f"bad bar {bar}"
            )
            previous = bar.timestamp
        start, stop = (end - span).replace(tzinfo=UTC), end.replace(tzinfo=UTC)
        check(bars[0].timestamp >= start.timestamp() * 1000 - period_ms, "first bar before the window")
        check(bars[-1].timestamp < stop.timestamp() * 1000, "last bar after the window")
        extra = ""
        if with_extra:
            sidecars = list(out.rglob("*.extra.csv"))
            check(len(sidecars) == 1, f"expected one .extra.csv ask sidecar, found {sidecars}")
            rows = sidecars[0].read_text().splitlines()
            check(len(rows) > 1, "the ask sidecar is empty")
            extra = f", ask side from ticks in {sidecars[0].name} ({len(rows) - 1} rows)"
        label = f"{span.days} days" if span.days else f"{span.seconds // 60} minutes"
        ok(f"OHLCV download, timeframe {timeframe}, {label} ({len(bars)} bars{extra})")

    # -- live connection and broker ------------------------------------------------------------------

    async def within(self, what: str, awaitable: Coroutine[Any, Any, Any]) -> Any:
        try:
            return await asyncio.wait_for(awaitable, STEP_TIMEOUT_S)
        except TimeoutError:
            raise FlowError(f"timed out: {what}") from None

    def envelope(self, intent: Any) -> Any:
        return self.models.DispatchEnvelope(
            intent=intent, run_tag="nx01", bar_ts_ms=int(time.time() // 60 * 60_000)
        )

    async def next_fill(self, fills: asyncio.Queue[Any], what: str) -> Any:
        while True:
            event = await self.within(what, fills.get())
            if event.event_type == "filled":
                return event

    async def balances(self) -> None:
        """Each other demo account's balance, in its own deposit currency and ``moneyDigits``."""
        seen = []
        for account in self.info["accounts"][1:]:
            if account in self.info.get("live_accounts", []):
                continue
            config = self.plugin.CTraderConfig(**{**vars(self.config), "account_id": str(account)})
            broker = self.CTrader(symbol=f"{BROKER}:{SYMBOL}", timeframe="1", config=config)
            await self.within("connect", broker.connect())
            try:
                balance = await self.within("balance", broker.get_balance())
            finally:
                await broker.disconnect()
            check(len(balance) == 1, f"account {account}: balance {balance}")
            ((currency, amount),) = balance.items()
            # The default accounts hold deposits of thousands (EUR, GBP) or millions (JPY): a
            # balance scaled by the wrong moneyDigits is off by a factor of 10 or more.
            low, high = (100_000, 100_000_000) if currency == "JPY" else (1_000, 1_000_000)
            check(low <= amount < high, f"account {account}: {amount} {currency} is out of scale")
            seen.append(f"{amount:g} {currency}")
        check(len(seen) >= 3, f"expected three more demo accounts, got {seen}")
        ok(f"balances of the other demo accounts ({', '.join(seen)})")

    async def live(self) -> None:
        await self.balances()
        models = self.models
        live = self.provider(f"{BROKER}:{SYMBOL}", "1")
        await self.within("connect", live.connect())
        try:
            await self.trade(live, models)
        finally:
            await live.disconnect()
        check(not live.is_connected, "still connected after disconnect")
        ok("disconnect")

    async def trade(self, live: Any, models: Any) -> None:
        account = self.info["accounts"][0]
        check(live.is_connected, "not connected after connect()")
        check(live.account_id == f"ctrader-demo-{account}", f"account id {live.account_id!r}")
        ok(f"live connection ({live.account_id}, hedging={live.hedging_enabled})")

        bars = [await self.within("a live bar", live.watch_ohlcv(SYMBOL, "1")) for _ in range(3)]
        minute = (time.time() // 60) * 60_000
        for bar in bars:
            check(abs(bar.timestamp - minute) <= 60_000, f"live bar at {bar.timestamp}, now {minute}")
            check(bar.low <= bar.close <= bar.high, f"live bar {bar}")
            check(bool(bar.extra_fields) and "ask_close" in bar.extra_fields, "no ask side on the live bar")
            check(bar.extra_fields["ask_close"] >= bar.close, "ask below bid on the live bar")
        ok(f"live OHLCV ({len(bars)} updates of the forming bar, close {bars[-1].close})")

        balance = await self.within("balance", live.get_balance())
        check(list(balance) == ["USD"] and balance["USD"] > 0, f"balance {balance}")
        ok(f"balance {balance}")

        fills: asyncio.Queue[Any] = asyncio.Queue()

        async def pump() -> None:
            async for event in live.watch_orders():
                await fills.put(event)

        watcher = asyncio.create_task(pump())
        try:
            await self.orders(live, models, fills)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def orders(self, live: Any, models: Any, fills: asyncio.Queue[Any]) -> None:
        market = models.EntryIntent(
            pine_id="long", symbol=SYMBOL, side="buy", qty=QTY, order_type=models.OrderType.MARKET
        )
        placed = await self.within("market entry", live.execute_entry(self.envelope(market)))
        check(len(placed) == 1 and placed[0].side == "buy", f"entry orders {placed}")
        fill = await self.next_fill(fills, "the entry fill")
        check(fill.fill_qty == QTY and fill.fill_price and fill.fill_price > 0, f"entry fill {fill}")
        position = await self.within("position", live.get_position(SYMBOL))
        check(position is not None and position.side == "long" and position.size == QTY, f"{position}")
        ok(f"market entry -> fill on watch_orders ({fill.fill_qty} at {fill.fill_price})")

        entry = position.entry_price
        tp, sl = round(entry + 0.0050, 5), round(entry - 0.0050, 5)
        bracket = models.ExitIntent(
            pine_id="bracket",
            from_entry="long",
            symbol=SYMBOL,
            side="sell",
            qty=QTY,
            tp_price=tp,
            sl_price=sl,
        )
        legs = await self.within("SL/TP bracket", live.execute_exit(self.envelope(bracket)))
        kinds = sorted(str(leg.order_type) for leg in legs)
        check(len(legs) == 2, f"bracket legs {legs}")
        prices = sorted(x for leg in legs for x in (leg.price, leg.stop_price) if x is not None)
        check(prices == [sl, tp], f"bracket prices {prices}, expected {[sl, tp]}")
        ok(f"native SL/TP bracket ({sl} / {tp}; legs {kinds})")

        limit_price = round(entry - 0.0200, 5)
        working = models.EntryIntent(
            pine_id="dip",
            symbol=SYMBOL,
            side="buy",
            qty=QTY,
            order_type=models.OrderType.LIMIT,
            limit=limit_price,
        )
        placed = await self.within("limit entry", live.execute_entry(self.envelope(working)))
        check(len(placed) == 1, f"limit orders {placed}")
        open_orders = await self.within("open orders", live.get_open_orders(SYMBOL))
        check(
            [(o.order_type, o.price) for o in open_orders] == [(models.OrderType.LIMIT, limit_price)],
            f"open orders {open_orders}",
        )
        await self.within("cancel", live.cancel_broker_order_ref(open_orders[0].id))
        remaining = await self.within("open orders", live.get_open_orders(SYMBOL))
        check(remaining == [], f"orders left after the cancel: {remaining}")
        ok(f"LIMIT order at {limit_price} listed, then cancelled")

        legs_open = await self.within("raw positions", live.fetch_raw_positions(SYMBOL))
        check(len(legs_open) == 1 and legs_open[0].qty == QTY, f"raw position legs {legs_open}")

        close = models.CloseIntent(pine_id="long", symbol=SYMBOL, side="sell", qty=QTY, immediately=True)
        await self.within("close", live.execute_close(self.envelope(close)))
        fill = await self.next_fill(fills, "the closing fill")
        check(fill.fill_qty == QTY, f"closing fill {fill}")
        after = await self.within("position", live.get_position(SYMBOL))
        check(after is None or after.size == 0, f"position after the close: {after}")
        ok(f"close -> fill on watch_orders ({fill.fill_qty} at {fill.fill_price}); flat")


def main() -> int:
    raw = os.environ.get("CTRADER_SIM_INFO")
    if not raw:
        print("CTRADER_SIM_INFO is not set (run_interop.py sets it)", file=sys.stderr)
        return 2
    info: dict[str, Any] = json.loads(raw)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ["SSL_CERT_FILE"] = info["ca_file"]
    plugin_version = importlib.import_module("importlib.metadata").version("pynesys-pynecore-ctrader")
    core_version = importlib.import_module("importlib.metadata").version("pynesys-pynecore")
    print(f"pynesys-pynecore-ctrader {plugin_version}, pynesys-pynecore {core_version}", flush=True)
    workdir = prepare_workdir(info)
    flow = Flow(info, workdir)
    try:
        flow.brokers()
        flow.symbols()
        flow.symbol_info()
        flow.download("1", timedelta(days=3), with_extra=False)
        flow.download("60", timedelta(days=20), with_extra=False)
        flow.download("1", timedelta(minutes=20), with_extra=True)
        asyncio.run(flow.live())
    except Exception as exc:  # any failure ends the flow with its reason
        print(f"FAILED: {type(exc).__name__}: {exc}", flush=True)
        return 1
    finally:
        shutil.rmtree(workdir.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
