"""A pre-encoded spot firehose in its own process: the stream benchmark's producer.

The simulator builds, encodes and writes each spot event as it goes, which caps what it can
deliver well below what a fast reader takes: a client faster than that cannot show up in a
wall-clock figure. This producer encodes a block of spot frames once per account and, on
``burst N ACCOUNT``, writes N of them to that account's connections in large writes (256
KiB, each awaiting the socket's drain), so the reader is the bottleneck.

It speaks just enough of the protocol for the clients under test (the SDK, a bare asyncio
client, OpenApiPy): application auth, account auth, spot subscriptions (which register the
connection under the account), version requests, heartbeats; anything else gets an
``ErrorRes``. Not a protocol reference: the simulator is that.

Run as ``python -m benchmarks._firehose``: prints a JSON line shaped like the simulator's
(host, port, ca_file, client_id, client_secret, access_token, accounts), then reads
commands, one a line: ``burst N ACCOUNT`` -> ``sent K``; ``quit`` -> stops.
``Firehose`` is the parent side.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import ssl
import struct
import sys
import tempfile
from pathlib import Path

from benchmarks._simproc import ChildProcess
from ctrader_typed._generated import OpenApiCommonMessages_pb2 as common_pb
from ctrader_typed._generated import OpenApiMessages_pb2 as pb

_HEADER = struct.Struct(">I")
ACCOUNTS = (1001, 1002, 1003, 1004, 1005)
BLOCK = 10_000
"""Distinct frames encoded per account; bursts repeat the block."""
WRITE = 256 * 1024
"""Bytes per write."""


def _frame(payload_type: int, payload: bytes, client_msg_id: str | None = None) -> bytes:
    envelope = common_pb.ProtoMessage(payloadType=payload_type, payload=payload)
    if client_msg_id:
        envelope.clientMsgId = client_msg_id
    body = envelope.SerializeToString()
    return _HEADER.pack(len(body)) + body


def spot_block(account_id: int, n: int = BLOCK, seed: int = 7) -> bytes:
    """``n`` encoded spot frames of ``account_id``: ten symbols in turn, prices on a random walk,
    Unix-millisecond timestamps (as a subscription with timestamps gets them)."""
    rng = random.Random(seed)  # noqa: S311 - prices, not secrets
    bids = [100_000 + 1_000 * s for s in range(10)]
    out = []
    for i in range(n):
        symbol = i % 10
        bids[symbol] += rng.randint(-5, 5)
        spread = rng.randint(1, 20)
        spot = pb.ProtoOASpotEvent(
            ctidTraderAccountId=account_id,
            symbolId=symbol + 1,
            bid=bids[symbol],
            ask=bids[symbol] + spread,
            timestamp=1_764_900_000_000 + i * 3,
        )
        out.append(_frame(2131, spot.SerializeToString()))
    return b"".join(out)


class _Connection:
    def __init__(self, writer: asyncio.StreamWriter, server: _Server) -> None:
        self.writer = writer
        self.server = server

    def answer(self, envelope: common_pb.ProtoMessage) -> None:
        cmid = envelope.clientMsgId or None
        pt = envelope.payloadType
        write = self.writer.write
        if pt == 2100:
            write(_frame(2101, b"", cmid))
        elif pt == 2102:
            req = pb.ProtoOAAccountAuthReq.FromString(envelope.payload)
            res = pb.ProtoOAAccountAuthRes(ctidTraderAccountId=req.ctidTraderAccountId)
            write(_frame(2103, res.SerializeToString(), cmid))
        elif pt == 2127:
            sub = pb.ProtoOASubscribeSpotsReq.FromString(envelope.payload)
            self.server.subscribers.setdefault(sub.ctidTraderAccountId, []).append(self)
            subscribed = pb.ProtoOASubscribeSpotsRes(ctidTraderAccountId=sub.ctidTraderAccountId)
            write(_frame(2128, subscribed.SerializeToString(), cmid))
        elif pt == 2104:
            write(_frame(2105, pb.ProtoOAVersionRes(version="firehose").SerializeToString(), cmid))
        elif pt != 51:
            error = pb.ProtoOAErrorRes(errorCode="UNSUPPORTED", description="not in the firehose")
            write(_frame(2142, error.SerializeToString(), cmid))

    async def burst(self, data: memoryview) -> None:
        writer = self.writer
        for start in range(0, len(data), WRITE):
            writer.write(data[start : start + WRITE])
            await writer.drain()


class _Server:
    def __init__(self) -> None:
        self.subscribers: dict[int, list[_Connection]] = {}
        self.blocks: dict[int, bytes] = {}

    def payload(self, account_id: int, n: int) -> memoryview:
        block = self.blocks.get(account_id)
        if block is None:
            block = self.blocks[account_id] = spot_block(account_id)
        size = len(block) // BLOCK
        whole, rest = divmod(n, BLOCK)
        return memoryview(block * whole + block[: rest * size])

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = _Connection(writer, self)
        try:
            while True:
                (length,) = _HEADER.unpack(await reader.readexactly(4))
                connection.answer(common_pb.ProtoMessage.FromString(await reader.readexactly(length)))
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            for connections in self.subscribers.values():
                if connection in connections:
                    connections.remove(connection)
            writer.close()


async def _serve() -> None:
    from ctrader_typed.testing._certs import make_certificates

    certs_dir = Path(tempfile.mkdtemp(prefix="ctrader-bench-firehose-"))
    certificates = make_certificates(certs_dir)
    state = _Server()
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0, ssl=certificates.server_context())
    try:
        info = {
            "host": "127.0.0.1",
            "port": server.sockets[0].getsockname()[1],
            "ca_file": str(certificates.ca_file),
            "client_id": "firehose-client",
            "client_secret": "firehose-secret",
            "access_token": "firehose-token",
            "accounts": list(ACCOUNTS),
        }
        sys.stdout.write(json.dumps(info) + "\n")
        sys.stdout.flush()
        loop = asyncio.get_running_loop()
        while True:
            words = (await loop.run_in_executor(None, sys.stdin.readline)).split()
            if not words or words[0] == "quit":
                return
            if words[0] != "burst" or len(words) != 3:
                sys.stdout.write(f"error bad command {' '.join(words)!r}\n")
            else:
                n, account = int(words[1]), int(words[2])
                targets = list(state.subscribers.get(account, ()))
                data = state.payload(account, n)
                await asyncio.gather(*(c.burst(data) for c in targets))
                sys.stdout.write(f"sent {n * len(targets)}\n")
            sys.stdout.flush()
    finally:
        server.close()
        shutil.rmtree(certs_dir, ignore_errors=True)


class Firehose(ChildProcess):
    """Start ``python -m benchmarks._firehose`` and talk to it (the interface of ``SimProcess``)."""

    MODULE = "benchmarks._firehose"
    WHAT = "the firehose process"

    async def burst(self, n: int, account_id: int) -> int:
        """Write ``n`` pre-encoded spot frames to each connection subscribed for ``account_id``;
        returns once all were written."""
        assert self._process is not None
        assert self._process.stdin is not None
        self._process.stdin.write(f"burst {n} {account_id}\n".encode())
        await self._process.stdin.drain()
        answer = (await self._readline(300.0)).split()
        if answer[0] != "sent":
            raise RuntimeError(f"firehose: {' '.join(answer)}")
        return int(answer[1])


if __name__ == "__main__":
    asyncio.run(_serve())
