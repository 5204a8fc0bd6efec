"""A downstream module holding demo and live accounts with ``AccountRouter``; must pass
``mypy --strict`` and pyright strict untouched."""

from __future__ import annotations

import ssl
from typing import assert_type

from ctrader_typed import (
    AccountReady,
    AccountRouter,
    AsyncClient,
    CtidTraderAccount,
    Disconnected,
    EventStream,
    ExecutionEvent,
    HandlerRegistration,
    SpotEvent,
    TraderUpdatedEvent,
)
from ctrader_typed.routing import Endpoint, Environment


async def both_environments(ctx: ssl.SSLContext, client_id: str, secret: str, token: str) -> None:
    async with AccountRouter(
        access_token=token,
        demo=Endpoint("127.0.0.1", 5035),
        live=("127.0.0.1", 5036),
        ssl_context=ctx,
        client_id=client_id,
        client_secret=secret,
    ) as router:
        accounts = await router.load_accounts()
        assert_type(accounts, tuple[CtidTraderAccount, ...])
        account_id = accounts[0].ctid_trader_account_id
        assert_type(router.environment_of(account_id), Environment)
        client = await router.client_for(account_id)
        assert_type(client, AsyncClient)
        assert_type(await router.connection("live"), AsyncClient)
        executions = router.events(ExecutionEvent, account_id=account_id)
        assert_type(executions, EventStream[ExecutionEvent])
        spots = router.events(SpotEvent, account_id=account_id, symbol_id=1)
        assert_type(spots, EventStream[SpotEvent])
        both = router.events(AccountReady, Disconnected, account_id=account_id)
        assert_type(both, EventStream[AccountReady | Disconnected])

        def on_update(event: TraderUpdatedEvent) -> None:
            assert_type(event.ctid_trader_account_id, int)

        registration = router.on(TraderUpdatedEvent, on_update, account_id=account_id)
        assert_type(registration, HandlerRegistration)
        assert_type(router.clients.get("demo"), AsyncClient | None)
