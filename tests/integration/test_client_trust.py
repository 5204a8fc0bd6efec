"""What the client must survive from a server (or a store) it should not trust, over real TLS.

* absurd token lifetimes (``expiresIn`` 2**62): clamped, stored first, the refresher lives on;
* token lifetimes no longer than ``refresh_margin`` (120 s, 10 s, -1): refreshes stay bounded;
* a refresh that fails (store errors, error answers, garbage, silence): ``TokenRefreshFailed``,
  logged, retried with backoff - the refresher never dies;
* a server echoing the client secret / tokens (literal, URL-encoded, JSON-escaped) in its
  error texts: scrubbed from every exception, log record and event;
* TLS settings that switch verification off are refused unless ``insecure_tls``; an
  untrusted certificate (unknown CA, wrong host name) raises ``TLSVerificationError``.

The hostile server is ``RawServer`` (its own CA on 127.0.0.1); the friendly one the simulator.
Windows of real time only bound counts from above (a busy machine can only lower them).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ctrader_typed import (
    AsyncClient,
    ClientEvent,
    CommonErrorRes,
    ErrorRes,
    TokenRefreshFailed,
    TokensRefreshed,
)
from ctrader_typed._generated import OpenApiCommonMessages_pb2 as common_pb
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed.errors import (
    APIError,
    AuthenticationError,
    ConnectionClosedError,
    RemoteProtocolError,
    RequestTimeoutError,
    TLSVerificationError,
)
from ctrader_typed.testing import RawPeer, RawServer, Simulator
from ctrader_typed.testing._certs import make_certificates
from ctrader_typed.testing.raw import Received
from ctrader_typed.tokens import MAX_LIFETIME_SECONDS, FileTokenStore, MemoryTokenStore, TokenSet

from .support import FAST, make_client

CLIENT_ID = "trust-client-id"
# Secrets whose literal, URL-encoded (quote / quote_plus) and JSON-escaped spellings all differ.
CLIENT_SECRET = 's3cr/t+x=y"z w\\1'
ACCESS = 'acc/ess+T0k=en"a b\\2'
REFRESH = 'ref/resh+T0k=en"r b\\3'
SECRETS = (CLIENT_SECRET, ACCESS, REFRESH)
ACCOUNT = 4242
REFRESH_REQ = 2173
REFRESH_RES = 2174
WINDOW = 1.5
"""Seconds of real time over which refreshes are counted."""
GUARD = 15.0
"""Hang guard for waits that should end much sooner."""


# -- helpers ------------------------------------------------------------------------------------


def raw_client(server: RawServer, **overrides: Any) -> AsyncClient:
    """A client for ``server`` (trusting its CA) with fast intervals and app credentials."""
    options: dict[str, Any] = {**FAST, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    return AsyncClient(server.host, server.port, ssl_context=server.ssl_context, **{**options, **overrides})


def tokens(expires_in: float) -> TokenSet:
    return TokenSet.from_expires_in(ACCESS, REFRESH, expires_in)


def new_pair(n: int) -> tuple[str, str]:
    return f'new/acc+{n}="A x\\', f'new/ref+{n}="R x\\'


def refresh_res(n: int, expires_in: int) -> pb.ProtoOARefreshTokenRes:
    access, refresh = new_pair(n)
    return pb.ProtoOARefreshTokenRes(
        accessToken=access, tokenType="bearer", expiresIn=expires_in, refreshToken=refresh
    )


def refresh_count(server: RawServer) -> int:
    """``ProtoOARefreshTokenReq`` frames the server received, over every connection."""
    return sum(1 for peer in server.peers for r in peer.received if r.payload_type == REFRESH_REQ)


Reply = Callable[[RawPeer, Received, int], Awaitable[None]]


class Responder:
    """Accept every connection, answer auth and version requests on it, and hand every
    ``ProtoOARefreshTokenReq`` (numbered from 1 over all connections) to ``reply``."""

    def __init__(self, server: RawServer, reply: Reply | None) -> None:
        self.server = server
        self.reply = reply
        self.refreshes = 0
        self.peers: list[RawPeer] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Responder:
        self._tasks.append(asyncio.create_task(self._accept()))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self) -> None:
        while True:
            peer = await self.server.accept(timeout=None)
            peer.serve_auth()
            self.peers.append(peer)
            self._tasks.append(asyncio.create_task(self._answer(peer)))

    async def _answer(self, peer: RawPeer) -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                request = await peer.expect(pb.ProtoOARefreshTokenReq, timeout=None)
                self.refreshes += 1
                if self.reply is not None:
                    await self.reply(peer, request, self.refreshes)


def answering(expires_in: int) -> Reply:
    async def reply(peer: RawPeer, request: Received, n: int) -> None:
        peer.answer(request, refresh_res(n, expires_in))

    return reply


async def wait_for(predicate: Callable[[], bool], timeout: float = GUARD) -> None:
    """Poll ``predicate`` until it holds (``timeout`` is only a hang guard)."""
    async with asyncio.timeout(timeout):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.01)  # the conditions are on the wire and in the client


def refresher_alive(client: AsyncClient) -> bool:
    tasks = [t for t in client._tasks if t.get_name() == "ctrader-typed token refresher"]
    return len(tasks) == 1 and not tasks[0].done()


def assert_no_loop_errors(caplog: pytest.LogCaptureFixture) -> None:
    """No task died with an unretrieved exception, nothing else reached the loop's handler."""
    gc.collect()  # "Task exception was never retrieved" is logged when the task is collected
    errors = [r for r in caplog.records if r.name == "asyncio" and r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert "never retrieved" not in caplog.text


def forms(secret: str) -> set[str]:
    """How a server may spell ``secret`` when it echoes it."""
    return {
        secret,
        urllib.parse.quote(secret),
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        json.dumps(secret),
        json.dumps(secret)[1:-1],
    }


def detectable(secret: str) -> set[str]:
    """The echoed forms, and each as it shows inside the ``repr`` of a text holding it."""
    return {spelling for form in forms(secret) for spelling in (form, repr(form)[1:-1])}


def test_the_secrets_spell_differently_in_each_form() -> None:
    for secret in SECRETS:
        assert len(forms(secret)) == 6
        assert len({repr(form)[1:-1] for form in forms(secret)} - forms(secret)) >= 3


def echo(*secrets: str) -> str:
    """A server text echoing every form of ``secrets``."""
    return "refused; you sent " + " | ".join(sorted(f for s in secrets for f in forms(s)))


def exception_texts(exc: BaseException | None) -> list[str]:
    """str / repr of an exception, its fields and raw message, and its whole chain."""
    texts: list[str] = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        texts += [str(exc), repr(exc), repr(exc.args)]
        for name in ("description", "reason", "error_code", "raw"):
            texts.append(repr(getattr(exc, name, None)))
        exc = exc.__cause__ or exc.__context__
    return texts


def event_texts(events: Iterable[object]) -> list[str]:
    texts: list[str] = []
    for event in events:
        texts += [str(event), repr(event)]
        texts += exception_texts(getattr(event, "error", None))
        for name in ("description", "reason", "error_code"):
            texts.append(repr(getattr(event, name, None)))
    return texts


def log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    texts = [caplog.text]
    for record in caplog.records:
        texts += [record.getMessage(), str(record.msg), repr(record.args), record.exc_text or ""]
        if record.exc_info and record.exc_info[1] is not None:
            texts += exception_texts(record.exc_info[1])
    return texts


def assert_no_secret(texts: Iterable[str], secrets: Iterable[str] = SECRETS) -> None:
    every = [form for secret in secrets for form in detectable(secret)]
    for text in texts:
        for form in every:
            assert form not in text, f"{form!r} leaked in {text!r}"


# -- 1. an absurd lifetime ----------------------------------------------------------------------


class RecordingStore:
    """A ``FileTokenStore`` that records, when each save has finished, what the client had
    already done with the new pair: sent it to the server, shown it, reported it."""

    def __init__(self, path: Path, server: RawServer, events: list[ClientEvent]) -> None:
        self.file = FileTokenStore(path)
        self.server = server
        self.events = events
        self.client: AsyncClient | None = None
        self.saved: list[TokenSet] = []
        self.sent_before_saved: list[bool] = []
        self.held_before_saved: list[bool] = []
        self.reported_before_saved: list[bool] = []

    async def load(self) -> TokenSet | None:
        return await self.file.load()

    async def save(self, tokens: TokenSet) -> None:
        await self.file.save(tokens)
        await asyncio.sleep(0.05)  # room for a client that would use the pair before it is stored
        wire = tokens.access_token.encode()
        self.sent_before_saved.append(
            any(wire in r.payload for peer in self.server.peers for r in peer.received)
        )
        assert self.client is not None
        self.held_before_saved.append(self.client.tokens == tokens)
        self.reported_before_saved.append(any(isinstance(e, TokensRefreshed) for e in self.events))
        self.saved.append(tokens)


async def test_a_lifetime_of_2_to_the_62_is_clamped_stored_first_and_the_refresher_lives_on(
    raw_server: RawServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    events: list[ClientEvent] = []
    store = RecordingStore(tmp_path / "tokens.json", raw_server, events)
    account_authed = asyncio.Event()

    async def reply(peer: RawPeer, request: Received, n: int) -> None:
        await account_authed.wait()
        peer.answer(request, refresh_res(n, 2**62))
        # What the real server does next: the old token's sessions are over.
        peer.send(
            pb.ProtoOAAccountsTokenInvalidatedEvent(
                ctidTraderAccountIds=[ACCOUNT], reason="Access token was refreshed"
            )
        )

    async with Responder(raw_server, reply) as responder:
        client = raw_client(raw_server, tokens=tokens(0), token_store=store)
        store.client = client
        client.on(ClientEvent, events.append)
        async with client:
            await client.send_account_auth_req(ACCOUNT, ACCESS)
            account_authed.set()
            new_access, new_refresh = new_pair(1)
            peer = responder.peers[0]

            def reauthorised() -> bool:
                return any(
                    isinstance(r.message, pb.ProtoOAAccountAuthReq) and r.message.accessToken == new_access
                    for r in peer.received
                )

            await wait_for(reauthorised)
            await wait_for(lambda: any(isinstance(e, TokensRefreshed) for e in events))

            [saved] = store.saved
            assert (saved.access_token, saved.refresh_token) == (new_access, new_refresh)
            # Stored before anything else: not sent, not held, not reported before the save ended.
            assert store.sent_before_saved == [False]
            assert store.held_before_saved == [False]
            assert store.reported_before_saved == [False]
            assert await FileTokenStore(tmp_path / "tokens.json").load() == saved
            assert client.tokens == saved
            # Clamped: ten years at most, not "no expiry".
            now = datetime.now(UTC)
            assert saved.expires_at is not None
            assert now + timedelta(days=3000) < saved.expires_at
            assert saved.expires_at <= now + timedelta(seconds=MAX_LIFETIME_SECONDS)
            assert [type(e) for e in events if isinstance(e, TokensRefreshed | TokenRefreshFailed)] == [
                TokensRefreshed
            ]
            assert refresher_alive(client)
            await asyncio.sleep(0.2)
            assert refresh_count(raw_server) == 1
            assert refresher_alive(client)
    assert not any("OverflowError" in text for text in log_texts(caplog))
    assert_no_loop_errors(caplog)


# -- 2. lifetimes no longer than the refresh margin ---------------------------------------------


@pytest.mark.ctrader_simulator(token_lifetime=120)
@pytest.mark.parametrize("initial_lifetime", [0, 120])
async def test_a_simulator_granting_120_s_tokens_is_not_hammered(
    ctrader_simulator: Simulator, initial_lifetime: int, caplog: pytest.LogCaptureFixture
) -> None:
    sim = ctrader_simulator
    store = MemoryTokenStore()
    held = TokenSet.from_expires_in(sim.access_token, sim.refresh_token, initial_lifetime)
    client = make_client(
        sim, client_id=sim.client_id, client_secret=sim.client_secret, tokens=held, token_store=store
    )
    async with client, client.events(TokensRefreshed, TokenRefreshFailed) as events:
        if initial_lifetime == 0:  # the held token is due at once: one refresh, then a pause
            refreshed = await events.get(GUARD)
            assert isinstance(refreshed, TokensRefreshed)
            assert refreshed.tokens.access_token == sim.access_token
        await asyncio.sleep(WINDOW)
        assert store.saves <= 2  # the default margin (300 s) is longer than the 120 s lifetime
        assert store.saves >= (1 if initial_lifetime == 0 else 0)
        assert refresher_alive(client)
    assert_no_loop_errors(caplog)


@pytest.mark.parametrize("expires_in", [10, 0, -1])
async def test_a_server_granting_tokens_shorter_than_the_margin_is_not_hammered(
    raw_server: RawServer, expires_in: int, caplog: pytest.LogCaptureFixture
) -> None:
    async with Responder(raw_server, answering(expires_in)):
        client = raw_client(raw_server, tokens=tokens(0), token_store=MemoryTokenStore())
        async with client, client.events(TokensRefreshed, TokenRefreshFailed) as events:
            first = await events.get(GUARD)
            assert isinstance(first, TokensRefreshed)
            await asyncio.sleep(WINDOW)
            assert refresh_count(raw_server) <= 2
            assert refresher_alive(client)
    assert any("refreshing less often" in r.getMessage() for r in caplog.records)
    assert_no_loop_errors(caplog)


# -- 3. the refresher never dies silently -------------------------------------------------------


class StoreFailure(Exception):
    pass


class FailingStore:
    """A store whose ``save`` raises ``error_type`` with the new refresh token in the message."""

    def __init__(self, error_type: type[Exception]) -> None:
        self.error_type = error_type
        self.attempts = 0

    async def load(self) -> TokenSet | None:
        return None

    async def save(self, tokens: TokenSet) -> None:
        self.attempts += 1
        raise self.error_type(f"cannot write {tokens.refresh_token} to disk")


@pytest.mark.parametrize("error_type", [RuntimeError, OverflowError, ValueError, KeyError, StoreFailure])
async def test_a_store_that_raises_is_reported_and_the_refresher_lives_on(
    raw_server: RawServer, error_type: type[Exception], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = FailingStore(error_type)
    events: list[ClientEvent] = []
    async with Responder(raw_server, answering(1)):
        client = raw_client(raw_server, tokens=tokens(0), token_store=store)
        client.on(ClientEvent, events.append)
        async with client:
            await wait_for(lambda: any(isinstance(e, TokenRefreshFailed) for e in events))
            [failed] = [e for e in events if isinstance(e, TokenRefreshFailed)]
            assert isinstance(failed.error, error_type)
            assert failed.tokens_kept
            assert failed.retry_in is None
            new_access, new_refresh = new_pair(1)
            assert client.tokens is not None
            assert client.tokens.access_token == new_access  # the server retired the old pair
            await asyncio.sleep(WINDOW)
            assert refresh_count(raw_server) <= 2
            assert store.attempts <= 2
            assert refresher_alive(client)
    reports = [
        r
        for r in caplog.records
        if r.name.startswith("ctrader_typed")
        and r.levelno >= logging.WARNING
        and error_type.__name__ in r.getMessage()
    ]
    assert reports, "the failed save was not logged"
    assert_no_secret(log_texts(caplog) + event_texts(events), (*SECRETS, new_access, new_refresh))
    assert_no_loop_errors(caplog)


async def _error_res(peer: RawPeer, request: Received, n: int) -> None:
    peer.answer(request, pb.ProtoOAErrorRes(errorCode="CH_ACCESS_TOKEN_INVALID", description="no"))


async def _common_error_res(peer: RawPeer, request: Received, n: int) -> None:
    peer.answer(request, common_pb.ProtoErrorRes(errorCode="INTERNAL_ERROR", description="oops"))


async def _garbage(peer: RawPeer, request: Received, n: int) -> None:
    peer.send_frame(REFRESH_RES, b"\xff\xff\xff\xff", client_msg_id=request.client_msg_id)


async def _tokenless(peer: RawPeer, request: Received, n: int) -> None:
    # "Success" without the pair (required fields missing): nothing to store or use.
    peer.answer(request, pb.ProtoOARefreshTokenRes(tokenType="bearer", expiresIn=3600))


async def _no_refresh_token(peer: RawPeer, request: Received, n: int) -> None:
    answer = refresh_res(n, 3600)
    answer.refreshToken = ""
    peer.answer(request, answer)


async def _silence(peer: RawPeer, request: Received, n: int) -> None:
    pass


@pytest.mark.parametrize(
    ("reply", "error_type"),
    [
        (_error_res, AuthenticationError),
        (_common_error_res, APIError),
        (_garbage, RemoteProtocolError),
        (_tokenless, RemoteProtocolError),
        (_no_refresh_token, RemoteProtocolError),
        (_silence, RequestTimeoutError),
    ],
    ids=["ProtoOAErrorRes", "ProtoErrorRes", "garbage", "no tokens", "no refresh token", "silence"],
)
async def test_a_failed_refresh_is_reported_and_retried_with_backoff(
    raw_server: RawServer, reply: Reply, error_type: type[Exception], caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryTokenStore()
    events: list[ClientEvent] = []
    async with Responder(raw_server, reply):
        held = tokens(0)
        # 2 s: long enough for the application auth on a busy machine; the silent server times out
        # (and is not declared dead meanwhile).
        client = raw_client(
            raw_server, tokens=held, token_store=store, request_timeout=2.0, dead_link_timeout=60.0
        )
        client.on(ClientEvent, events.append)
        async with client:

            def failures() -> list[TokenRefreshFailed]:
                return [e for e in events if isinstance(e, TokenRefreshFailed)]

            await wait_for(lambda: len(failures()) >= 2)
            first, second = failures()[:2]
            for failed in (first, second):
                assert isinstance(failed.error, error_type)
                assert not failed.tokens_kept
            assert first.retry_in is not None
            assert second.retry_in is not None
            assert 0 < first.retry_in < second.retry_in  # backing off
            await asyncio.sleep(1.0)  # well within the second backoff
            assert refresh_count(raw_server) <= 3
            assert store.saves == 0
            assert client.tokens == held  # nothing usable came: the pair held is kept
            assert refresher_alive(client)
    warnings = [r for r in caplog.records if "token refresh failed" in r.getMessage()]
    assert len(warnings) >= 2
    assert all(r.levelno >= logging.WARNING for r in warnings)
    assert_no_loop_errors(caplog)


# -- 4. secrets echoed by the server ------------------------------------------------------------


def error_answer(kind: str, code: str) -> pb.ProtoOAErrorRes | common_pb.ProtoErrorRes:
    if kind == "ProtoOAErrorRes":
        return pb.ProtoOAErrorRes(errorCode=code, description=echo(*SECRETS))
    return common_pb.ProtoErrorRes(errorCode=code, description=echo(*SECRETS))


ERROR_KINDS = ["ProtoOAErrorRes", "ProtoErrorRes"]


@contextlib.asynccontextmanager
async def watched(client: AsyncClient) -> AsyncIterator[list[object]]:
    """Every event the client emits, and every error message the server sends outside requests."""
    seen: list[object] = []
    registrations = [client.on(cls, seen.append) for cls in (ClientEvent, ErrorRes, CommonErrorRes)]
    try:
        yield seen
    finally:
        for registration in registrations:
            registration()


async def answer_app_auth(server: RawServer) -> RawPeer:
    peer = await server.accept()
    request = await peer.expect(pb.ProtoOAApplicationAuthReq)
    peer.answer(request, pb.ProtoOAApplicationAuthRes())
    return peer


@pytest.mark.parametrize("kind", ERROR_KINDS)
async def test_application_auth_refusal_echoing_secrets_is_scrubbed(
    raw_server: RawServer, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = raw_client(raw_server, tokens=tokens(30 * 86400))
    async with watched(client) as seen:
        connecting = asyncio.create_task(client.connect())
        peer = await raw_server.accept()
        request = await peer.expect(pb.ProtoOAApplicationAuthReq)
        assert isinstance(request.message, pb.ProtoOAApplicationAuthReq)
        assert request.message.clientSecret == CLIENT_SECRET  # the form the server echoes
        peer.answer(request, error_answer(kind, "CH_CLIENT_AUTH_FAILURE"))
        with pytest.raises(APIError) as caught:
            async with asyncio.timeout(GUARD):
                await connecting
        assert "[redacted]" in str(caught.value)
        texts = exception_texts(caught.value) + event_texts(seen) + log_texts(caplog)
        texts += [repr(client), repr(client.tokens)]
    assert_no_secret(texts)
    assert_no_loop_errors(caplog)


@pytest.mark.parametrize("kind", ERROR_KINDS)
async def test_account_auth_refusal_echoing_secrets_is_scrubbed(
    raw_server: RawServer, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # No token set: the client holds the access token because it sent it.
    client = raw_client(raw_server)
    async with watched(client) as seen:
        connecting = asyncio.create_task(client.connect())
        try:
            peer = await answer_app_auth(raw_server)
            async with asyncio.timeout(GUARD):
                await connecting
            authorising = asyncio.create_task(client.send_account_auth_req(ACCOUNT, ACCESS))
            request = await peer.expect(pb.ProtoOAAccountAuthReq)
            peer.answer(request, error_answer(kind, "ACCOUNT_NOT_AUTHORIZED"))
            with pytest.raises(APIError) as caught:
                async with asyncio.timeout(GUARD):
                    await authorising
            assert "[redacted]" in str(caught.value)
        finally:
            await client.close()
        texts = exception_texts(caught.value) + event_texts(seen) + log_texts(caplog)
        texts.append(repr(client))
    assert_no_secret(texts, (CLIENT_SECRET, ACCESS))
    assert_no_loop_errors(caplog)


@pytest.mark.parametrize("kind", ERROR_KINDS)
async def test_refresh_refusal_echoing_secrets_is_scrubbed(
    raw_server: RawServer, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def reply(peer: RawPeer, request: Received, n: int) -> None:
        assert isinstance(request.message, pb.ProtoOARefreshTokenReq)
        assert request.message.refreshToken == REFRESH
        peer.answer(request, error_answer(kind, "CH_ACCESS_TOKEN_INVALID"))

    async with Responder(raw_server, reply):
        # Due at once: the background refresher's failure is reported as an event and logged.
        client = raw_client(raw_server, tokens=tokens(0), token_store=MemoryTokenStore())
        async with watched(client) as seen, client:
            await wait_for(lambda: any(isinstance(e, TokenRefreshFailed) for e in seen))
            # And a refresh asked for raises.
            with pytest.raises(APIError) as caught:
                async with asyncio.timeout(GUARD):
                    await client.refresh_tokens()
            assert "[redacted]" in str(caught.value)
            texts = exception_texts(caught.value) + event_texts(seen)
            texts += [repr(client), repr(client.tokens)]
    assert_no_secret(texts + log_texts(caplog))
    assert_no_loop_errors(caplog)


@pytest.mark.parametrize("kind", ERROR_KINDS)
async def test_unsolicited_errors_echoing_secrets_are_scrubbed(
    raw_server: RawServer, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with Responder(raw_server, None) as responder:
        client = raw_client(raw_server, tokens=tokens(30 * 86400))
        async with watched(client) as seen, client:
            await client.send_account_auth_req(ACCOUNT, ACCESS)
            peer = responder.peers[0]
            for secret in SECRETS:
                # No clientMsgId: an error outside any request, its code echoing a secret too.
                if kind == "ProtoOAErrorRes":
                    peer.send(
                        pb.ProtoOAErrorRes(
                            errorCode=f"BAD_{secret}", description=echo(*SECRETS), ctidTraderAccountId=ACCOUNT
                        )
                    )
                else:
                    peer.send(common_pb.ProtoErrorRes(errorCode=f"BAD_{secret}", description=echo(*SECRETS)))
            await client.send_version_req()  # answered after the errors: they were handled
            errors = [e for e in seen if isinstance(e, ErrorRes | CommonErrorRes)]
            assert len(errors) == len(SECRETS)
            assert all("[redacted]" in (e.description or "") for e in errors)
            texts = event_texts(seen)
    warned = [r for r in caplog.records if "outside any request" in r.getMessage()]
    assert len(warned) == len(SECRETS)
    assert_no_secret(texts + log_texts(caplog))
    assert_no_loop_errors(caplog)


# -- 5. TLS -------------------------------------------------------------------------------------


def unchecked_hostnames(server: RawServer) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(server.ca_file))
    context.check_hostname = False
    return context


def unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def optional_verification(server: RawServer) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(server.ca_file))
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


INSECURE_SETTINGS: list[tuple[str, Callable[[RawServer], dict[str, Any]]]] = [
    ("empty server_hostname", lambda s: {"ssl_context": s.ssl_context, "server_hostname": ""}),
    ("blank server_hostname", lambda s: {"ssl_context": s.ssl_context, "server_hostname": "  "}),
    ("empty server_hostname, default context", lambda s: {"server_hostname": ""}),
    ("check_hostname off", lambda s: {"ssl_context": unchecked_hostnames(s)}),
    ("CERT_NONE", lambda s: {"ssl_context": unverified()}),
    ("CERT_OPTIONAL", lambda s: {"ssl_context": optional_verification(s)}),
]


@pytest.mark.parametrize("settings", [s for _, s in INSECURE_SETTINGS], ids=[n for n, _ in INSECURE_SETTINGS])
async def test_settings_that_switch_verification_off_are_refused(
    raw_server: RawServer, settings: Callable[[RawServer], dict[str, Any]]
) -> None:
    options = settings(raw_server)
    with pytest.raises(ValueError, match="insecure_tls"):
        AsyncClient(raw_server.host, raw_server.port, **options)
    with pytest.raises(ValueError, match="insecure_tls"):
        AsyncClient.demo(**options)
    # Allowed when asked for explicitly (nothing is dialled here).
    AsyncClient(raw_server.host, raw_server.port, insecure_tls=True, **options)


CONNECTABLE_INSECURE: list[tuple[str, Callable[[RawServer], dict[str, Any]]]] = [
    ("check_hostname off", lambda s: {"ssl_context": unchecked_hostnames(s)}),
    ("CERT_NONE", lambda s: {"ssl_context": unverified()}),
    ("empty server_hostname", lambda s: {"ssl_context": unchecked_hostnames(s), "server_hostname": ""}),
]


@pytest.mark.raw_server(cert_hosts=("elsewhere.example",))
@pytest.mark.parametrize(
    "settings", [s for _, s in CONNECTABLE_INSECURE], ids=[n for n, _ in CONNECTABLE_INSECURE]
)
async def test_insecure_tls_connects_to_a_certificate_for_another_host(
    raw_server: RawServer, settings: Callable[[RawServer], dict[str, Any]]
) -> None:
    async with Responder(raw_server, None) as responder:
        client = AsyncClient(
            raw_server.host, raw_server.port, insecure_tls=True, **FAST, **settings(raw_server)
        )
        async with client:
            version = await client.send_version_req()
            assert version.version == "raw-server"
            assert len(responder.peers) == 1


async def test_a_certificate_from_an_unknown_ca_is_not_trusted(raw_server: RawServer, tmp_path: Path) -> None:
    other_ca = make_certificates(tmp_path / "other").client_context()
    for context in (None, other_ca):  # the system trust store, and a CA that signed something else
        client = AsyncClient(raw_server.host, raw_server.port, ssl_context=context, **FAST)
        with pytest.raises(TLSVerificationError) as caught:
            async with asyncio.timeout(GUARD):
                await client.connect()
        error = caught.value
        assert isinstance(error, ConnectionClosedError)
        assert "not trusted" in str(error)
        assert not error.may_have_been_sent
        assert error.verify_message is not None
        assert "mismatch" not in error.verify_message.lower()
        assert client.is_closed
    assert raw_server.peers == []  # no handshake completed: nothing was sent


@pytest.mark.raw_server(cert_hosts=("elsewhere.example",))
@pytest.mark.parametrize("server_hostname", [None, "localhost"], ids=["by address", "by name"])
async def test_a_certificate_for_another_host_is_not_trusted(
    raw_server: RawServer, server_hostname: str | None
) -> None:
    # The CA is trusted; only the name is wrong. No insecure flag: the default checks it.
    client = AsyncClient(
        raw_server.host,
        raw_server.port,
        ssl_context=raw_server.ssl_context,
        server_hostname=server_hostname,
        **FAST,
    )
    with pytest.raises(TLSVerificationError) as caught:
        async with asyncio.timeout(GUARD):
            await client.connect()
    error = caught.value
    assert isinstance(error, ConnectionClosedError)
    assert "not trusted" in str(error)
    assert error.verify_message is not None
    assert "mismatch" in error.verify_message.lower()
    assert "mismatch" in str(error).lower()
    assert client.is_closed
    assert raw_server.peers == []
