"""``ctrader-typed account``: balance, equity, margin, positions and orders, kept live until Ctrl-C.

Built on ``ctrader_typed.track_account``: the figures are the tracked account's (server-given
balance and margin, unrealized P&L anchored on the server's and computed from quotes between
anchors). On a terminal the view is redrawn in place (a rich live table with the ``cli``
extra); otherwise every change is one line on stdout: a figures line whenever a figure
changes, and a line per position, order, deal or balance event.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, TextIO

from ctrader_typed._cli import _ui
from ctrader_typed._cli._common import EXIT_USAGE, CLIError, Progress, Settings, add_connection_arguments
from ctrader_typed.units import volume_to_units

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.table import Table

    from ctrader_typed._generated.messages import CtidTraderAccount
    from ctrader_typed.account import AccountChange, AccountSnapshot, OrderState, PositionState
    from ctrader_typed.symbols import SymbolCatalogue, SymbolInfo

# The client and the account tracker are imported by the handler, so that --help stays quick.

HELP = "live balance, equity, margin, positions and orders until Ctrl-C"

POSITION_COLUMNS = (
    "position",
    "symbol",
    "side",
    "volume",
    "entry",
    "SL",
    "TP",
    "swap",
    "commission",
    "net P&L",
)
ORDER_COLUMNS = ("order", "symbol", "type", "side", "volume", "price", "SL", "TP")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "account",
        help=HELP,
        description="Show the account's balance, equity, used and free margin, margin level, open "
        "positions and pending orders, kept up to date until Ctrl-C (or --duration). On a terminal "
        "the view updates in place; otherwise a figures line is printed whenever a figure changes, "
        "and one line per position, order, deal or balance change.",
    )
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds")
    add_connection_arguments(parser)
    parser.set_defaults(handler=run, interrupt_exit=0)


# -- what is shown ----------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]


def _money(value: Decimal, digits: int) -> str:
    return f"{value:.{digits}f}"


def _position_id(position: PositionState) -> int:
    return position.position_id


def _order_id(order: OrderState) -> int:
    return order.order_id


def _units(volume: int) -> str:
    """A protocol volume as units: ``1000000`` -> ``10000``, ``150`` -> ``1.5``."""
    units = volume_to_units(volume)
    text = f"{units:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _level(value: Decimal | None) -> str:
    return "-" if value is None else f"{value}%"


def figures(snapshot: AccountSnapshot) -> list[tuple[str, str]]:
    """The account's figures as ``(name, text)``, in the order shown."""
    digits = snapshot.money_digits
    return [
        ("balance", _money(snapshot.balance, digits)),
        ("equity", _money(snapshot.equity, digits)),
        ("used_margin", _money(snapshot.used_margin, digits)),
        ("free_margin", _money(snapshot.free_margin, digits)),
        ("margin_level", _level(snapshot.margin_level)),
        ("unrealized_net", _money(snapshot.unrealized_net, digits)),
        ("positions", str(len(snapshot.positions))),
        ("orders", str(len(snapshot.orders))),
    ]


class AccountView:
    """What both renderings share: the account's title, symbol names and table rows."""

    def __init__(self, account: CtidTraderAccount, symbols: Mapping[int, SymbolInfo]) -> None:
        from ctrader_typed.accounts import describe_account

        self.title = describe_account(account)
        self.symbols = symbols
        """What is known of the symbols of the positions and orders (names, digits), by id."""
        self.snapshot: AccountSnapshot | None = None

    def symbol(self, symbol_id: int) -> str:
        info = self.symbols.get(symbol_id)
        return info.name if info is not None else str(symbol_id)

    def price(self, symbol_id: int, value: Decimal | float | None) -> str:
        """A price with the symbol's digits (``2.00000``), ``-`` for none."""
        if value is None:
            return "-"
        number = value if isinstance(value, Decimal) else Decimal(repr(value))
        info = self.symbols.get(symbol_id)
        return str(number if info is None else number.quantize(Decimal(1).scaleb(-info.digits)))

    def positions(self) -> list[PositionState]:
        return [] if self.snapshot is None else sorted(self.snapshot.positions.values(), key=_position_id)

    def orders(self) -> list[OrderState]:
        return [] if self.snapshot is None else sorted(self.snapshot.orders.values(), key=_order_id)

    def position_row(self, position: PositionState) -> list[str]:
        digits = self.snapshot.money_digits if self.snapshot is not None else 2
        return [
            str(position.position_id),
            self.symbol(position.symbol_id),
            position.side.name,
            _units(position.volume),
            self.price(position.symbol_id, position.entry_price),
            self.price(position.symbol_id, position.stop_loss),
            self.price(position.symbol_id, position.take_profit),
            _money(position.swap, digits),
            _money(position.commission, digits),
            _money(position.unrealized_net, digits),
        ]

    def order_row(self, order: OrderState) -> list[str]:
        price = order.limit_price if order.limit_price is not None else order.stop_price
        return [
            str(order.order_id),
            self.symbol(order.symbol_id),
            order.order_type.name,
            order.side.name,
            _units(order.volume),
            self.price(order.symbol_id, price),
            self.price(order.symbol_id, order.stop_loss),
            self.price(order.symbol_id, order.take_profit),
        ]

    def lines(self) -> list[str]:
        """The whole view as plain text lines (the plain terminal rendering)."""
        from ctrader_typed._cli._common import render_table

        snapshot = self.snapshot
        if snapshot is None:
            return [self.title]
        named = figures(snapshot)
        out = [f"{self.title}, {snapshot.deposit_asset}", ""]
        out += render_table([n.replace("_", " ") for n, _ in named[:6]], [[v for _, v in named[:6]]]).split(
            "\n"
        )
        out.append("")
        if snapshot.positions:
            rows = [self.position_row(p) for p in self.positions()]
            out += render_table(POSITION_COLUMNS, rows).split("\n")
        else:
            out.append("no open positions")
        out.append("")
        if snapshot.orders:
            out += render_table(ORDER_COLUMNS, [self.order_row(o) for o in snapshot.orders.values()]).split(
                "\n"
            )
        else:
            out.append("no pending orders")
        return out

    def describe(self, change: AccountChange) -> str | None:
        """One line for a change worth telling (``None`` for figures that merely moved)."""
        from ctrader_typed.account import (
            BalanceChanged,
            CloseReason,
            DealExecuted,
            OrderPlaced,
            OrderRemoved,
            OrderUpdated,
            PositionClosed,
            PositionOpened,
            PositionUpdated,
            Resynced,
        )

        digits = change.snapshot.money_digits
        text: str | None = None
        if isinstance(change, PositionOpened):
            p = change.position
            text = f"position {p.position_id} opened: {self._position(p)} at {self.price(p.symbol_id, p.entry_price)}"
        elif isinstance(change, PositionUpdated):
            p = change.position
            text = (
                f"position {p.position_id} updated: {self._position(p)} at {self.price(p.symbol_id, p.entry_price)}"
                f" SL {self.price(p.symbol_id, p.stop_loss)} TP {self.price(p.symbol_id, p.take_profit)}"
            )
        elif isinstance(change, PositionClosed):
            p = change.position
            why = "" if change.reason is CloseReason.CLOSED else f" ({change.reason.value.replace('_', ' ')})"
            text = f"position {p.position_id} closed{why}: {self._position(p)}"
        elif isinstance(change, OrderPlaced):
            text = f"order {change.order.order_id} placed: {self._order(change.order)}"
        elif isinstance(change, OrderUpdated):
            text = f"order {change.order.order_id} updated: {self._order(change.order)}"
        elif isinstance(change, OrderRemoved):
            status = change.status.name.removeprefix("ORDER_STATUS_").lower() if change.status else "unknown"
            text = f"order {change.order.order_id} removed ({status})"
        elif isinstance(change, DealExecuted):
            deal = change.deal
            text = (
                f"deal {deal.deal_id}: {deal.trade_side.name} {_units(deal.filled_volume)} "
                f"{self.symbol(deal.symbol_id)} at {self.price(deal.symbol_id, deal.execution_price)}"
                f" (position {deal.position_id})"
            )
        elif isinstance(change, BalanceChanged):
            text = f"balance {_money(change.previous, digits)} -> {_money(change.balance, digits)}"
        elif isinstance(change, Resynced):
            text = f"resynced with the server: {change.offline_deals} deals while offline"
        if text is not None and change.offline:
            text += " (while offline)"
        return text

    def _position(self, position: PositionState) -> str:
        return f"{position.side.name} {_units(position.volume)} {self.symbol(position.symbol_id)}"

    def _order(self, order: OrderState) -> str:
        price = order.limit_price if order.limit_price is not None else order.stop_price
        return (
            f"{order.order_type.name} {order.side.name} {_units(order.volume)} "
            f"{self.symbol(order.symbol_id)} at {self.price(order.symbol_id, price)}"
        )


class AccountLines(AccountView):
    """Off a terminal: a figures line when a figure changes, a line per event."""

    def __init__(self, account: CtidTraderAccount, symbols: Mapping[int, SymbolInfo], out: TextIO) -> None:
        super().__init__(account, symbols)
        self.out = out
        self._last = ""

    def __enter__(self) -> AccountLines:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def show(self, snapshot: AccountSnapshot, change: AccountChange | None) -> None:
        self.snapshot = snapshot
        stamp = _now()
        if change is None:
            self.out.write(f"{stamp} account {self.title}, {snapshot.deposit_asset}\n")
        else:
            told = self.describe(change)
            if told is not None:
                self.out.write(f"{stamp} {told}\n")
        line = " ".join(f"{name} {value}" for name, value in figures(snapshot))
        if line != self._last:
            self._last = line
            self.out.write(f"{stamp} {line}\n")
        self.out.flush()


class AccountBoard(AccountView):
    """On a terminal without rich: the view redrawn in place, cut to the terminal's size."""

    def __init__(
        self,
        account: CtidTraderAccount,
        symbols: Mapping[int, SymbolInfo],
        out: TextIO,
        *,
        size: Callable[[], os.terminal_size] | None = None,
    ) -> None:
        super().__init__(account, symbols)
        self.out = out
        self._size = size if size is not None else lambda: _ui.terminal_size(out)
        self._drawn = 0

    def __enter__(self) -> AccountBoard:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def show(self, snapshot: AccountSnapshot, change: AccountChange | None) -> None:
        self.snapshot = snapshot
        lines = self.lines()
        size = self._size()
        room = max(size.lines - 1, 1)  # never fill the last row: that would scroll the screen
        if len(lines) > room:
            hidden = len(lines) - room + 1
            lines = [*lines[: room - 1], f"... {hidden} more lines; a taller terminal shows them"]
        lines = [_ui.fit(line, size.columns) for line in lines]  # a wrapped row would break the count
        if self._drawn:
            self.out.write(f"\x1b[{self._drawn}F")
        self.out.write("".join(f"\x1b[2K{line}\n" for line in lines) + "\x1b[J")
        self.out.flush()
        self._drawn = len(lines)


class RichAccountBoard(AccountView):
    """The view as rich live tables, cut to the terminal's height, P&L coloured."""

    def __init__(
        self,
        account: CtidTraderAccount,
        symbols: Mapping[int, SymbolInfo],
        console: Console,
        *,
        auto_refresh: bool = True,
    ) -> None:
        super().__init__(account, symbols)
        self.console = console
        self.live = _ui.live_board(self, console, auto_refresh=auto_refresh, refresh_per_second=4)

    def __enter__(self) -> RichAccountBoard:
        self.live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.live.stop()

    def show(self, snapshot: AccountSnapshot, change: AccountChange | None) -> None:
        self.snapshot = snapshot
        if not self.live.auto_refresh:
            self.live.refresh()

    def _table(
        self, columns: Sequence[str], rows: Sequence[Sequence[str]], *, signed: int | None = None
    ) -> Table:
        from rich import box
        from rich.table import Table
        from rich.text import Text

        table = Table(
            box=box.SIMPLE_HEAD, header_style="bold", show_edge=False, pad_edge=False, collapse_padding=True
        )
        for name in columns:
            table.add_column(
                name,
                justify="left" if name in {"symbol", "side", "type"} else "right",
                no_wrap=True,
                overflow="ellipsis",
            )
        for row in rows:
            cells: list[str | Text] = list(row)
            if signed is not None:
                value = row[signed]
                style = "red" if value.startswith("-") else ("green" if value.strip("0.") else "")
                cells[signed] = Text(value, style=style)
            table.add_row(*cells)
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.text import Text

        snapshot = self.snapshot
        if snapshot is None:
            yield Text(self.title)
            return
        yield Text(f"{self.title}, {snapshot.deposit_asset}", style="bold", no_wrap=True, overflow="ellipsis")
        named = figures(snapshot)[:6]
        yield self._table([n.replace("_", " ") for n, _ in named], [[v for _, v in named]], signed=5)
        if snapshot.positions:
            rows = [self.position_row(p) for p in self.positions()]
            yield self._table(POSITION_COLUMNS, rows, signed=len(POSITION_COLUMNS) - 1)
        else:
            yield Text("no open positions", style="dim")
        if snapshot.orders:
            yield self._table(ORDER_COLUMNS, [self.order_row(o) for o in self.orders()])
        else:
            yield Text("no pending orders", style="dim")


# -- the command ------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, progress: Progress) -> int:
    from ctrader_typed._cli._session import open_session
    from ctrader_typed.account import track_account
    from ctrader_typed.events import Disconnected, Reconnected
    from ctrader_typed.symbols import SymbolCatalogue

    if args.duration is not None and args.duration <= 0:
        raise CLIError("--duration must be more than 0 seconds", exit_code=EXIT_USAGE)
    settings = Settings.from_args(args)
    async with open_session(settings, progress) as session:
        assert session.account is not None
        client = session.client
        catalogue = SymbolCatalogue(client, session.account_id)
        names = _SymbolNames(catalogue)
        symbols = names.known
        with progress.step("reading the account's state"):
            tracked = await track_account(client, session.account_id)
            await names.learn(tracked.snapshot)
        console = _ui.rich_console(sys.stdout)
        board: AccountLines | AccountBoard | RichAccountBoard
        if console is not None:
            board = RichAccountBoard(session.account, symbols, console)
        elif sys.stdout.isatty():
            board = AccountBoard(session.account, symbols, sys.stdout)
        else:
            board = AccountLines(session.account, symbols, sys.stdout)
        registrations = [
            client.on(
                Disconnected, lambda event: progress.info(f"connection lost ({event.reason}); reconnecting")
            ),
            client.on(Reconnected, lambda event: progress.info("reconnected; reconciling the account")),
        ]
        try:
            async with tracked, tracked.changes() as changes:
                if args.duration is None:
                    progress.info("live account; press Ctrl-C to stop")
                deadline = asyncio.timeout(args.duration)
                try:
                    with board:
                        board.show(tracked.snapshot, None)  # after the stream opened: nothing is missed
                        async with deadline:
                            async for change in changes:
                                await names.learn(change.snapshot)
                                board.show(change.snapshot, change)
                except TimeoutError:
                    if not deadline.expired():
                        raise
        finally:
            for registration in registrations:
                registration()
            catalogue.close()
    return 0


class _SymbolNames:
    """The names and digits of the symbols an account's positions and orders use, learnt as they appear."""

    def __init__(self, catalogue: SymbolCatalogue) -> None:
        self.catalogue = catalogue
        self.known: dict[int, SymbolInfo] = {}
        self._failed: set[int] = set()

    async def learn(self, snapshot: AccountSnapshot) -> None:
        """Fetch what is not known yet of the snapshot's symbols (one request for them all)."""
        from ctrader_typed.errors import CTraderError

        wanted = {p.symbol_id for p in snapshot.positions.values()}
        wanted |= {o.symbol_id for o in snapshot.orders.values()}
        missing = sorted(wanted - self.known.keys() - self._failed)
        if not missing:
            return
        try:
            infos = await self.catalogue.get_many(missing)
        except CTraderError:  # e.g. a symbol archived meanwhile: shown by id, prices as sent
            self._failed.update(missing)
            return
        self.known.update((info.symbol_id, info) for info in infos)
