"""WebSocket and JSON: the client's WebSocket link and the simulator's four ways in, over sockets.

The client's behaviour over WebSocket is the whole client suite run twice (``conftest.py``);
this module holds what is particular to the transports: that the parametrisation really
reaches the simulator over WebSocket, the link's own refusals (upgrade refused, text
messages, untrusted certificates, the missing extra), and the simulator's endpoints as an
independent client sees them - protobuf over WSS, JSON over WSS and JSON over TLS in both
framings - with ``websockets``' own asyncio client and plain TLS streams.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import ssl
import struct
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed

import ctrader_typed._wslink
from ctrader_typed import AsyncClient, Disconnected
from ctrader_typed._client.options import Transport
from ctrader_typed._generated import OpenApiCommonMessages_pb2 as common_pb
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed.errors import (
    ConnectionClosedError,
    MissingExtraError,
    RemoteProtocolError,
    TLSVerificationError,
)
from ctrader_typed.testing import Simulator
from ctrader_typed.testing._certs import make_certificates
from ctrader_typed.testing.cli import add_sim_arguments, settings_from

from .support import FAST, make_client, next_of

APPLICATION_AUTH_REQ = 2100
APPLICATION_AUTH_RES = 2101
VERSION_REQ = 2104
VERSION_RES = 2105
ACCOUNT_LIST_REQ = 2149
ACCOUNT_LIST_RES = 2150
ERROR_RES = 50
HEARTBEAT = 51


def envelope(message: Any, payload_type: int, client_msg_id: str | None = None) -> bytes:
    wrapped = common_pb.ProtoMessage(payloadType=payload_type, payload=message.SerializeToString())
    if client_msg_id is not None:
        wrapped.clientMsgId = client_msg_id
    return wrapped.SerializeToString()


def app_auth_json(sim: Simulator, client_msg_id: str = "a1") -> dict[str, Any]:
    return {
        "clientMsgId": client_msg_id,
        "payloadType": APPLICATION_AUTH_REQ,
        "payload": {"clientId": sim.client_id, "clientSecret": sim.client_secret},
    }


# -- the client ---------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["tls", "websocket"])
async def test_the_simulator_sees_the_transport_the_client_chose(
    ctrader_simulator: Simulator, transport: Transport
) -> None:
    sim = ctrader_simulator
    async with make_client(sim, transport=transport) as client:
        await client.send_application_auth_req(sim.client_id, sim.client_secret)
        assert (await client.send_version_req()).version
        [conn] = sim.connections
        assert conn.transport == transport


async def test_websocket_parametrisation_reaches_the_websocket_endpoint(
    ctrader_simulator: Simulator, client_transport: Transport
) -> None:
    """The autouse fixture's default is TLS here (this module is not parametrised)."""
    assert client_transport == "tls"
    async with make_client(ctrader_simulator, transport="websocket") as client:
        await client.send_application_auth_req(ctrader_simulator.client_id, ctrader_simulator.client_secret)
        assert [c.transport for c in ctrader_simulator.connections] == ["websocket"]


def test_an_unknown_transport_is_refused() -> None:
    with pytest.raises(ValueError, match="transport must be one of"):
        AsyncClient("127.0.0.1", 1, transport="udp")  # type: ignore[arg-type]


def test_the_missing_extra_is_a_typed_error_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctrader_typed._wslink, "HAVE_WEBSOCKETS", False)
    with pytest.raises(MissingExtraError) as caught:
        AsyncClient("127.0.0.1", 1, transport="websocket")
    assert isinstance(caught.value, ImportError)
    assert caught.value.extra == "websocket"
    assert "pip install 'ctrader-typed[websocket]'" in str(caught.value)
    with pytest.raises(MissingExtraError):
        AsyncClient.demo(transport="websocket")
    AsyncClient("127.0.0.1", 1)  # TLS needs nothing more


async def test_an_untrusted_certificate_is_refused_over_websocket(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    client = AsyncClient(sim.host, sim.port, transport="websocket", reconnect=False, connect_timeout=5)
    with pytest.raises(TLSVerificationError):
        await client.connect()
    assert sim.connections == []


async def test_a_wrong_host_name_is_refused_over_websocket(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    client = AsyncClient(
        sim.host,
        sim.port,
        transport="websocket",
        ssl_context=sim.ssl_context,
        server_hostname="not-the-simulator.example",
        connect_timeout=5,
    )
    with pytest.raises(TLSVerificationError):
        await client.connect()


async def test_a_refused_upgrade_fails_the_connect_with_the_status() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        certificates = make_certificates(Path(tmp))

        async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(refuse, "127.0.0.1", 0, ssl=certificates.server_context())
        port = server.sockets[0].getsockname()[1]
        try:
            client = AsyncClient(
                "127.0.0.1",
                port,
                transport="websocket",
                ssl_context=certificates.client_context(),
                connect_timeout=5,
            )
            with pytest.raises(ConnectionClosedError, match="refused the WebSocket upgrade \\(HTTP 404\\)"):
                await client.connect()
            assert client.is_closed
        finally:
            server.close()
            await server.wait_closed()


async def test_text_messages_on_a_protobuf_link_are_a_protocol_error(ctrader_simulator: Simulator) -> None:
    """A protobuf client pointed at the JSON port gets JSON text back: refused, not misread."""
    sim = ctrader_simulator
    client = AsyncClient(
        sim.host, sim.json_port, ssl_context=sim.ssl_context, transport="websocket", reconnect=False, **FAST
    )
    async with client, client.events(Disconnected) as events:
        with pytest.raises(ConnectionClosedError) as caught:
            await client.send_version_req()
        down = await next_of(events, Disconnected)
    assert isinstance(down.error, RemoteProtocolError)
    assert "text (JSON) WebSocket message" in str(down.error)
    assert caught.value.__cause__ is down.error


async def test_a_deliberate_close_ends_with_a_close_frame(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with make_client(sim, transport="websocket") as client:
        await client.send_application_auth_req(sim.client_id, sim.client_secret)
        [conn] = sim.connections
    await sim.wait_until(lambda: conn.closed)
    assert sim.connections == []


# -- the simulator, seen by an independent client -----------------------------------------------


async def test_protobuf_over_websocket_one_message_per_envelope(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with ws_connect(sim.websocket_url, ssl=sim.ssl_context) as ws:
        auth = pb.ProtoOAApplicationAuthReq(clientId=sim.client_id, clientSecret=sim.client_secret)
        await ws.send(envelope(auth, APPLICATION_AUTH_REQ, "a1"))
        answer = common_pb.ProtoMessage.FromString(await ws.recv(decode=False))
        assert (answer.payloadType, answer.clientMsgId) == (APPLICATION_AUTH_RES, "a1")
        await ws.send(envelope(pb.ProtoOAVersionReq(), VERSION_REQ, "v1"))
        answer = common_pb.ProtoMessage.FromString(await ws.recv(decode=False))
        assert (answer.payloadType, answer.clientMsgId) == (VERSION_RES, "v1")
        assert pb.ProtoOAVersionRes.FromString(answer.payload).version == sim.settings.version
        # A message split into fragments is one envelope too.
        whole = envelope(pb.ProtoOAVersionReq(), VERSION_REQ, "v2")
        await ws.send([whole[:3], whole[3:]])
        answer = common_pb.ProtoMessage.FromString(await ws.recv(decode=False))
        assert answer.clientMsgId == "v2"
    await sim.wait_until(lambda: sim.connections == [])


async def test_text_on_the_protobuf_endpoint_is_closed_as_unsupported(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with ws_connect(sim.websocket_url, ssl=sim.ssl_context) as ws:
        await ws.send(json.dumps(app_auth_json(sim)))
        with pytest.raises(ConnectionClosed) as caught:
            await ws.recv()
    assert caught.value.rcvd is not None
    assert caught.value.rcvd.code == 1003


@pytest.mark.ctrader_simulator(max_frame_size=4096)
async def test_an_oversized_websocket_message_is_refused_with_1009(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with ws_connect(sim.websocket_url, ssl=sim.ssl_context, max_size=None) as ws:
        await ws.send(envelope(pb.ProtoOAVersionReq(), VERSION_REQ) + bytes(8192))
        with pytest.raises(ConnectionClosed) as caught:
            await ws.recv()
    assert caught.value.rcvd is not None
    assert caught.value.rcvd.code == 1009


@pytest.mark.ctrader_simulator(heartbeat_interval=0.2)
async def test_a_silent_tls_client_still_gets_heartbeats(ctrader_simulator: Simulator) -> None:
    """The endpoint waits a moment for the first bytes; silence means length-prefixed protobuf."""
    sim = ctrader_simulator
    reader, writer = await asyncio.open_connection(sim.host, sim.port, ssl=sim.ssl_context)
    try:
        (length,) = struct.unpack(">I", await asyncio.wait_for(reader.readexactly(4), 5))
        body = await asyncio.wait_for(reader.readexactly(length), 5)
        assert common_pb.ProtoMessage.FromString(body).payloadType == HEARTBEAT
        assert [c.transport for c in sim.connections] == ["tls"]
    finally:
        writer.close()


async def test_json_over_websocket(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with ws_connect(sim.json_websocket_url, ssl=sim.ssl_context) as ws:
        await ws.send(json.dumps(app_auth_json(sim)))
        answer = json.loads(await ws.recv())
        assert answer == {"clientMsgId": "a1", "payloadType": APPLICATION_AUTH_RES, "payload": {}}
        # Names for the payload type, and a 64-bit field as a string: both are read.
        await ws.send(
            json.dumps(
                {
                    "clientMsgId": "l1",
                    "payloadType": "PROTO_OA_GET_ACCOUNTS_BY_ACCESS_TOKEN_REQ",
                    "payload": {"accessToken": sim.access_token},
                }
            )
        )
        accounts = json.loads(await ws.recv())
        assert accounts["payloadType"] == ACCOUNT_LIST_RES
        ids = [a["ctidTraderAccountId"] for a in accounts["payload"]["ctidTraderAccount"]]
        assert ids == sim.accounts  # int64 sent as JSON numbers
        await ws.send(
            json.dumps(
                {
                    "clientMsgId": "t1",
                    "payloadType": 2121,
                    "payload": {"ctidTraderAccountId": str(sim.demo_accounts[0])},
                }
            )
        )
        refused = json.loads(await ws.recv())  # the account is not authorised on this connection
        assert refused["payloadType"] == 2142
        assert refused["clientMsgId"] == "t1"
        assert isinstance(refused["payload"]["errorCode"], str)
    assert [c.transport for c in sim.connections] in ([], ["json-websocket"])


async def test_unreadable_json_gets_an_error_and_a_close(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with ws_connect(sim.json_websocket_url, ssl=sim.ssl_context) as ws:
        await ws.send("{not json")
        answer = json.loads(await ws.recv())
        assert answer["payloadType"] == ERROR_RES
        assert answer["payload"]["errorCode"] == "UNKNOWN_ERROR"
        with pytest.raises(ConnectionClosed):
            await ws.recv()


async def _json_over_tls(sim: Simulator, framing: str) -> list[dict[str, Any]]:
    reader, writer = await asyncio.open_connection(sim.host, sim.json_port, ssl=sim.ssl_context)
    answers: list[dict[str, Any]] = []
    try:
        for message in (app_auth_json(sim), {"clientMsgId": "v1", "payloadType": VERSION_REQ}):
            data = json.dumps(message).encode()
            writer.write(data + b"\n" if framing == "lines" else struct.pack(">I", len(data)) + data)
            await writer.drain()
            if framing == "lines":
                line = await asyncio.wait_for(reader.readline(), 5)
                answers.append(json.loads(line))
            else:
                (length,) = struct.unpack(">I", await asyncio.wait_for(reader.readexactly(4), 5))
                answers.append(json.loads(await asyncio.wait_for(reader.readexactly(length), 5)))
        assert [c.transport for c in sim.connections] == ["json-tls"]
    finally:
        writer.close()
    return answers


@pytest.mark.parametrize("framing", ["lines", "prefixed"])
async def test_json_over_tls_in_either_framing(ctrader_simulator: Simulator, framing: str) -> None:
    sim = ctrader_simulator
    auth, version = await _json_over_tls(sim, framing)
    assert auth == {"clientMsgId": "a1", "payloadType": APPLICATION_AUTH_RES, "payload": {}}
    assert version == {
        "clientMsgId": "v1",
        "payloadType": VERSION_RES,
        "payload": {"version": sim.settings.version},
    }


async def test_the_websocket_endpoints_verify_like_the_tls_ones(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    with pytest.raises(ssl.SSLCertVerificationError):
        async with ws_connect(sim.websocket_url, ssl=ssl.create_default_context()):
            pass


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_the_json_port_can_be_fixed() -> None:
    port = _free_port()
    async with Simulator(json_port=port) as sim:
        assert sim.json_port == port
        assert sim.connection_info()["json_websocket_url"] == f"wss://127.0.0.1:{port}"
    with pytest.raises(ValueError, match="json_port must differ"):
        Simulator(port=port, json_port=port)


def test_the_sim_command_takes_a_json_port() -> None:
    parser = argparse.ArgumentParser()
    add_sim_arguments(parser)
    assert settings_from(parser.parse_args(["--json-port", "5036"])).json_port == 5036
    assert settings_from(parser.parse_args([])).json_port == 0


# -- the client against an independent WebSocket server (websockets' own asyncio server) ----------


@contextlib.asynccontextmanager
async def scripted_server(
    handler: Callable[[ServerConnection], Awaitable[None]],
) -> AsyncIterator[tuple[int, ssl.SSLContext]]:
    """A ``websockets`` server over TLS on 127.0.0.1 running ``handler`` per connection."""
    with tempfile.TemporaryDirectory() as tmp:
        certificates = make_certificates(Path(tmp))
        async with ws_serve(handler, "127.0.0.1", 0, ssl=certificates.server_context()) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            yield port, certificates.client_context()


async def answer_versions(ws: ServerConnection, *, fragmented: bool = False) -> None:
    """Answer every ``VersionReq`` with ``VersionRes`` (in three fragments if asked)."""
    async for message in ws:
        assert isinstance(message, bytes)
        request = common_pb.ProtoMessage.FromString(message)
        if request.payloadType != VERSION_REQ:
            continue
        answer = envelope(pb.ProtoOAVersionRes(version="scripted"), VERSION_RES, request.clientMsgId)
        if fragmented:
            await ws.send([answer[:2], answer[2:5], answer[5:]])
        else:
            await ws.send(answer)


async def test_fragmented_messages_and_pings_from_another_server() -> None:
    pongs: list[float] = []

    async def handler(ws: ServerConnection) -> None:
        async def ping() -> None:
            pongs.append(await (await ws.ping(b"are you there")))

        asyncio.get_running_loop().create_task(ping())
        await answer_versions(ws, fragmented=True)

    async with scripted_server(handler) as (port, context):
        client = AsyncClient("127.0.0.1", port, ssl_context=context, transport="websocket", **FAST)
        async with client:
            assert (await client.send_version_req()).version == "scripted"
            async with asyncio.timeout(10):  # the client answers the server's ping
                while not pongs:  # noqa: ASYNC110 - the pong is seen by the server's task
                    await asyncio.sleep(0.01)
            assert (await client.send_version_req()).version == "scripted"


async def test_a_close_frame_is_reported_with_its_code_and_reason() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.close(1001, "going away")

    async with scripted_server(handler) as (port, context):
        client = AsyncClient(
            "127.0.0.1", port, ssl_context=context, transport="websocket", reconnect=False, **FAST
        )
        async with client, client.events(Disconnected) as events:
            with pytest.raises(ConnectionClosedError):
                await client.send_version_req()
            down = await next_of(events, Disconnected)
    assert type(down.error) is ConnectionClosedError
    assert "the server closed the connection (1001: going away)" in str(down.error)


async def test_a_message_over_max_frame_size_is_refused_before_it_is_buffered() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send(bytes(64 * 1024))

    async with scripted_server(handler) as (port, context):
        client = AsyncClient(
            "127.0.0.1",
            port,
            ssl_context=context,
            transport="websocket",
            reconnect=False,
            max_frame_size=4096,
            **FAST,
        )
        async with client, client.events(Disconnected) as events:
            with pytest.raises(ConnectionClosedError):
                await client.send_version_req()
            down = await next_of(events, Disconnected)
    assert isinstance(down.error, RemoteProtocolError)
    assert "larger than max_frame_size=4096" in str(down.error)


@pytest.mark.ctrader_simulator(idle_timeout=0.3)
async def test_an_upgrade_that_never_completes_is_dropped(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    reader, writer = await asyncio.open_connection(sim.host, sim.port, ssl=sim.ssl_context)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the rest
        await writer.drain()
        async with asyncio.timeout(10):
            with contextlib.suppress(ConnectionError):
                assert await reader.read() == b""  # the simulator ended it
        assert sim.connections == []
    finally:
        writer.close()


def test_the_client_says_its_transport() -> None:
    tls, websocket = AsyncClient("example.test"), AsyncClient.demo(transport="websocket")
    assert (tls.transport, websocket.transport) == ("tls", "websocket")
    assert repr(tls).startswith("<AsyncClient example.test:5035 new")
    assert repr(websocket).startswith("<AsyncClient wss://demo.ctraderapi.com:5035 new")


async def test_stopping_drops_connections_still_being_upgraded() -> None:
    sim = Simulator(idle_timeout=60.0)
    await sim.start()
    try:
        reader, writer = await asyncio.open_connection(sim.host, sim.port, ssl=sim.ssl_context)
        writer.write(b"GET / HTTP/1.1\r\n")  # an upgrade that is never finished
        await writer.drain()
        await asyncio.sleep(0.1)
    finally:
        async with asyncio.timeout(10):
            await sim.stop()
    try:
        async with asyncio.timeout(5):  # not after the 60 s the upgrade would be given
            with contextlib.suppress(ConnectionError):
                assert await reader.read() == b""
    finally:
        writer.close()
