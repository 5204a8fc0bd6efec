"""A minimal Open API endpoint for the memory benchmark, in its own process.

The simulator knows 3 accounts and 10 symbols; the memory figure wants 5 accounts and
1,000 spot subscriptions on one connection. This stub accepts any account and symbol:
it answers application auth, account auth, spot subscriptions and version requests,
and on ``burst N`` (stdin) streams N spot events round-robin over every subscription.
Run as ``python -m benchmarks._stubproc``; it prints ``{"host", "port", "ca_file"}``.
Not a protocol reference: the simulator is that.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import struct
import sys
import tempfile
from pathlib import Path

from ctrader_typed._generated import OpenApiCommonMessages_pb2 as common_pb
from ctrader_typed._generated import OpenApiMessages_pb2 as pb

_HEADER = struct.Struct(">I")


def _frame(payload_type: int, payload: bytes, client_msg_id: str | None = None) -> bytes:
    envelope = common_pb.ProtoMessage(payloadType=payload_type, payload=payload)
    if client_msg_id:
        envelope.clientMsgId = client_msg_id
    body = envelope.SerializeToString()
    return _HEADER.pack(len(body)) + body


class _Connection:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.subscriptions: list[tuple[int, int]] = []

    def answer(self, envelope: common_pb.ProtoMessage) -> None:
        cmid = envelope.clientMsgId or None
        pt = envelope.payloadType
        if pt == 2100:
            self.writer.write(_frame(2101, b"", cmid))
        elif pt == 2102:
            req = pb.ProtoOAAccountAuthReq.FromString(envelope.payload)
            auth = pb.ProtoOAAccountAuthRes(ctidTraderAccountId=req.ctidTraderAccountId)
            self.writer.write(_frame(2103, auth.SerializeToString(), cmid))
        elif pt == 2127:
            sub = pb.ProtoOASubscribeSpotsReq.FromString(envelope.payload)
            self.subscriptions += [(sub.ctidTraderAccountId, s) for s in sub.symbolId]
            res = pb.ProtoOASubscribeSpotsRes(ctidTraderAccountId=sub.ctidTraderAccountId)
            self.writer.write(_frame(2128, res.SerializeToString(), cmid))
        elif pt == 2104:
            self.writer.write(_frame(2105, pb.ProtoOAVersionRes(version="stub").SerializeToString(), cmid))
        elif pt != 51:
            error = pb.ProtoOAErrorRes(errorCode="UNSUPPORTED", description="not in the stub")
            self.writer.write(_frame(2142, error.SerializeToString(), cmid))

    async def burst(self, n: int) -> int:
        frames = [
            _frame(
                2131,
                pb.ProtoOASpotEvent(
                    ctidTraderAccountId=account,
                    symbolId=symbol,
                    bid=100_000 + symbol,
                    ask=100_010 + symbol,
                    timestamp=1_700_000_000_000 + symbol,
                ).SerializeToString(),
            )
            for account, symbol in self.subscriptions
        ]
        if not frames:
            return 0
        source = itertools.cycle(frames)
        sent = 0
        while sent < n:
            batch = min(512, n - sent)
            self.writer.write(b"".join(next(source) for _ in range(batch)))
            sent += batch
            await self.writer.drain()
        return sent


async def _serve() -> None:
    from ctrader_typed.testing._certs import make_certificates

    certs_dir = Path(tempfile.mkdtemp(prefix="ctrader-bench-stub-"))
    certificates = make_certificates(certs_dir)
    connections: list[_Connection] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = _Connection(writer)
        connections.append(connection)
        try:
            while True:
                (length,) = _HEADER.unpack(await reader.readexactly(4))
                connection.answer(common_pb.ProtoMessage.FromString(await reader.readexactly(length)))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            connections.remove(connection)
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=certificates.server_context())
    try:
        port = server.sockets[0].getsockname()[1]
        print(
            json.dumps({"host": "127.0.0.1", "port": port, "ca_file": str(certificates.ca_file)}), flush=True
        )
        loop = asyncio.get_running_loop()
        while True:
            words = (await loop.run_in_executor(None, sys.stdin.readline)).split()
            if not words or words[0] == "quit":
                return
            sent = sum([await c.burst(int(words[1])) for c in list(connections)])
            print(f"sent {sent}", flush=True)
    finally:
        server.close()
        shutil.rmtree(certs_dir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(_serve())
