"""The symbol catalogue against the simulator (and, for the server's change events, a scripted server)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ctrader_typed import (
    AsyncClient,
    SymbolCatalogue,
    SymbolChangedEvent,
    SymbolInfo,
    UnknownSymbolError,
)
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.testing import Simulator
from ctrader_typed.testing.raw import RawServer

from .support import FAST, authorized

SYMBOLS_LIST_REQ = 2114
SYMBOL_BY_ID_REQ = 2116


def requests_of(sim: Simulator, payload_type: int) -> int:
    [connection] = sim.connections
    return sum(1 for _, received, _ in connection.received if received == payload_type)


async def test_lookup_by_name_in_any_case(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim) as (client, account), SymbolCatalogue(client, account) as symbols:
        eurusd = await symbols.get("eurusd")
        assert isinstance(eurusd, SymbolInfo)
        assert (eurusd.symbol_id, eurusd.name, eurusd.digits) == (1, "EURUSD", 5)
        assert eurusd.light.description == "Euro vs US Dollar"
        assert eurusd.full.pip_position == 4
        assert eurusd.units.pips("0.0015") == 15
        assert eurusd.units.volume_from_lots("0.1") == 1_000_000
        assert eurusd.hours().is_open(datetime.now(UTC))  # the simulator trades all week
        for spelling in ("EURUSD", "EurUsd", " eurusd ", "EUR/USD", 1):
            assert await symbols.get(spelling) == eurusd
        usdjpy = await symbols.units("usdjpy")
        assert (usdjpy.digits, usdjpy.pip_size) == (3, Decimal("0.01"))
        assert "XAUUSD" in await symbols.names()
        # One symbol list and one full record per symbol, however often they were asked for.
        assert requests_of(sim, SYMBOLS_LIST_REQ) == 1
        assert requests_of(sim, SYMBOL_BY_ID_REQ) == 2
        assert symbols.cached(1) == eurusd
        assert symbols.cached(2) is None


async def test_get_many_fetches_the_missing_records_in_one_request(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim) as (client, account), SymbolCatalogue(client, account) as symbols:
        await symbols.get("EURUSD")
        found = await symbols.get_many(["gbpusd", "XAUUSD", "eurusd", "btcusd", 2])
        assert [s.name for s in found] == ["GBPUSD", "XAUUSD", "EURUSD", "BTCUSD", "GBPUSD"]
        assert [s.units.pip_position for s in found] == [4, 1, 4, 0, 4]
        assert requests_of(sim, SYMBOL_BY_ID_REQ) == 2


async def test_an_unknown_symbol_is_a_typed_error_with_suggestions(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim) as (client, account), SymbolCatalogue(client, account) as symbols:
        with pytest.raises(UnknownSymbolError) as unknown:
            await symbols.get("EURUSX")
        assert unknown.value.symbol == "EURUSX"
        assert "EURUSD" in unknown.value.suggestions
        assert f"account {account} has no symbol 'EURUSX'; did you mean EURUSD" in str(unknown.value)
        assert isinstance(unknown.value, LookupError)
        with pytest.raises(UnknownSymbolError, match=r"has no symbol id 4242$"):
            await symbols.get(4242)
        with pytest.raises(UnknownSymbolError):
            await symbols.get_many(["EURUSD", "nothing"])


async def test_a_symbol_change_refetches_what_was_held(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with authorized(sim) as (client, account), SymbolCatalogue(client, account) as symbols:
        await symbols.get_many(["EURUSD", "GBPUSD"])
        symbols.symbols_changed(SymbolChangedEvent(ctid_trader_account_id=account, symbol_id=(1, 5)))
        assert symbols.changes == 1
        assert symbols.cached(1) is None  # never stale: dropped at once
        eurusd = await symbols.get("EURUSD")  # fresh list and, if the refresh is not back yet, a fetch
        assert eurusd.symbol_id == 1
        assert symbols.cached(2) is not None  # untouched by the change
        assert requests_of(sim, SYMBOLS_LIST_REQ) == 2
        # Another account's change is not ours.
        symbols.symbols_changed(SymbolChangedEvent(ctid_trader_account_id=account + 1, symbol_id=(2,)))
        assert symbols.changes == 1
        assert symbols.cached(2) is not None


async def test_the_servers_symbol_changed_event_refreshes_the_catalogue() -> None:
    async with await RawServer.start() as server:
        client = AsyncClient(
            server.host, server.port, ssl_context=server.ssl_context, **{**FAST, "dead_link_timeout": None}
        )
        connecting = asyncio.create_task(client.connect())
        peer = await server.accept()
        peer.serve_auth()
        await connecting
        try:
            await client.send_account_auth_req(7, "token")
            symbols = SymbolCatalogue(client, 7)
            light = model_pb.ProtoOALightSymbol(symbolId=1, symbolName="EURUSD")

            async def serve(digits: int) -> None:
                request = await peer.expect(pb.ProtoOASymbolByIdReq)
                assert isinstance(request.message, pb.ProtoOASymbolByIdReq)
                assert list(request.message.symbolId) == [1]
                full = model_pb.ProtoOASymbol(symbolId=1, digits=digits, pipPosition=digits - 1)
                peer.answer(request, pb.ProtoOASymbolByIdRes(ctidTraderAccountId=7, symbol=[full]))

            getting = asyncio.create_task(symbols.get("eurusd"))
            listing = await peer.expect(pb.ProtoOASymbolsListReq)
            peer.answer(listing, pb.ProtoOASymbolsListRes(ctidTraderAccountId=7, symbol=[light]))
            await serve(5)
            assert (await getting).digits == 5

            # The server says EURUSD changed: the catalogue asks for it again by itself.
            peer.send(pb.ProtoOASymbolChangedEvent(ctidTraderAccountId=7, symbolId=[1]))
            await serve(4)
            async with asyncio.timeout(5):
                await symbols.wait_refreshed()
            assert symbols.changes == 1
            # The refreshed record is held: only the symbol list is asked for again.
            getting = asyncio.create_task(symbols.get(1))
            listing = await peer.expect(pb.ProtoOASymbolsListReq)
            peer.answer(listing, pb.ProtoOASymbolsListRes(ctidTraderAccountId=7, symbol=[light]))
            assert (await getting).digits == 4
            assert [r.payload_type for r in peer.received].count(SYMBOL_BY_ID_REQ) == 2
            symbols.close()
        finally:
            await client.close()
