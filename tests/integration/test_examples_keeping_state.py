"""``examples/keeping_state.py`` (the bot of the "Keeping state" guide), run end to end against
``ctrader-typed sim``, configured by the environment only, as the other examples are."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.cli_support import HANG_GUARD, SimInfo, fresh_tokens, running_sim, sim_env

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "keeping_state.py"
PRICE = r"\d+\.\d{5}"
MONEY = r"-?\d+\.\d{2}"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimInfo]:
    with running_sim(tmp_path_factory.mktemp("sim") / "sim.log") as info:
        yield info


def run_bot(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )


@pytest.mark.parametrize(("login", "currency"), [("5100002", "EUR"), ("5100001", "USD")])
def test_the_bot_trades_and_keeps_its_state(sim: SimInfo, tmp_path: Path, login: str, currency: str) -> None:
    tokens = fresh_tokens(sim)
    env = sim_env(sim, tmp_path, CTRADER_ACCESS_TOKEN=tokens.access_token, CTRADER_ACCOUNT=login)
    result = run_bot(env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 10, lines
    account, symbol, quote, entry, protection, position, moved, equity, closed, final = lines
    found = re.fullmatch(
        rf"Account \d+ \(login {login}\): balance ({MONEY}) {currency}, equity ({MONEY}), free margin ({MONEY})",
        account,
    )
    assert found, account
    start_balance = Decimal(found[1])
    assert symbol == "EURUSD: 5 digits, pip 0.0001, open all week"  # the simulator trades all week
    assert re.fullmatch(rf"Quote: bid {PRICE} ask {PRICE}, spread \d+(\.\d+)? pips", quote), quote
    assert (entry, protection) == ("  entry: ok", "  protection: ok")
    found = re.fullmatch(
        rf"Position \d+: BUY 0\.1 lots at ({PRICE}), stop loss ({PRICE}), take profit ({PRICE}), margin ({MONEY})",
        position,
    )
    assert found, position
    opened_at, stop, take = (Decimal(found[i]) for i in (1, 2, 3))
    assert stop < opened_at < take
    assert take - stop >= Decimal("0.0060")  # 20 pips below the bid, 40 above the ask
    found = re.fullmatch(rf"Stop loss moved to ({PRICE}); take profit kept at ({PRICE})", moved)
    assert found, moved
    assert stop < Decimal(found[1]) < opened_at
    assert Decimal(found[2]) == take  # amending the stop loss kept the take profit
    found = re.fullmatch(
        rf"Equity ({MONEY}) = balance ({MONEY}) \+ unrealized ({MONEY}); used margin ({MONEY}), margin level [\d.]+%",
        equity,
    )
    assert found, equity
    assert Decimal(found[1]) == Decimal(found[2]) + Decimal(found[3])
    assert Decimal(found[2]) == start_balance
    assert Decimal(found[4]) > 0
    assert closed == "close_all: 1 closed, 0 failed"
    found = re.fullmatch(rf"Closed: balance ({MONEY}) -> ({MONEY}) {currency}", final)
    assert found, final
    assert Decimal(found[1]) == start_balance
    assert Decimal(found[2]) != start_balance  # the round trip realised a P&L and paid commission
    assert tokens.access_token not in result.stdout + result.stderr


def test_the_bot_asks_which_account_when_the_token_has_several(sim: SimInfo, tmp_path: Path) -> None:
    env = sim_env(sim, tmp_path, CTRADER_ACCESS_TOKEN=fresh_tokens(sim).access_token)
    result = run_bot(env)
    assert result.returncode == 1
    assert result.stdout == ""
    message = result.stderr.strip()
    assert message.startswith("Which account? the token reaches ")
    assert "44000001 (login 5100001, demo, SimBroker)" in message
    assert "44000002 (login 5100002, demo, SimBroker)" in message
    assert "44000101" not in message  # the live account is not a candidate on demo
    assert message.endswith("Set CTRADER_ACCOUNT to its login or id.")
