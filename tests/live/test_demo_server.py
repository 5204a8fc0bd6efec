"""Opt-in checks against Spotware's real demo server; skipped unless asked for.

Run with ``CTRADER_LIVE_TESTS=1`` and ``CTRADER_CLIENT_ID``, ``CTRADER_CLIENT_SECRET`` and
``CTRADER_ACCESS_TOKEN`` in the environment. Read-only: nothing is traded.
"""

from __future__ import annotations

import os

import pytest

from ctrader_typed import AsyncClient, SymbolsListRes

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        os.environ.get("CTRADER_LIVE_TESTS") != "1"
        or not all(
            os.environ.get(k) for k in ("CTRADER_CLIENT_ID", "CTRADER_CLIENT_SECRET", "CTRADER_ACCESS_TOKEN")
        ),
        reason="live tests need CTRADER_LIVE_TESTS=1 and credentials",
    ),
]


async def test_read_only_flow_on_the_demo_server() -> None:
    token = os.environ["CTRADER_ACCESS_TOKEN"]
    async with AsyncClient.demo() as client:
        assert (await client.send_version_req()).version
        await client.send_application_auth_req(
            os.environ["CTRADER_CLIENT_ID"], os.environ["CTRADER_CLIENT_SECRET"]
        )
        listing = await client.send_get_account_list_by_access_token_req(token)
        demo = [a for a in listing.ctid_trader_account if not a.is_live]
        assert demo, "the token grants no demo account"
        account_id = demo[0].ctid_trader_account_id
        await client.send_account_auth_req(account_id, token)
        symbols = await client.send_symbols_list_req(account_id)
        assert isinstance(symbols, SymbolsListRes)
        assert symbols.symbol
