"""``ctrader-typed sim`` options: the accounts (``--account``, ``--accounts-file``), the live
endpoint (``--live-endpoint``, ``--live-port``) and ``--oauth-lenient``."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import ssl
import sys
from pathlib import Path

import httpx
import pytest

from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed.testing import AccountSpec, SimulatorSettings
from ctrader_typed.testing.cli import (
    ACCOUNT_KEYS,
    account_spec,
    accounts_from_file,
    add_sim_arguments,
    settings_from,
    sim_main,
)
from ctrader_typed.testing.raw import RawClient


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_sim_arguments(parser)
    return parser.parse_args(argv)


def test_an_account_spec_sets_every_field() -> None:
    spec = account_spec(
        "id=7000001, login=71,live=TRUE,currency=jpy,money-digits=0,deposit=1500000,registered-days-ago=9"
    )
    assert spec == AccountSpec(
        account_id=7_000_001,
        trader_login=71,
        is_live=True,
        deposit_currency="JPY",
        money_digits=0,
        initial_deposit=1_500_000,
        registered_days_ago=9,
    )
    assert account_spec("id=5") == AccountSpec(account_id=5, trader_login=5)  # login defaults to the id
    assert set(ACCOUNT_KEYS.values()) == set(AccountSpec.__dataclass_fields__)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("currency=JPY", "id is required"),
        ("id=1,colour=red", "unknown key 'colour'"),
        ("id=1,live=maybe", "live must be true or false"),
        ("id=one", "id must be a whole number"),
        ("id=1,currency=XYZ", "unknown deposit_currency 'XYZ'"),
        ("id=1,money-digits=9", "money_digits must be between 0 and 8"),
        ("id=1,deposit=15", "initial_deposit must be a positive multiple of 20"),
        ("id=1,,live=true", "expected key=value pairs"),
        ("id", "expected key=value pairs"),
    ],
)
def test_a_bad_account_spec_is_a_usage_error(text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        account_spec(text)


def test_accounts_from_json_and_toml_files(tmp_path: Path) -> None:
    as_json = tmp_path / "accounts.json"
    as_json.write_text(
        json.dumps({"accounts": [{"id": 1, "currency": "GBP", "money_digits": 3}, {"id": 2, "live": True}]})
    )
    as_toml = tmp_path / "accounts.toml"
    as_toml.write_text(
        '[[accounts]]\nid = 1\ncurrency = "GBP"\nmoney-digits = 3\n\n[[accounts]]\nid = 2\nlive = true\n'
    )
    expected = (
        AccountSpec(account_id=1, trader_login=1, deposit_currency="GBP", money_digits=3),
        AccountSpec(account_id=2, trader_login=2, is_live=True),
    )
    assert accounts_from_file(as_json) == accounts_from_file(as_toml) == expected


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.json", "{", "a.json: Expecting"),
        ("a.toml", "accounts = 3", "expected a non-empty 'accounts' list"),
        ("a.toml", "accounts = []", "expected a non-empty 'accounts' list"),
        ("a.json", '{"accounts": [1]}', "account 1 is not a table"),
        ("a.json", '{"accounts": [{"id": 1}, {"id": 2, "live": "sometimes"}]}', "account 2: live must be"),
    ],
)
def test_a_bad_accounts_file_says_where(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        accounts_from_file(path)


def test_an_unreadable_accounts_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"missing\.toml"):
        accounts_from_file(tmp_path / "missing.toml")


def test_settings_from_the_arguments(tmp_path: Path) -> None:
    defaults = settings_from(parse())
    assert defaults.accounts == SimulatorSettings().accounts
    assert (defaults.live_endpoint, defaults.live_port, defaults.oauth_lenient) == (False, 0, False)
    path = tmp_path / "accounts.toml"
    path.write_text("[[accounts]]\nid = 1\n")
    chosen = settings_from(
        parse(
            "--oauth-lenient",
            "--live-port",
            "5999",
            "--accounts-file",
            str(path),
            "--account",
            "id=2,live=yes",
        )
    )
    assert chosen.oauth_lenient
    assert (chosen.live_endpoint, chosen.live_port) == (True, 5999)  # --live-port implies the endpoint
    assert [(a.account_id, a.is_live) for a in chosen.accounts] == [(1, False), (2, True)]
    assert settings_from(parse("--live-endpoint")).live_endpoint


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--account", "id=1", "--account", "id=1"], "account ids"),
        (["--port", "5035", "--live-port", "5035"], "port and live_port must differ"),
        (["--account", "id=1,currency=XYZ"], "unknown deposit_currency"),
        (["--accounts-file", "/nonexistent/accounts.toml"], "/nonexistent/accounts.toml"),
    ],
)
def test_bad_options_exit_with_a_usage_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        sim_main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


async def test_standalone_simulator_with_accounts_a_live_endpoint_and_lenient_oauth(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps({"accounts": [{"id": 7_000_001, "currency": "JPY", "money-digits": 0}]}))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ctrader_typed.testing", "--json", "--live-endpoint", "--oauth-lenient",
        "--accounts-file", str(path), "--account", "id=7000002,login=72,live=true,currency=EUR",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        info = json.loads(await asyncio.wait_for(process.stdout.readline(), timeout=180))  # hang guard only
        assert info["accounts"] == [7_000_001, 7_000_002]
        assert info["live_accounts"] == [7_000_002]
        assert info["demo_port"] == info["port"] != info["live_port"]
        context = ssl.create_default_context(cafile=info["ca_file"])
        async with await RawClient.connect(info["host"], info["live_port"], context) as live:
            await live.authorize(info["client_id"], info["client_secret"], info["access_token"], [7_000_002])
            trader = await live.request(pb.ProtoOATraderReq(ctidTraderAccountId=7_000_002))
            assert isinstance(trader.message, pb.ProtoOATraderRes)
            assert trader.message.trader.traderLogin == 72
            refused = await live.request(
                pb.ProtoOAAccountAuthReq(ctidTraderAccountId=7_000_001, accessToken=info["access_token"])
            )
            assert isinstance(refused.message, pb.ProtoOAErrorRes)
            assert refused.message.errorCode == "CANT_ROUTE_REQUEST"
        async with await RawClient.connect(info["host"], info["demo_port"], context) as demo:
            await demo.authorize(info["client_id"], info["client_secret"], info["access_token"], [7_000_001])
            trader = await demo.request(pb.ProtoOATraderReq(ctidTraderAccountId=7_000_001))
            assert isinstance(trader.message, pb.ProtoOATraderRes)
            assert trader.message.trader.moneyDigits == 0
        async with httpx.AsyncClient(base_url=info["oauth_url"]) as http:
            # Lenient: a POST body is taken (strict would answer 405 METHOD_NOT_ALLOWED).
            answer = await http.post(
                "/apps/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": info["refresh_token"],
                    "client_id": info["client_id"],
                    "client_secret": info["client_secret"],
                },
            )
            assert answer.status_code == 200
            assert "access_token" in answer.json()  # the snake_case copy
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), timeout=180) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
