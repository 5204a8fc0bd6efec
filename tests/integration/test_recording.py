"""Recording a client's session: the file format, connection boundaries, rotation and redaction."""

from __future__ import annotations

import base64
import json
import urllib.parse
from pathlib import Path

import pytest

from ctrader_typed import Reconnected, SpotEvent
from ctrader_typed._framing import encode_envelope
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed.recording import (
    FORMAT,
    VERSION,
    Boundary,
    RecordedFrame,
    Recorder,
    RecordingFormatError,
    Redactor,
    read_header,
    read_recording,
    schema_fingerprint,
    segment_paths,
)
from ctrader_typed.testing import Simulator
from ctrader_typed.tokens import TokenSet

from .support import EURUSD, make_client, next_of


def _encodings(secret: str) -> list[bytes]:
    """Every spelling of ``secret`` a leaky file could hold."""
    raw = secret.encode()
    forms = [
        raw,
        raw.hex().encode(),
        raw.hex().upper().encode(),
        secret.encode("utf-16-le"),
        secret.encode("utf-16-be"),
        urllib.parse.quote(secret, safe="").encode(),
        json.dumps(secret).encode()[1:-1],
    ]
    for shift in range(3):  # base64 of the secret at each alignment inside a longer base64 text
        chunk = base64.b64encode(b"\0" * shift + raw)[4 if shift else 0 :]
        forms.append(chunk[: len(chunk) - 4])
    return [form for form in forms if len(form) >= 8]


def _assert_no_secret(paths: list[Path], secrets: list[str]) -> None:
    for path in paths:
        data = path.read_bytes()
        decoded = [
            base64.b64decode(json.loads(line)["f"]) for line in data.splitlines()[1:] if b'"f"' in line
        ]
        for secret in secrets:
            for form in _encodings(secret):
                assert form not in data, f"{secret[:3]}... leaked into {path.name}"
                assert not any(form in frame for frame in decoded)


async def test_a_session_is_recorded_with_boundaries_and_no_secret(
    ctrader_simulator: Simulator, tmp_path: Path
) -> None:
    sim = ctrader_simulator
    path = tmp_path / "session.ctrec"
    old_access, old_refresh = sim.access_token, sim.refresh_token
    tokens = TokenSet.from_expires_in(access_token=old_access, refresh_token=old_refresh, expires_in=3600)
    recorder = Recorder(path)
    account = sim.demo_accounts[0]
    async with make_client(
        sim, recorder=recorder, client_id=sim.client_id, client_secret=sim.client_secret, tokens=tokens
    ) as client:
        await client.send_account_auth_req(account, old_access)
        async with client.events(SpotEvent, account_id=account) as spots:
            await client.send_subscribe_spots_req(account, [EURUSD])
            await next_of(spots, SpotEvent)
        await client.refresh_tokens()
        await client.send_get_account_list_by_access_token_req(client.tokens.access_token)  # type: ignore[union-attr]
        async with client.events(Reconnected) as lifecycle:
            sim.drop_connections()
            await next_of(lifecycle, Reconnected)
        await client.send_version_req()
    assert recorder.closed
    new_access, new_refresh = sim.access_token, sim.refresh_token
    assert new_access != old_access

    header = read_header(path)
    assert header.version == VERSION
    assert header.schema == schema_fingerprint()
    assert json.loads(path.read_text().splitlines()[0])["format"] == FORMAT
    entries = list(read_recording(path))
    boundaries = [(e.kind, e.connection) for e in entries if isinstance(e, Boundary)]
    assert boundaries[0] == ("open", 1)
    assert ("close", 1) in boundaries
    assert ("open", 2) in boundaries
    assert boundaries[-1] == ("end", 0)
    frames = [e for e in entries if isinstance(e, RecordedFrame)]
    assert [e.t for e in entries] == sorted(e.t for e in entries)
    sent = [f.payload_type for f in frames if f.direction == "out"]
    assert sent[0] == model_pb.PROTO_OA_APPLICATION_AUTH_REQ
    assert model_pb.PROTO_OA_REFRESH_TOKEN_REQ in sent
    # the session is re-made on connection 2: application auth, account auth, subscription
    second = [f.payload_type for f in frames if f.connection == 2 and f.direction == "out"]
    assert second[:2] == [model_pb.PROTO_OA_APPLICATION_AUTH_REQ, model_pb.PROTO_OA_ACCOUNT_AUTH_REQ]
    assert model_pb.PROTO_OA_SPOT_EVENT in [f.payload_type for f in frames if f.direction == "in"]

    # placeholders are stable: the same token gets the same placeholder in every request
    auths = [
        pb.ProtoOAAccountAuthReq.FromString(f.decode().payload)
        for f in frames
        if f.payload_type == model_pb.PROTO_OA_ACCOUNT_AUTH_REQ
    ]
    assert auths[0].accessToken == "redacted-access_token-1"
    assert auths[-1].accessToken == "redacted-access_token-2"  # the refreshed token
    app = next(f for f in frames if f.payload_type == model_pb.PROTO_OA_APPLICATION_AUTH_REQ)
    assert pb.ProtoOAApplicationAuthReq.FromString(app.decode().payload).clientSecret == (
        "redacted-client_secret-1"
    )
    res = next(f for f in frames if f.payload_type == model_pb.PROTO_OA_REFRESH_TOKEN_RES)
    refreshed = pb.ProtoOARefreshTokenRes.FromString(res.decode().payload)
    assert (refreshed.accessToken, refreshed.refreshToken) == (
        "redacted-access_token-2",
        "redacted-refresh_token-2",
    )
    _assert_no_secret([path], [sim.client_secret, old_access, old_refresh, new_access, new_refresh])


async def test_rotation_by_size_and_reading_across_segments(
    ctrader_simulator: Simulator, tmp_path: Path
) -> None:
    sim = ctrader_simulator
    path = tmp_path / "rot.ctrec"
    recorder = Recorder(path, max_bytes=1500)
    async with make_client(
        sim, recorder=recorder, client_id=sim.client_id, client_secret=sim.client_secret
    ) as client:
        account = sim.demo_accounts[0]
        await client.send_account_auth_req(account, sim.access_token)
        for _ in range(30):
            await client.send_version_req()
    segments = segment_paths(path)
    assert len(segments) >= 3
    assert segments == recorder.segments
    assert [read_header(p).segment for p in segments] == list(range(len(segments)))
    for segment in segments[:-1]:
        assert segment.stat().st_size < 1500 + 1024  # a segment ends just past the limit
    entries = list(read_recording(path))
    versions = [
        e for e in entries if isinstance(e, RecordedFrame) and e.payload_type == model_pb.PROTO_OA_VERSION_RES
    ]
    assert len(versions) == 30
    assert isinstance(entries[-1], Boundary)
    assert entries[-1].kind == "end"
    # only the first segment when asked not to follow
    assert len(list(read_recording(path, follow_segments=False))) < len(entries)
    _assert_no_secret(segments, [sim.client_secret, sim.access_token])


def test_max_segments_deletes_the_oldest(tmp_path: Path) -> None:
    path = tmp_path / "few.ctrec"
    with Recorder(path, max_bytes=1024, max_segments=2) as recorder:
        frame = encode_envelope(model_pb.PROTO_OA_VERSION_REQ, b"", "x" * 200)[4:]
        for _ in range(40):
            recorder.record_frame(1, "out", frame)
    assert len(recorder.segments) == 2
    assert not path.exists()
    assert all(p.exists() for p in recorder.segments)


def test_a_growing_file_is_read_up_to_its_last_whole_line(tmp_path: Path) -> None:
    path = tmp_path / "live.ctrec"
    recorder = Recorder(path)
    frame = encode_envelope(model_pb.PROTO_OA_VERSION_REQ, b"", "c1")[4:]
    recorder.record_boundary(1, "open")
    recorder.record_frame(1, "out", frame)
    with path.open("ab") as file:  # a writer caught in the middle of a line
        file.write(b'{"k":"in","t":1.0,"c":1,"pt":21')
    entries = list(read_recording(path))
    recorder.close()
    assert [type(e).__name__ for e in entries] == ["Boundary", "RecordedFrame"]
    assert isinstance(entries[1], RecordedFrame)
    assert entries[1].frame == encode_envelope(model_pb.PROTO_OA_VERSION_REQ, b"", "c1")


def test_bad_files_get_a_typed_error(tmp_path: Path) -> None:
    other = tmp_path / "other.jsonl"
    other.write_text('{"hello": 1}\n')
    with pytest.raises(RecordingFormatError, match="not a ctrader-typed recording"):
        list(read_recording(other))
    newer = tmp_path / "newer.ctrec"
    newer.write_text(json.dumps({"format": FORMAT, "version": VERSION + 1}) + "\n")
    with pytest.raises(RecordingFormatError, match="format version"):
        read_header(newer)
    broken = tmp_path / "broken.ctrec"
    broken.write_text(json.dumps({"format": FORMAT, "version": 1}) + '\n{"k":"in","f":"!!"}\n')
    with pytest.raises(RecordingFormatError, match="line 2"):
        list(read_recording(broken))
    with pytest.raises(FileExistsError):
        Recorder(broken)
    with pytest.raises(ValueError, match="max_bytes"):
        Recorder(tmp_path / "x", max_bytes=10)


def test_redactor_replaces_secrets_everywhere_consistently() -> None:
    secret = "s3cr3t/client+secret=value"  # characters that URL and JSON encoders escape
    token = "ACCESS-token-0123456789"
    redactor = Redactor()
    auth = pb.ProtoOAApplicationAuthReq(clientId="id", clientSecret=secret).SerializeToString()
    out, dropped = redactor.envelope(encode_envelope(model_pb.PROTO_OA_APPLICATION_AUTH_REQ, auth)[4:])
    assert not dropped
    assert not redactor.leaks(out)
    account = pb.ProtoOAAccountAuthReq(ctidTraderAccountId=1, accessToken=token).SerializeToString()
    redactor.envelope(encode_envelope(model_pb.PROTO_OA_ACCOUNT_AUTH_REQ, account)[4:])
    # a server text echoing the secrets, URL-encoded and JSON-escaped, and a clientMsgId holding one
    text = f"bad {urllib.parse.quote(secret, safe='')} and {json.dumps(token)} in {secret}"
    error = pb.ProtoOAErrorRes(errorCode="X", description=text).SerializeToString()
    cleaned, dropped = redactor.envelope(encode_envelope(model_pb.PROTO_OA_ERROR_RES, error, token)[4:])
    assert not dropped
    from ctrader_typed._framing import Envelope

    envelope = Envelope.FromString(cleaned)
    description = pb.ProtoOAErrorRes.FromString(envelope.payload).description
    assert description == (
        'bad redacted-client_secret-1 and "redacted-access_token-1" in redacted-client_secret-1'
    )
    assert envelope.clientMsgId == "redacted-access_token-1"
    assert redactor.placeholder(token) == "redacted-access_token-1"
    # an unknown payload type holding a secret's bytes loses its payload
    unknown = encode_envelope(9999, b"\x0a\x20" + token.encode("utf-16-le")[:32])[4:]
    raw = encode_envelope(9999, token.encode())[4:]
    for data in (unknown, raw):
        cleaned, dropped = redactor.envelope(data)
        assert not redactor.leaks(cleaned)
    assert redactor.envelope(raw)[1] is True


async def test_a_failing_disk_stops_the_recording_not_the_client(
    ctrader_simulator: Simulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sim = ctrader_simulator
    recorder = Recorder(tmp_path / "full.ctrec")
    async with make_client(
        sim, recorder=recorder, client_id=sim.client_id, client_secret=sim.client_secret
    ) as client:
        await client.send_version_req()
        assert recorder._file is not None

        def full(data: bytes) -> int:
            raise OSError(28, "No space left on device")

        recorder._file.write = full  # type: ignore[method-assign,assignment]
        written = recorder.frames_written
        assert (await client.send_version_req()).version  # the client goes on
        await client.send_version_req()
    assert isinstance(recorder.error, OSError)
    assert recorder.frames_written == written
    assert "recording to" in caplog.text
    assert "No space left on device" in caplog.text
