"""``ctrader-typed record`` against the simulator (a subprocess of its own)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.recording import Boundary, RecordedFrame, read_recording

from .cli_support import SimInfo, fresh_tokens, one_error_line, run, running_sim, sim_env, store_for


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimInfo]:
    with running_sim(tmp_path_factory.mktemp("sim") / "sim.log") as info:
        yield info


def test_record_quotes_for_a_duration(sim: SimInfo, tmp_path: Path) -> None:
    tokens = fresh_tokens(sim)
    store_for(sim, tmp_path).save_sync(tokens)
    env = sim_env(sim, tmp_path)
    target = tmp_path / "eurusd.ctrec"
    result = run(["record", str(target), "EURUSD", "--duration", "0.5"], env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1].endswith("frames recorded in 1 file(s)")
    entries = list(read_recording(target))
    sent = [e.payload_type for e in entries if isinstance(e, RecordedFrame) and e.direction == "out"]
    assert model_pb.PROTO_OA_SUBSCRIBE_SPOTS_REQ in sent
    assert model_pb.PROTO_OA_RECONCILE_REQ in sent
    assert isinstance(entries[-1], Boundary)
    assert entries[-1].kind == "end"
    data = target.read_bytes()
    for secret in (sim["client_secret"], tokens.access_token, tokens.refresh_token):
        assert secret.encode() not in data

    again = run(["record", str(target), "--duration", "0.1"], env)
    assert again.returncode == 2
    assert "exists" in one_error_line(again, "record")

    # the recorded quotes drive a backtest (here as the simulator's GBPUSD)
    bot = tmp_path / "bot.py"
    bot.write_text(
        "async def main(client, account_id):\n    await client.send_subscribe_spots_req(account_id, [2])\n"
    )
    spots = [
        e for e in entries if isinstance(e, RecordedFrame) and e.payload_type == model_pb.PROTO_OA_SPOT_EVENT
    ]
    backtest = run(["backtest", str(bot), "--recording", str(target), "--map", "1=GBPUSD"], env)
    assert backtest.returncode == 0, backtest.stderr
    quotes = int(backtest.stdout.splitlines()[0].rsplit(": ", 1)[1].split()[0])
    assert 0 < quotes <= len(spots)
    assert "trades: 0" in backtest.stdout
    bad = run(["backtest", str(bot), "--recording", str(target), "--map", "EURUSD"], env)
    assert bad.returncode == 2
    assert "--map takes ID=SYMBOL" in one_error_line(bad, "backtest")
