"""The simulator at the frame level: framing, heartbeats, idle timeout, session state machine.

Driven with ``RawClient`` (plain asyncio TLS + protobuf classes), never through the SDK.
"""

from __future__ import annotations

import asyncio
import ssl
import struct

import pytest

from ctrader_typed._generated import OpenApiCommonMessages_pb2 as common_pb
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.testing import Simulator
from ctrader_typed.testing.raw import RawClient

ERROR_RES = 50
OA_ERROR = model_pb.PROTO_OA_ERROR_RES


async def connect(sim: Simulator, hostname: str = "localhost") -> RawClient:
    return await RawClient.connect(sim.host, sim.port, sim.ssl_context, server_hostname=hostname)


def error_code(received: object) -> str:
    message = getattr(received, "message", None)
    assert isinstance(message, pb.ProtoOAErrorRes | common_pb.ProtoErrorRes), received
    return message.errorCode


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1"])
async def test_tls_certificate_is_valid_for_both_names(ctrader_simulator: Simulator, hostname: str) -> None:
    sim = ctrader_simulator
    async with await connect(sim, hostname) as raw:
        answer = await raw.request(
            pb.ProtoOAApplicationAuthReq(clientId=sim.client_id, clientSecret=sim.client_secret)
        )
        assert answer.payload_type == model_pb.PROTO_OA_APPLICATION_AUTH_RES


async def test_tls_refuses_clients_that_do_not_trust_the_ca(ctrader_simulator: Simulator) -> None:
    untrusting = ssl.create_default_context()
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.open_connection(
            ctrader_simulator.host, ctrader_simulator.port, ssl=untrusting, server_hostname="localhost"
        )
    assert ctrader_simulator.ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")


async def test_requests_before_application_auth_are_refused(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with await connect(sim) as raw:
        answer = await raw.request(pb.ProtoOAVersionReq(), client_msg_id="before-auth")
        assert answer.payload_type == OA_ERROR
        assert answer.client_msg_id == "before-auth"
        assert error_code(answer) == "CH_CLIENT_NOT_AUTHENTICATED"
        answer = await raw.request(pb.ProtoOATraderReq(ctidTraderAccountId=sim.accounts[0]))
        assert error_code(answer) == "CH_CLIENT_NOT_AUTHENTICATED"


async def test_bad_credentials_then_good_then_twice(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with await connect(sim) as raw:
        bad = await raw.request(pb.ProtoOAApplicationAuthReq(clientId=sim.client_id, clientSecret="wrong"))
        assert error_code(bad) == "CH_CLIENT_AUTH_FAILURE"
        assert "wrong" not in bad.payload.decode(errors="replace")
        unknown = await raw.request(
            pb.ProtoOAApplicationAuthReq(clientId="nobody", clientSecret=sim.client_secret)
        )
        assert error_code(unknown) == "CH_CLIENT_AUTH_FAILURE"
        good = await raw.request(
            pb.ProtoOAApplicationAuthReq(clientId=sim.client_id, clientSecret=sim.client_secret)
        )
        assert good.payload_type == model_pb.PROTO_OA_APPLICATION_AUTH_RES
        again = await raw.request(
            pb.ProtoOAApplicationAuthReq(clientId=sim.client_id, clientSecret=sim.client_secret)
        )
        assert error_code(again) == "CH_CLIENT_ALREADY_AUTHENTICATED"
        version = await raw.request(pb.ProtoOAVersionReq())
        assert isinstance(version.message, pb.ProtoOAVersionRes)
        assert version.message.version == "91"


async def test_account_auth_error_codes(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    demo = sim.accounts[0]
    async with await connect(sim) as raw:
        await raw.authorize(sim.client_id, sim.client_secret)
        cases = [
            (demo, "not-a-token", "CH_ACCESS_TOKEN_INVALID"),
            (123, sim.access_token, "CH_CTID_TRADER_ACCOUNT_NOT_FOUND"),
        ]
        for account_id, token, code in cases:
            answer = await raw.request(
                pb.ProtoOAAccountAuthReq(ctidTraderAccountId=account_id, accessToken=token)
            )
            assert error_code(answer) == code
            assert isinstance(answer.message, pb.ProtoOAErrorRes)
            assert answer.message.ctidTraderAccountId == account_id
        # Account-scoped request on an account that is not authorised on this connection.
        answer = await raw.request(pb.ProtoOATraderReq(ctidTraderAccountId=demo))
        assert error_code(answer) == "ACCOUNT_NOT_AUTHORIZED"
        ok = await raw.request(
            pb.ProtoOAAccountAuthReq(ctidTraderAccountId=demo, accessToken=sim.access_token)
        )
        assert isinstance(ok.message, pb.ProtoOAAccountAuthRes)
        assert ok.message.ctidTraderAccountId == demo
        twice = await raw.request(
            pb.ProtoOAAccountAuthReq(ctidTraderAccountId=demo, accessToken=sim.access_token)
        )
        assert error_code(twice) == "ALREADY_LOGGED_IN"


async def test_token_not_granting_the_account_is_refused(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    narrow_token, _ = sim.issue_tokens("trading", [sim.accounts[0]])
    async with await connect(sim) as raw:
        await raw.authorize(sim.client_id, sim.client_secret)
        listing = await raw.request(pb.ProtoOAGetAccountListByAccessTokenReq(accessToken=narrow_token))
        assert isinstance(listing.message, pb.ProtoOAGetAccountListByAccessTokenRes)
        assert [a.ctidTraderAccountId for a in listing.message.ctidTraderAccount] == [sim.accounts[0]]
        answer = await raw.request(
            pb.ProtoOAAccountAuthReq(ctidTraderAccountId=sim.accounts[1], accessToken=narrow_token)
        )
        assert error_code(answer) == "ACCOUNT_NOT_AUTHORIZED"


async def test_many_accounts_demo_and_live_on_one_connection(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    assert sim.accounts[0] in sim.demo_accounts
    assert sim.live_accounts
    assert set(sim.live_accounts) < set(sim.accounts)
    async with await connect(sim) as raw:
        await raw.authorize(sim.client_id, sim.client_secret, sim.access_token, sim.accounts)
        for account_id in sim.accounts:
            answer = await raw.request(pb.ProtoOATraderReq(ctidTraderAccountId=account_id))
            assert isinstance(answer.message, pb.ProtoOATraderRes)
            assert answer.message.trader.ctidTraderAccountId == account_id
        (conn,) = sim.connections
        assert sorted(conn.accounts) == sorted(sim.accounts)


async def test_client_msg_id_is_echoed_and_absent_when_not_sent(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    sim.pause_market()
    async with await connect(sim) as raw:
        await raw.authorize(sim.client_id, sim.client_secret)
        await raw.send(pb.ProtoOAVersionReq(), client_msg_id="x" * 40)
        answer = await raw.expect(model_pb.PROTO_OA_VERSION_RES)
        assert answer.client_msg_id == "x" * 40
        await raw.send(pb.ProtoOAVersionReq())
        answer = await raw.expect(model_pb.PROTO_OA_VERSION_RES)
        assert answer.client_msg_id is None


async def test_inner_payload_type_field_is_not_required(ctrader_simulator: Simulator) -> None:
    """Senders normally leave the inner ``payloadType`` unset; setting it must not matter either."""
    sim = ctrader_simulator
    async with await connect(sim) as raw:
        request = pb.ProtoOAApplicationAuthReq(clientId=sim.client_id, clientSecret=sim.client_secret)
        request.payloadType = model_pb.PROTO_OA_APPLICATION_AUTH_REQ
        answer = await raw.request(request)
        assert answer.payload_type == model_pb.PROTO_OA_APPLICATION_AUTH_RES


async def test_answers_come_in_request_order(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    sim.pause_market()
    async with await connect(sim) as raw:
        await raw.authorize(sim.client_id, sim.client_secret, sim.access_token, [sim.accounts[0]])
        ids = [f"m{n}" for n in range(20)]
        for n, cmid in enumerate(ids):
            message: pb.ProtoOAVersionReq | pb.ProtoOATraderReq
            message = (
                pb.ProtoOAVersionReq() if n % 2 else pb.ProtoOATraderReq(ctidTraderAccountId=sim.accounts[0])
            )
            await raw.send(message, client_msg_id=cmid)
        seen = [(await raw.recv()).client_msg_id for _ in ids]
        assert seen == ids


async def test_missing_required_field_is_invalid_request(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with await connect(sim) as raw:
        await raw.authorize(sim.client_id, sim.client_secret)
        answer = await raw.request(pb.ProtoOAAccountAuthReq(ctidTraderAccountId=sim.accounts[0]))
        assert answer.payload_type == ERROR_RES
        assert error_code(answer) == "INVALID_REQUEST"
        assert "accessToken" in answer.message.description  # type: ignore[union-attr]
        # The connection survives.
        assert (await raw.request(pb.ProtoOAVersionReq())).payload_type == model_pb.PROTO_OA_VERSION_RES


async def test_unknown_and_non_request_payload_types_are_unsupported(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with await connect(sim) as raw:
        await raw.authorize(sim.client_id, sim.client_secret)
        await raw.send(pb.ProtoOAVersionReq(), payload_type=9999, client_msg_id="u1")
        answer = await raw.expect(lambda r: r.client_msg_id == "u1")
        assert answer.payload_type == ERROR_RES
        assert error_code(answer) == "UNSUPPORTED_MESSAGE"
        spot = pb.ProtoOASpotEvent(ctidTraderAccountId=1, symbolId=1)
        answer = await raw.request(spot)
        assert error_code(answer) == "UNSUPPORTED_MESSAGE"
        assert (await raw.request(pb.ProtoOAVersionReq())).payload_type == model_pb.PROTO_OA_VERSION_RES


async def test_corrupt_frame_gets_error_and_close(ctrader_simulator: Simulator) -> None:
    async with await connect(ctrader_simulator) as raw:
        await raw.send_bytes(b"\xff\xff\xff\xff\xff")
        frames = await raw.read_until_closed()
        errors = [f for f in frames if f.payload_type == ERROR_RES]
        assert [error_code(e) for e in errors] == ["UNKNOWN_ERROR"]


async def test_envelope_without_payload_type_is_corrupt(ctrader_simulator: Simulator) -> None:
    async with await connect(ctrader_simulator) as raw:
        await raw.send_bytes(b"")
        frames = await raw.read_until_closed()
        assert [error_code(f) for f in frames if f.payload_type == ERROR_RES] == ["UNKNOWN_ERROR"]


@pytest.mark.ctrader_simulator(max_frame_size=1024)
async def test_oversized_frame_gets_frame_too_long_and_close(ctrader_simulator: Simulator) -> None:
    async with await connect(ctrader_simulator) as raw:
        await raw.send_raw(struct.pack(">I", 1025))
        frames = await raw.read_until_closed()
        assert [error_code(f) for f in frames if f.payload_type == ERROR_RES] == ["FRAME_TOO_LONG"]


@pytest.mark.ctrader_simulator(max_frame_size=1024)
async def test_frame_at_the_limit_is_accepted(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with await connect(sim) as raw:
        envelope = common_pb.ProtoMessage(
            payloadType=model_pb.PROTO_OA_VERSION_REQ, payload=b"", clientMsgId="p" * 1000
        ).SerializeToString()
        padding = 1024 - len(envelope)
        envelope = common_pb.ProtoMessage(
            payloadType=model_pb.PROTO_OA_VERSION_REQ, payload=b"", clientMsgId="p" * (1000 + padding)
        ).SerializeToString()
        assert len(envelope) == 1024
        await raw.send_bytes(envelope)
        answer = await raw.recv()
        assert error_code(answer) == "CH_CLIENT_NOT_AUTHENTICATED"


@pytest.mark.ctrader_simulator(heartbeat_interval=0.05, idle_timeout=10.0, spot_interval=10.0)
async def test_server_sends_heartbeats_when_idle(ctrader_simulator: Simulator) -> None:
    async with await connect(ctrader_simulator) as raw:
        beats = [await raw.recv(timeout=2.0, heartbeats=True) for _ in range(3)]
        assert {b.payload_type for b in beats} == {51}
        assert all(b.client_msg_id is None and b.payload == b"" for b in beats)


@pytest.mark.ctrader_simulator(heartbeat_interval=0.05, idle_timeout=10.0)
async def test_pause_heartbeats(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with await connect(sim) as raw:
        await raw.recv(timeout=2.0, heartbeats=True)
        sim.pause_heartbeats(True)
        await asyncio.sleep(0.1)  # let a heartbeat already on its way arrive
        raw.backlog.clear()
        with pytest.raises(TimeoutError):
            await raw.recv(timeout=0.3, heartbeats=True)
        sim.pause_heartbeats(False)
        assert (await raw.recv(timeout=2.0, heartbeats=True)).payload_type == 51


@pytest.mark.ctrader_simulator(idle_timeout=1.5, heartbeat_interval=0.05)
async def test_idle_connection_is_closed_but_client_heartbeats_keep_it(ctrader_simulator: Simulator) -> None:
    # A heartbeat every 0.05 s against a 1.5 s idle timeout: a wide margin on a busy machine.
    sim = ctrader_simulator
    async with await connect(sim) as quiet, await connect(sim) as chatty:
        await sim.wait_for_connections(2)

        async def keep_alive() -> None:
            while True:
                await chatty.send(common_pb.ProtoHeartbeatEvent(), payload_type=51)
                await asyncio.sleep(0.05)

        task = asyncio.create_task(keep_alive())
        try:
            await quiet.read_until_closed(timeout=60.0)
            assert len(sim.connections) == 1
            assert (await chatty.request(pb.ProtoOAVersionReq())).payload_type == OA_ERROR
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_tokens_do_not_show_in_reprs(ctrader_simulator: Simulator) -> None:
    sim = ctrader_simulator
    async with await connect(sim) as raw:
        await raw.authorize(sim.client_id, sim.client_secret, sim.access_token, sim.accounts)
        (conn,) = sim.connections
        shown = repr(conn) + repr(conn.accounts) + repr(sim) + repr(sim.authority.default_grant)
        for secret in (sim.access_token, sim.refresh_token, sim.client_secret):
            assert secret not in shown
        assert all(token == sim.access_token for token in conn.accounts.values())
