"""Replaying a recording: round trip (recorded against the simulator, replayed identically), the
pytest fixture, divergences (typed, on the wire, never a hang), recorded reconnects, pace."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from ctrader_typed import (
    AsyncClient,
    ExecutionEvent,
    ExecutionType,
    OrderType,
    Reconnected,
    SpotEvent,
    TradeSide,
    TrendbarPeriod,
)
from ctrader_typed.errors import APIError, ConnectionClosedError
from ctrader_typed.recording import Boundary, Recorder, read_recording
from ctrader_typed.testing import Simulator
from ctrader_typed.testing.replay import DIVERGENCE_ERROR_CODE, RecordingProxy, ReplayDivergence, ReplayServer

from .support import EURUSD, FAST, WAIT, make_client, next_of

BARS_FROM = 1_700_000_000_000
BARS_TO = BARS_FROM + 3_600_000


async def bot(client: AsyncClient, account: int, access_token: str) -> list[Any]:
    """A small deterministic strategy: three quotes, buy, close, read an hour of bars."""
    seen: list[Any] = []
    await client.send_account_auth_req(account, access_token)
    async with client.events(SpotEvent, ExecutionEvent, account_id=account) as events:
        await client.send_subscribe_spots_req(account, [EURUSD])
        while len([e for e in seen if isinstance(e, SpotEvent)]) < 3:
            seen.append(await events.get(WAIT))
        accepted = await client.send_new_order_req(account, EURUSD, OrderType.MARKET, TradeSide.BUY, 100_000)
        filled = await client.wait_for_order_outcome(accepted, timeout=WAIT)
        assert filled.execution_type == ExecutionType.ORDER_FILLED
        assert filled.position is not None
        seen += [accepted, filled]
        closing = await client.send_close_position_req(account, filled.position.position_id, 100_000)
        seen.append(await client.wait_for_order_outcome(closing, timeout=WAIT))
        await client.send_unsubscribe_spots_req(account, [EURUSD])
    bars = await client.send_get_trendbars_req(
        account, TrendbarPeriod.M5, EURUSD, from_timestamp=BARS_FROM, to_timestamp=BARS_TO
    )
    seen.append(bars)
    seen.append(await client.send_reconcile_req(account))
    return seen


async def _record(sim: Simulator, path: Path) -> list[Any]:
    recorder = Recorder(path)
    async with make_client(
        sim, recorder=recorder, client_id=sim.client_id, client_secret=sim.client_secret
    ) as client:
        return await bot(client, sim.demo_accounts[0], sim.access_token)


async def test_a_simulator_session_replays_identically(ctrader_simulator: Simulator, tmp_path: Path) -> None:
    path = tmp_path / "bot.ctrec"
    live = await _record(ctrader_simulator, path)
    async with ReplayServer(path) as replay:
        assert replay.client_id == ctrader_simulator.client_id
        assert replay.accounts == [ctrader_simulator.demo_accounts[0]]
        async with AsyncClient(**{**replay.client_options(), **FAST}) as client:
            replayed = await bot(client, replay.accounts[0], "any token: tokens are not compared")
        await replay.finished(timeout=WAIT)
    assert replayed == live
    assert replay.divergences == []
    assert replay.requests_matched >= 8


async def test_an_unexpected_request_is_a_typed_divergence(
    ctrader_simulator: Simulator, tmp_path: Path
) -> None:
    path = tmp_path / "bot.ctrec"
    await _record(ctrader_simulator, path)
    async with ReplayServer(path, stall_timeout=2.0) as replay:
        async with AsyncClient(**{**replay.client_options(), **FAST}) as client:
            account = replay.accounts[0]
            await client.send_account_auth_req(account, "token")
            # the recording subscribed to EURUSD here; a bot that asks for another symbol diverges
            with pytest.raises(APIError) as refused:
                await client.send_subscribe_spots_req(account, [2])
            assert refused.value.error_code == DIVERGENCE_ERROR_CODE
            assert "ProtoOASubscribeSpotsReq" in str(refused.value)
            # the replay still waits for the recorded request: nothing hangs
            await client.send_subscribe_spots_req(account, [EURUSD])
        with pytest.raises(ReplayDivergence) as diverged:
            await replay.finished(timeout=WAIT)
    kinds = [d.kind for d in diverged.value.divergences]
    assert kinds == ["unexpected_request", "missing_requests"]
    first = diverged.value.divergences[0]
    assert first.received is not None
    assert "symbolId=[2]" in first.received
    assert first.expected is not None
    assert "symbolId=[1]" in first.expected


async def test_a_request_that_never_comes_stalls_without_hanging(
    ctrader_simulator: Simulator, tmp_path: Path
) -> None:
    path = tmp_path / "bot.ctrec"
    await _record(ctrader_simulator, path)
    async with ReplayServer(path, stall_timeout=2.0) as replay:
        async with AsyncClient(**{**replay.client_options(), **FAST, "reconnect": False}) as client:
            await client.send_account_auth_req(replay.accounts[0], "token")
            async with client.events(SpotEvent) as spots:
                # the recording goes on with a subscription; this client waits for quotes instead
                with pytest.raises(ConnectionClosedError):
                    await spots.get(WAIT)
        with pytest.raises(ReplayDivergence, match="stalled on connection 1"):
            await replay.finished(timeout=WAIT)


async def test_a_recorded_reconnect_is_replayed(ctrader_simulator: Simulator, tmp_path: Path) -> None:
    sim = ctrader_simulator
    path = tmp_path / "reconnect.ctrec"

    async def session(client: AsyncClient, account: int, token: str) -> list[Any]:
        await client.send_account_auth_req(account, token)
        seen: list[Any] = []
        async with client.events(SpotEvent, Reconnected, account_id=account) as events:
            await client.send_subscribe_spots_req(account, [EURUSD])
            seen.append(await next_of(events, SpotEvent))
            if isinstance(client, AsyncClient) and client.host == sim.host and client.port == sim.port:
                sim.drop_connections()
            seen.append(await next_of(events, Reconnected))
        seen.append(await client.send_version_req())
        return seen

    recorder = Recorder(path)
    async with make_client(
        sim, recorder=recorder, client_id=sim.client_id, client_secret=sim.client_secret
    ) as client:
        live = await session(client, sim.demo_accounts[0], sim.access_token)
    async with ReplayServer(path) as replay:
        assert replay.connections == 2
        async with AsyncClient(**{**replay.client_options(), **FAST}) as client:
            replayed = await session(client, replay.accounts[0], "token")
        await replay.finished(timeout=WAIT)
    assert replay.connections_accepted == 2
    assert [type(e).__name__ for e in replayed] == [type(e).__name__ for e in live]
    assert replayed[0] == live[0]
    assert replayed[2] == live[2]
    assert replay.requests_matched == 7  # 3 on the first link, the 3 that restore the session, 1


async def test_pace_keeps_the_recorded_delays(tmp_path: Path) -> None:
    # A hand-made recording: a version request answered 0.4 s later.
    from ctrader_typed._framing import encode_envelope
    from ctrader_typed._generated import OpenApiMessages_pb2 as pb
    from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb

    path = tmp_path / "slow.ctrec"
    recorder = Recorder(path)
    recorder.record_boundary(1, "open")
    recorder.record_frame(1, "out", encode_envelope(model_pb.PROTO_OA_VERSION_REQ, b"", "c1")[4:])
    await asyncio.sleep(0.4)
    answer = pb.ProtoOAVersionRes(version="91").SerializeToString()
    recorder.record_frame(1, "in", encode_envelope(model_pb.PROTO_OA_VERSION_RES, answer, "c1")[4:])
    recorder.close()
    for pace, at_least in ((1.0, 0.4), (None, 0.0)):
        async with ReplayServer(path, pace=pace) as replay:
            async with AsyncClient(**{**replay.client_options(), **FAST}) as client:
                started = time.monotonic()
                version = await client.send_version_req()
                waited = time.monotonic() - started
            await replay.finished(timeout=WAIT)
        assert version.version == "91"
        assert waited >= at_least  # never shorter than recorded (a lower bound: no machine is too fast)


def test_bad_options_and_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.ctrec"
    Recorder(empty).close()  # never used: no file at all
    with pytest.raises(FileNotFoundError):
        ReplayServer(empty)
    path = tmp_path / "header-only.ctrec"
    recorder = Recorder(path)
    recorder.record_boundary(0, "end")
    with pytest.raises(ValueError, match="holds no connection"):
        ReplayServer(path)
    recorder.record_boundary(1, "open")
    with pytest.raises(ValueError, match="pace"):
        ReplayServer(path, pace=0)
    with pytest.raises(ValueError, match="stall_timeout"):
        ReplayServer(path, stall_timeout=0)
    recorder.close()


@pytest.fixture(scope="module")
def recorded_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recording of ``bot`` against a fresh simulator (made once for the fixture test)."""
    path = tmp_path_factory.mktemp("replay") / "bot.ctrec"

    async def make() -> None:
        async with Simulator(spot_interval=0.05) as sim:
            await _record(sim, path)

    asyncio.run(make())
    return path


def test_the_pytest_fixture(recorded_session: Path, tmp_path: Path) -> None:
    (tmp_path / "test_bot.py").write_text(
        textwrap.dedent(
            f"""
            import pytest
            from ctrader_typed import AsyncClient, SpotEvent
            from ctrader_typed.errors import APIError

            @pytest.mark.ctrader_replay({str(recorded_session)!r}, partial=True)
            async def test_bot_subscribes(ctrader_replay):
                async with AsyncClient(**ctrader_replay.client_options(), reconnect=False) as client:
                    account = ctrader_replay.accounts[0]
                    await client.send_account_auth_req(account, "token")
                    async with client.events(SpotEvent) as spots:
                        await client.send_subscribe_spots_req(account, [1])
                        assert (await spots.get(60)).symbol_id == 1

            @pytest.mark.ctrader_replay({str(recorded_session)!r})
            async def test_bot_diverges(ctrader_replay):
                async with AsyncClient(**ctrader_replay.client_options(), reconnect=False) as client:
                    with pytest.raises(APIError, match="REPLAY_DIVERGENCE"):
                        await client.send_version_req()
            """
        ),
        encoding="utf-8",
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "-o",
            "asyncio_mode=auto",
            "test_bot.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # the second test passes, and its teardown reports the divergences it did not raise itself
    assert "2 passed, 1 error" in proc.stdout, proc.stdout + proc.stderr
    assert "ERROR test_bot.py::test_bot_diverges" in proc.stdout
    assert "ReplayDivergence" in proc.stdout
    assert "unexpected_request on connection 1" in proc.stdout


async def test_a_client_without_a_recorder_is_recorded_through_the_proxy(
    ctrader_simulator: Simulator, tmp_path: Path
) -> None:
    sim = ctrader_simulator
    path = tmp_path / "proxied.ctrec"
    async with RecordingProxy(Recorder(path), sim.host, sim.port, upstream_ssl=sim.ssl_context) as proxy:
        async with AsyncClient(
            proxy.host,
            proxy.port,
            ssl_context=proxy.ssl_context,
            client_id=sim.client_id,
            client_secret=sim.client_secret,
            **FAST,
        ) as client:
            live = await bot(client, sim.demo_accounts[0], sim.access_token)
        assert proxy.recorder.frames_written > 10
    entries = list(read_recording(path))
    assert [(e.kind, e.connection) for e in entries if isinstance(e, Boundary)] == [
        ("open", 1),
        ("close", 1),
        ("end", 0),
    ]
    data = path.read_bytes()
    for secret in (sim.client_secret, sim.access_token, sim.refresh_token):
        assert secret.encode() not in data
    async with ReplayServer(path) as replay:
        assert replay.access_token == "redacted-access_token-1"
        async with AsyncClient(**{**replay.client_options(), **FAST}) as client:
            replayed = await bot(client, replay.accounts[0], "token")
        await replay.finished(timeout=WAIT)
    assert replayed == live


async def test_ignored_fields_and_their_echoes(ctrader_simulator: Simulator, tmp_path: Path) -> None:
    sim = ctrader_simulator
    path = tmp_path / "history.ctrec"
    now = int(time.time() * 1000)

    async def history(client: AsyncClient, account: int, token: str, to: int) -> Any:
        await client.send_account_auth_req(account, token)
        return await client.send_get_trendbars_req(
            account, TrendbarPeriod.M1, EURUSD, from_timestamp=to - 600_000, to_timestamp=to
        )

    async with make_client(
        sim, recorder=Recorder(path), client_id=sim.client_id, client_secret=sim.client_secret
    ) as client:
        recorded = await history(client, sim.demo_accounts[0], sim.access_token, now)
    assert recorded.timestamp == now
    later = now + 90_000  # a bot that asks for history up to "now" asks for another window on replay
    async with ReplayServer(path, ignore_fields={"fromTimestamp", "toTimestamp"}) as replay:
        async with AsyncClient(**{**replay.client_options(), **FAST}) as client:
            replayed = await history(client, replay.accounts[0], "token", later)
        await replay.finished(timeout=WAIT)
    assert replayed.timestamp == later  # the answer's echo of toTimestamp follows the live request
    assert replayed.trendbar == recorded.trendbar
    async with ReplayServer(path) as strict:  # without ignore_fields the other window diverges
        async with AsyncClient(**{**strict.client_options(), **FAST}) as client:
            with pytest.raises(APIError, match=DIVERGENCE_ERROR_CODE):
                await history(client, strict.accounts[0], "token", later)
        with pytest.raises(ReplayDivergence, match="toTimestamp"):
            await strict.finished(timeout=WAIT)
