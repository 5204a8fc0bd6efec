"""``python -m ctrader_typed.testing`` (what ``ctrader-typed sim`` runs) as a real subprocess."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import signal
import ssl
import sys

from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.testing.cli import _output, add_sim_arguments, env_lines
from ctrader_typed.testing.raw import RawClient

KEYS = {
    "host",
    "port",
    "oauth_url",
    "ca_file",
    "client_id",
    "client_secret",
    "access_token",
    "refresh_token",
    "accounts",
}


def test_add_sim_arguments() -> None:
    parser = argparse.ArgumentParser()
    add_sim_arguments(parser)
    args = parser.parse_args(["--host", "127.0.0.2", "--port", "5035", "--http-port", "8081", "--seed", "9"])
    assert (args.host, args.port, args.http_port, args.seed) == ("127.0.0.2", 5035, 8081, 9)
    assert parser.parse_args([]).port == 0
    assert parser.parse_args([]).spot_timestamps == "clock"
    assert parser.parse_args(["--spot-timestamps", "sequence"]).spot_timestamps == "sequence"


INFO = {
    "host": "127.0.0.1",
    "port": 40123,
    "oauth_url": "http://127.0.0.1:40124",
    "ca_file": "/tmp/sim dir/ca.pem",
    "redirect_uri": "http://localhost:8080/auth/callback",
    "client_id": "1_client",
    "client_secret": "it's $secret",
    "access_token": "token",
    "accounts": [1, 2],
}


def exported(lines: list[str]) -> dict[str, str]:
    """What a POSIX shell would set from ``export NAME=value`` lines (comments skipped)."""
    values = {}
    for line in lines:
        if line.startswith("#"):
            continue
        word, assignment = shlex.split(line)
        assert word == "export"
        name, value = assignment.split("=", 1)
        values[name] = value
    return values


def test_env_lines_set_what_the_commands_read_shell_quoted() -> None:
    assert exported(env_lines(INFO)) == {
        "CTRADER_ENV": "demo",
        "CTRADER_HOST": "127.0.0.1",
        "CTRADER_PORT": "40123",
        "CTRADER_CA_FILE": "/tmp/sim dir/ca.pem",
        "CTRADER_OAUTH_URL": "http://127.0.0.1:40124",
        "CTRADER_REDIRECT_URI": "http://localhost:8080/auth/callback",
        "CTRADER_CLIENT_ID": "1_client",
        "CTRADER_CLIENT_SECRET": "it's $secret",
        "CTRADER_ACCESS_TOKEN": "token",
    }


def output(*flags: str, tty: bool) -> list[str]:
    parser = argparse.ArgumentParser()
    add_sim_arguments(parser)
    return _output(parser.parse_args(list(flags)), INFO, tty=tty).splitlines()


def test_output_json_for_programs_export_lines_added_on_a_terminal() -> None:
    assert output(tty=False) == [json.dumps(INFO)]
    on_terminal = output(tty=True)
    assert on_terminal[0] == json.dumps(INFO)  # still the first line
    assert on_terminal[1] == ""
    assert on_terminal[2:] == env_lines(INFO)
    assert output("--json", tty=True) == [json.dumps(INFO)]
    for tty in (False, True):
        assert output("--print-env", tty=tty) == env_lines(INFO)  # valid shell, nothing else


async def test_standalone_simulator_prints_json_then_serves_until_interrupted() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ctrader_typed.testing", "--seed", "3", "--spot-timestamps", "sequence",
        "--spot-interval", "0.01",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=180)  # hang guard only
        info = json.loads(line)
        assert set(info) >= KEYS
        assert info["host"] == "127.0.0.1"
        assert info["oauth_url"].startswith("http://127.0.0.1:")
        assert len(info["accounts"]) >= 2
        context = ssl.create_default_context(cafile=info["ca_file"])
        async with await RawClient.connect(info["host"], info["port"], context) as raw:
            await raw.authorize(
                info["client_id"], info["client_secret"], info["access_token"], info["accounts"]
            )
            listing = await raw.request(
                pb.ProtoOAGetAccountListByAccessTokenReq(accessToken=info["access_token"])
            )
            assert isinstance(listing.message, pb.ProtoOAGetAccountListByAccessTokenRes)
            assert [a.ctidTraderAccountId for a in listing.message.ctidTraderAccount] == info["accounts"]
            subscribed = await raw.request(
                pb.ProtoOASubscribeSpotsReq(
                    ctidTraderAccountId=info["accounts"][0], symbolId=[1], subscribeToSpotTimestamp=True
                )
            )
            assert isinstance(subscribed.message, pb.ProtoOASubscribeSpotsRes), subscribed
            stamps = []
            for _ in range(5):
                event = (await raw.expect(model_pb.PROTO_OA_SPOT_EVENT, 10.0)).message
                assert isinstance(event, pb.ProtoOASpotEvent)
                stamps.append(event.timestamp)
            assert stamps == list(range(stamps[0], stamps[0] + 5))  # --spot-timestamps sequence
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), timeout=180) == 0
        assert not os.path.exists(info["ca_file"])  # noqa: ASYNC240 - the throwaway CA is cleaned up
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
