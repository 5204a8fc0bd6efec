"""``ctrader-typed account``: the live account view, run as a subprocess against ``ctrader-typed sim``.

A second client, in the test, trades on the same account; the command must show each change.
Every wait ends on something the command prints (or on its exit); the timeouts are hang guards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import ssl
import struct
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TypeVar

import pytest

from ctrader_typed._generated.enums import ExecutionType, OrderType, TradeSide
from ctrader_typed.client import AsyncClient
from tests.integration.cli_support import (
    ANSI,
    AT_A_TERMINAL,
    CLI,
    HANG_GUARD,
    Lines,
    SimInfo,
    at_the_pty_size,
    in_process,
    one_error_line_of,
    read_terminal,
    run,
    running_sim,
    sim_env,
    stop_process,
)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="signals and pseudo-terminals")

T = TypeVar("T")

EURUSD, GBPUSD = 1, 2
FIGURES = (
    "balance",
    "equity",
    "used_margin",
    "free_margin",
    "margin_level",
    "unrealized_net",
    "positions",
    "orders",
)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimInfo]:
    with running_sim(tmp_path_factory.mktemp("sim") / "sim.log") as info:
        yield info


@pytest.fixture
def sim_access(sim: SimInfo, tmp_path: Path) -> dict[str, str]:
    """The environment the simulator's ``--print-env`` lines give: its access token, no ``auth``."""
    return sim_env(sim, tmp_path, CTRADER_ACCESS_TOKEN=sim["access_token"])


@contextlib.asynccontextmanager
async def trader(sim: SimInfo, account_id: int) -> AsyncIterator[AsyncClient]:
    """Another client of the simulator with ``account_id`` authorised: the one that trades."""
    client = AsyncClient(
        sim["host"], sim["port"], ssl_context=ssl.create_default_context(cafile=sim["ca_file"])
    )
    await client.connect()
    try:
        await client.send_application_auth_req(sim["client_id"], sim["client_secret"])
        await client.send_account_auth_req(account_id, sim["access_token"])
        yield client
    finally:
        await client.close()


def trade(sim: SimInfo, account_id: int, step: Callable[[AsyncClient], Awaitable[T]]) -> T:
    """Run ``step`` with a trading client of ``account_id`` (a connection of its own)."""

    async def go() -> T:
        async with trader(sim, account_id) as client:
            return await step(client)

    return asyncio.run(go())


def figures_of(line: str) -> dict[str, str]:
    """``{name: value}`` of a figures line: ``HH:MM:SS.mmm balance 12000.00 equity ... orders 0``."""
    words = line.split()[1:]
    assert words[0::2] == list(FIGURES), line
    return dict(zip(words[0::2], words[1::2], strict=True))


def next_line(lines: Lines, pattern: str) -> str:
    """The next stdout line that matches ``pattern`` (a regular expression searched after the time)."""
    compiled = re.compile(pattern)
    while True:
        line = lines.next()
        assert line, f"output ended before a line matching {pattern!r}"
        if compiled.search(line.split(" ", 1)[-1]):
            return line.strip()


def check_figures(figures: dict[str, str]) -> None:
    """The derived figures agree with the others, to the cent."""
    balance, equity = Decimal(figures["balance"]), Decimal(figures["equity"])
    margin, free = Decimal(figures["used_margin"]), Decimal(figures["free_margin"])
    assert equity == balance + Decimal(figures["unrealized_net"])
    assert free == equity - margin
    if margin:
        level = (equity * 100 / margin).quantize(Decimal("0.01"), ROUND_HALF_UP)
        assert Decimal(figures["margin_level"].rstrip("%")) == level
    else:
        assert figures["margin_level"] == "-"


async def open_position(client: AsyncClient, account_id: int, side: TradeSide, volume: int) -> int:
    filled = await client.wait_for_order_outcome(
        await client.send_new_order_req(account_id, EURUSD, OrderType.MARKET, side, volume),
        timeout=HANG_GUARD,
    )
    assert filled.execution_type == ExecutionType.ORDER_FILLED
    assert filled.position is not None
    return filled.position.position_id


async def place_limit(client: AsyncClient) -> int:
    placed = await client.send_new_order_req(
        44_000_002, GBPUSD, OrderType.LIMIT, TradeSide.SELL, 500_000, limit_price=Decimal("2.5")
    )
    assert placed.order is not None
    return placed.order.order_id


def test_account_lines_follow_trades_until_ctrl_c(
    sim: SimInfo, sim_access: dict[str, str], tmp_path: Path
) -> None:
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as err:
        proc = subprocess.Popen(
            [*AT_A_TERMINAL, *CLI, "account", "--account", "5100002"],
            env=sim_access,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        lines = Lines(proc)
        title = next_line(lines, r"^account ")
        assert title.endswith("account 44000002 (login 5100002, demo, SimBroker), EUR")
        start = figures_of(
            next_line(lines, r"^balance \S+ equity ")
        )  # printed inside the loop Ctrl-C ends: ready
        check_figures(start)
        held = int(start["positions"])

        position_id = trade(sim, 44_000_002, lambda c: open_position(c, 44_000_002, TradeSide.BUY, 1_000_000))
        next_line(lines, rf"^position {position_id} opened: BUY 10000 EURUSD at \d+\.\d{{5}}$")
        while True:  # a figures line follows every move; the one with the position in it comes
            now = figures_of(next_line(lines, r"^balance \S+ equity "))
            if int(now["positions"]) == held + 1:
                break
        check_figures(now)
        assert Decimal(now["used_margin"]) > Decimal(start["used_margin"])

        order_id = trade(sim, 44_000_002, place_limit)
        next_line(lines, rf"^order {order_id} placed: LIMIT SELL 5000 GBPUSD at 2\.50000$")
        cancelled = trade(sim, 44_000_002, lambda c: c.send_cancel_order_req(44_000_002, order_id))
        assert cancelled.execution_type == ExecutionType.ORDER_CANCELLED
        next_line(lines, rf"^order {order_id} removed \(cancelled\)$")

        trade(
            sim,
            44_000_002,
            lambda c: c.send_close_position_req(44_000_002, position_id, 1_000_000),
        )
        next_line(lines, rf"^position {position_id} closed: BUY 10000 EURUSD$")
        while True:
            end = figures_of(next_line(lines, r"^balance \S+ equity "))
            if int(end["positions"]) == held:
                break
        check_figures(end)
        assert end["balance"] != start["balance"]  # the close realised a profit or loss (and a commission)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=HANG_GUARD)
    finally:
        stop_process(proc)
    stderr = errors.read_text()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "live account; press Ctrl-C to stop" in stderr
    assert not stderr.endswith("\n\n")  # the newline after ^C is for terminals only


def test_account_for_a_duration(sim_access: dict[str, str]) -> None:
    result = run(["account", "--account", "5100001", "--duration", "0.5"], sim_access)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()[:2]
    assert first.split(" ", 1)[1] == "account 44000001 (login 5100001, demo, SimBroker), USD"
    check_figures(figures_of(second))
    assert "press Ctrl-C" not in result.stderr


def test_bad_duration_fails_before_connecting(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_env.setenv("CTRADER_CLIENT_ID", "1_x")
    cli_env.setenv("CTRADER_CLIENT_SECRET", "y")
    cli_env.setenv("CTRADER_PORT", "1")  # nothing listens there: no connection may be attempted
    status, _, err = in_process(["account", "--duration", "0"], capsys)
    assert status == 2
    assert "--duration must be more than 0 seconds" in one_error_line_of(err, "account")


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("CTRADER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CTRADER_TYPED_HOME", str(tmp_path))
    return monkeypatch


@pytest.mark.parametrize("term", ["xterm-256color", "dumb"])  # rich's live table; the plain one redrawn
def test_account_board_in_a_terminal(sim: SimInfo, sim_access: dict[str, str], term: str) -> None:
    if term != "dumb":
        pytest.importorskip("rich", reason="the 'cli' extra (rich) is not installed")
    import fcntl  # POSIX only, like pty and termios
    import pty
    import termios

    master, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))  # 30 rows, 100 columns
    env = {**at_the_pty_size(sim_access), "TERM": term, "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [*AT_A_TERMINAL, *CLI, "account", "--account", "1200001"],
        env=env,
        stdin=child,
        stdout=child,
        stderr=child,
    )
    os.close(child)
    seen = bytearray()
    try:
        # The board is up (the figures under their headings): ready.
        read_terminal(master, re.compile(rb"free margin +margin level"), seen)
        position_id = trade(
            sim, 44_000_101, lambda c: open_position(c, 44_000_101, TradeSide.SELL, 2_000_000)
        )
        read_terminal(master, re.compile(rb"%d +EURUSD +SELL +20000 +\d+\.\d{5} " % position_id), seen)
        proc.send_signal(signal.SIGINT)
        read_terminal(master, re.compile(rb"(?!)"), seen)  # everything, up to the end
        proc.wait(timeout=HANG_GUARD)
    finally:
        stop_process(proc)
        os.close(master)
    text = ANSI.sub(b"", bytes(seen)).decode()
    assert proc.returncode == 0, text
    assert "Traceback" not in text
    assert "44000101 (login 1200001, live, SimBroker), USD" in text
    rows = [row for row in re.split(r"[\r\n]+", text) if row.strip()]
    assert all(len(row.rstrip()) <= 100 for row in rows), rows  # nothing wider than the terminal
    assert bytes(seen).endswith(b"\r\n")  # after ^C the prompt starts on a line of its own
