"""``python -m ctrader_typed.testing`` (what ``ctrader-typed sim`` runs) as a real subprocess."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import ssl
import sys

from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed.testing.cli import add_sim_arguments
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


async def test_standalone_simulator_prints_json_then_serves_until_interrupted() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ctrader_typed.testing", "--seed", "3",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
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
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), timeout=30) == 0
        assert not os.path.exists(info["ca_file"])  # noqa: ASYNC240 - the throwaway CA is cleaned up
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
