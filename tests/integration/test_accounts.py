"""Resolving an account from a login, "live"/"demo" or nothing, against the simulator's account list.

The simulator's default token reaches four demo accounts (ids 44000001 and 44000002, logins
5100001 and 5100002, then 44000201 in JPY and 44000202 in GBP) and one live account (id 44000101,
login 1200001).
"""

from __future__ import annotations

import pytest

from ctrader_typed import (
    AccountNotFoundError,
    AccountResolutionError,
    AmbiguousAccountError,
    APIError,
    CtidTraderAccount,
    CTraderError,
    resolve_account,
)
from ctrader_typed.accounts import describe_account, list_accounts, pick_account
from ctrader_typed.testing import Simulator

from .support import make_client

DEMO_1, DEMO_2, LIVE = 44_000_001, 44_000_002, 44_000_101
DEMO_JPY, DEMO_GBP = 44_000_201, 44_000_202


async def test_a_login_as_shown_in_ctrader_finds_its_account(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with make_client(sim, client_id=sim.client_id, client_secret=sim.client_secret) as client:
        account = await resolve_account(client, sim.access_token, 5_100_002)
        assert account.ctid_trader_account_id == DEMO_2
        assert account.trader_login == 5_100_002
        assert account.is_live is False
        # The same account by its id, and both as the digits a command line hands over.
        assert await resolve_account(client, sim.access_token, DEMO_2) == account
        assert await resolve_account(client, sim.access_token, " 5100002 ") == account
        assert await resolve_account(client, sim.access_token, str(DEMO_2)) == account
        # What was found can be authorised.
        answer = await client.send_account_auth_req(account.ctid_trader_account_id, sim.access_token)
        assert answer.ctid_trader_account_id == DEMO_2


async def test_the_only_live_account_and_an_ambiguous_demo(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with make_client(sim, client_id=sim.client_id, client_secret=sim.client_secret) as client:
        live = await resolve_account(client, sim.access_token, "live")
        assert (live.ctid_trader_account_id, live.is_live, live.trader_login) == (LIVE, True, 1_200_001)
        assert await resolve_account(client, sim.access_token, live=True) == live

        with pytest.raises(AmbiguousAccountError) as demo:
            await resolve_account(client, sim.access_token, "demo")
        assert {a.ctid_trader_account_id for a in demo.value.candidates} == {
            DEMO_1,
            DEMO_2,
            DEMO_JPY,
            DEMO_GBP,
        }
        assert "44000001 (login 5100001, demo" in str(demo.value)
        assert "give the account's id or login" in str(demo.value)

        with pytest.raises(AmbiguousAccountError) as anything:
            await resolve_account(client, sim.access_token)
        assert {a.ctid_trader_account_id for a in anything.value.candidates} == {
            DEMO_1,
            DEMO_2,
            DEMO_JPY,
            DEMO_GBP,
            LIVE,
        }

        # A login narrowed to the wrong kind is absent.
        with pytest.raises(
            AccountNotFoundError, match="no live account of the token has the id or login 5100002"
        ):
            await resolve_account(client, sim.access_token, 5_100_002, live=True)


async def test_a_token_with_one_account_resolves_without_a_choice(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    token, _ = sim.issue_tokens(account_ids=[DEMO_1])
    async with make_client(sim, client_id=sim.client_id, client_secret=sim.client_secret) as client:
        only = await resolve_account(client, token)
        assert only.ctid_trader_account_id == DEMO_1
        assert await resolve_account(client, token, "demo") == only
        with pytest.raises(AccountNotFoundError, match="reaches no live account") as absent:
            await resolve_account(client, token, "live")
        assert [a.ctid_trader_account_id for a in absent.value.candidates] == [DEMO_1]
        assert token not in str(absent.value)  # never the token in a message


async def test_an_unknown_login_is_a_clear_error(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with make_client(sim, client_id=sim.client_id, client_secret=sim.client_secret) as client:
        with pytest.raises(AccountNotFoundError) as unknown:
            await resolve_account(client, sim.access_token, 5_100_099)
        error = unknown.value
        assert isinstance(error, AccountResolutionError)
        assert isinstance(error, LookupError)
        assert isinstance(error, CTraderError)
        assert error.choice == 5_100_099
        assert "no account of the token has the id or login 5100099" in str(error)
        assert "44000101 (login 1200001, live, SimBroker)" in str(error)
        assert len(error.candidates) == 5
        with pytest.raises(ValueError, match="'live' or 'demo', not 'mine'"):
            await resolve_account(client, sim.access_token, "mine")


async def test_an_expired_token_is_the_servers_error(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    token, _ = sim.issue_tokens()
    sim.expire_access_token(token)
    async with make_client(sim, client_id=sim.client_id, client_secret=sim.client_secret) as client:
        with pytest.raises(APIError) as refused:
            await resolve_account(client, token, 5_100_001)
        assert refused.value.error_code == "CH_ACCESS_TOKEN_INVALID"


async def test_list_accounts_gives_every_account(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with make_client(sim, client_id=sim.client_id, client_secret=sim.client_secret) as client:
        accounts = await list_accounts(client, sim.access_token)
    assert {a.ctid_trader_account_id for a in accounts} == {DEMO_1, DEMO_2, DEMO_JPY, DEMO_GBP, LIVE}


def test_a_number_that_is_an_id_of_one_account_and_a_login_of_another_is_ambiguous() -> None:
    first = CtidTraderAccount(ctid_trader_account_id=7, is_live=False, trader_login=9)
    second = CtidTraderAccount(ctid_trader_account_id=8, is_live=True, trader_login=7)
    with pytest.raises(AmbiguousAccountError) as both:
        pick_account([first, second], 7)
    assert both.value.candidates == (first, second)
    assert pick_account([first, second], 7, live=True) == second
    assert pick_account([first, second], "7", live=False) == first
    with pytest.raises(ValueError, match="demo account with live=True"):
        pick_account([first, second], "demo", live=True)
    with pytest.raises(TypeError):
        pick_account([first, second], True)
    assert describe_account(CtidTraderAccount(ctid_trader_account_id=3)) == "3 (demo)"
    with pytest.raises(AccountNotFoundError, match="reaches no account"):
        pick_account([])
