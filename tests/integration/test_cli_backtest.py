"""``ctrader-typed backtest`` as a user runs it (a subprocess, the simulator in-process there)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from .cli_support import clean_env, in_process, one_error_line, run

EXAMPLE = Path(__file__).parents[2] / "examples" / "backtest_sma.py"


def test_backtest_the_sample_strategy(tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = run(
        ["backtest", str(EXAMPLE), "--synthetic", "EURUSD", "--start", "2023-11-14T22:13:20Z",
         "--days", str(3000 / 86400), "--seed", "7", "--out", str(out)],
        clean_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        "backtest 2023-11-14T22:13:20.000Z .. 2023-11-14T23:03:19.000Z: 3000 quotes",
        "trades: 37 (4 won), open positions at the end: 1",
        "balance: 12000.00 -> 11949.02 USD (P&L -50.98 USD), equity 11949.60",
    ]
    trades = list(csv.DictReader((out / "trades.csv").read_text().splitlines()))
    assert len(trades) == 37
    assert trades[-1]["balance"] == "11949.02"


def test_backtest_input_errors(tmp_path: Path) -> None:
    missing = run(["backtest", str(tmp_path / "nope.py"), "--synthetic", "EURUSD"], clean_env())
    assert missing.returncode == 2
    assert "no bot module" in one_error_line(missing, "backtest")
    unknown = run(["backtest", str(EXAMPLE), "--synthetic", "XAUXAG"], clean_env())
    assert unknown.returncode == 2
    assert "no symbol 'XAUXAG'" in one_error_line(unknown, "backtest")
    broken = tmp_path / "broken.py"
    broken.write_text("async def main(client, account_id):\n    raise RuntimeError('strategy bug')\n")
    failed = run(["backtest", str(broken), "--synthetic", "EURUSD", "--days", "0.01"], clean_env())
    assert failed.returncode == 1
    assert "the bot failed: RuntimeError('strategy bug')" in one_error_line(failed, "backtest")
    no_source = run(["backtest", str(EXAMPLE)], clean_env())
    assert no_source.returncode == 2


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["backtest", "--help"], ["record", "--help"]):
        status, out, _ = in_process(command, capsys)
        assert status == 0
        assert out.startswith(f"usage: ctrader-typed {command[0]}")
