"""Serve a recording back to a client: a TLS server that plays the server's side of a recorded session.

::

    async with ReplayServer("session.ctrec") as replay:
        async with AsyncClient(**replay.client_options()) as client:
            await my_bot(client, replay.accounts[0])        # the same code that made the recording
        await replay.finished()                              # ReplayDivergence if the bot did otherwise

Any client can connect (ours or another SDK): the server trusts nothing but the recording. The
n-th connection accepted plays the n-th connection of the recording, so a recorded reconnect
is replayed as one: when the recorded link was lost (its ``close`` entry carries an error),
the server drops the connection at the same point, and the client's reconnect is served by
the next recorded connection.

Matching
    The recording is walked in order. A frame the client received (``in``) is sent - its
    ``clientMsgId`` rewritten to the one the live client used for the matching request - once
    every request recorded before it has been matched. A request the client sent (``out``) is
    waited for: an incoming request matches a recorded one of the same payload type whose
    payload is equal once secrets (``clientSecret``, ``accessToken``, ``refreshToken``: the
    recording holds placeholders) and the ``ignore_fields`` are cleared; ``clientMsgId`` never
    counts. Requests may arrive in another order than recorded within ``lookahead`` entries
    (concurrent requests). Heartbeats are never matched nor waited for. An answer that echoes
    an ignored field of its request (``GetTrendbarsRes.timestamp`` is the request's
    ``toTimestamp``) carries the live request's value instead of the recorded one.

Divergences (``Divergence``, and ``ReplayDivergence`` raised by ``finished``/``check``)
    * ``unexpected_request``: a request the recording does not have next; the client gets a
      ``ProtoOAErrorRes`` ``REPLAY_DIVERGENCE`` answering it (our client raises ``APIError``),
      and the replay goes on waiting for what was recorded;
    * ``stalled``: the recording waits for a request that does not come within ``stall_timeout``
      seconds; the connection is closed (the client sees it lost, never a hang);
    * ``missing_requests``: the client closed while recorded requests were still to come (not
      with ``partial=True``, for a test that plays only the start of a recording);
    * ``unexpected_connection``: more connections than the recording has (closed at once).

Recording any client
    ``RecordingProxy`` records a client that has no recorder of its own (another SDK): a TLS
    server (its own throwaway CA) that forwards every connection to the real server and writes
    what passes, in both directions, with a ``Recorder`` - redacted, in the same format.

Limits
    The recording is read into memory when the server is made (a test-sized recording; split a
    long one with ``max_bytes`` and replay a segment). Each recorded connection is played once,
    so one server serves one run of the client. A frame recorded without its payload
    (``payload_dropped``: a secret could not be located in it) is replayed as recorded.

Pace
    ``pace=None`` (the default) sends as fast as the client reads; ``pace=1.0`` keeps the
    recorded delays between a request and what followed it; ``pace=10.0`` plays ten times
    faster, ``0.5`` at half speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import ssl
import tempfile
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, Self, TypedDict

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtobufMessage

from ctrader_typed._base import ProtoWrapper
from ctrader_typed._generated import OpenApiMessages_pb2 as pb
from ctrader_typed._generated import OpenApiModelMessages_pb2 as model_pb
from ctrader_typed._generated.OpenApiCommonMessages_pb2 import ProtoMessage as Envelope
from ctrader_typed._generated.registry import PAYLOAD_TYPES
from ctrader_typed.errors import CTraderError
from ctrader_typed.recording import SECRET_FIELDS, Boundary, Entry, RecordedFrame, Recorder, read_recording
from ctrader_typed.testing._certs import make_certificates
from ctrader_typed.testing._wire import frame as encode_frame

__all__ = [
    "DIVERGENCE_ERROR_CODE",
    "Divergence",
    "DivergenceKind",
    "RecordingProxy",
    "ReplayClientOptions",
    "ReplayDivergence",
    "ReplayServer",
]

DIVERGENCE_ERROR_CODE: Final = "REPLAY_DIVERGENCE"
"""The ``errorCode`` of the ``ProtoOAErrorRes`` a client gets for a request the recording does not have."""
_MAX_FRAME: Final = 16 * 1024 * 1024
HEARTBEAT_PAYLOAD_TYPE: Final = 51

DivergenceKind = Literal["unexpected_request", "stalled", "missing_requests", "unexpected_connection"]


@dataclasses.dataclass(frozen=True, slots=True)
class Divergence:
    """Where the live client parted from the recording.

    Attributes:
        kind: What happened (see the module docstring).
        connection: The recorded connection being played (1, 2, ...).
        expected: The recorded request that was due (a one-line summary), if any.
        received: The request the client sent instead (a one-line summary), if any.
    """

    kind: DivergenceKind
    connection: int
    expected: str | None
    received: str | None

    def __str__(self) -> str:
        parts = [f"{self.kind} on connection {self.connection}"]
        if self.received is not None:
            parts.append(f"received {self.received}")
        if self.expected is not None:
            parts.append(f"the recording expected {self.expected}")
        return ": ".join(parts[:1]) + (": " + "; ".join(parts[1:]) if len(parts) > 1 else "")


class ReplayDivergence(CTraderError, AssertionError):
    """The client did not do what the recording says (``divergences`` lists every difference)."""

    def __init__(self, divergences: Sequence[Divergence]) -> None:
        self.divergences = tuple(divergences)
        lines = "\n  ".join(str(d) for d in self.divergences)
        super().__init__(f"the replay diverged from the recording ({len(self.divergences)}):\n  {lines}")


def _describe(payload_type: int, payload: bytes) -> str:
    """``Name(field=value, ...)`` of a payload, secrets hidden, cut to a readable length."""
    wrapper = PAYLOAD_TYPES.get(payload_type)
    if wrapper is None or not issubclass(wrapper, ProtoWrapper):
        return f"payload type {payload_type}"
    name = wrapper.PROTO.DESCRIPTOR.name
    try:
        message = wrapper.PROTO.FromString(payload)
    except DecodeError:
        return f"{name}(<undecodable>)"
    fields = []
    for field, value in message.ListFields():
        if field.name == "payloadType":
            continue
        shown = "<secret>" if field.name in SECRET_FIELDS else str(value).replace("\n", " ").strip()
        fields.append(f"{field.name}={shown}")
    text = f"{name}({', '.join(fields)})"
    return text if len(text) <= 300 else text[:297] + "..."


def _normalized(payload_type: int, payload: bytes, ignore: Collection[str]) -> bytes:
    """The payload with secrets and ignored fields cleared, re-serialized deterministically."""
    wrapper = PAYLOAD_TYPES.get(payload_type)
    if wrapper is None or not issubclass(wrapper, ProtoWrapper):
        return payload
    try:
        message = wrapper.PROTO.FromString(payload)
    except DecodeError:
        return payload
    _clear(message, ignore)
    return message.SerializePartialToString(deterministic=True)


def _clear(message: ProtobufMessage, ignore: Collection[str]) -> None:
    for field, value in message.ListFields():
        if field.name in SECRET_FIELDS or field.name in ignore:
            message.ClearField(field.name)
        elif field.message_type is not None:
            items = value if field.is_repeated else [value]
            for item in items:
                _clear(item, ignore)


def _scalars(envelope: Envelope, names: Collection[str]) -> dict[str, object]:
    wrapper = PAYLOAD_TYPES.get(envelope.payloadType)
    if wrapper is None or not issubclass(wrapper, ProtoWrapper):
        return {}
    try:
        message = wrapper.PROTO.FromString(envelope.payload)
    except DecodeError:
        return {}
    return {
        field.name: value
        for field, value in message.ListFields()
        if field.name in names and field.message_type is None and not field.is_repeated
    }


def _ignored_values(recorded: Envelope, live: Envelope, ignore: Collection[str]) -> dict[object, object]:
    """{recorded value: live value} of the ignored top-level fields that differ."""
    before, after = _scalars(recorded, ignore), _scalars(live, ignore)
    return {before[name]: after[name] for name in before.keys() & after.keys() if before[name] != after[name]}


def _echo(payload_type: int, payload: bytes, echoes: dict[object, object]) -> bytes:
    """``payload`` with each top-level scalar field that holds a recorded value of an ignored
    request field set to the live request's value (an answer that echoes the request)."""
    wrapper = PAYLOAD_TYPES.get(payload_type)
    if wrapper is None or not issubclass(wrapper, ProtoWrapper):
        return payload
    try:
        message = wrapper.PROTO.FromString(payload)
    except DecodeError:
        return payload
    changed = False
    for field, value in message.ListFields():
        if field.message_type is None and not field.is_repeated and value in echoes:
            live = echoes[value]
            if type(live) is type(value):
                setattr(message, field.name, live)
                changed = True
    return message.SerializePartialToString() if changed else payload


@dataclasses.dataclass(slots=True)
class _Step:
    frame: RecordedFrame
    key: tuple[int, bytes] | None = None
    """(payload type, normalized payload) of a request; ``None`` for a frame to send."""
    matched: bool = False
    client_msg_id: str | None = None
    """The recorded clientMsgId of a request."""


@dataclasses.dataclass(slots=True)
class _Script:
    number: int
    opened_at: float
    steps: list[_Step]
    lost: str | None
    """The error the recorded link ended with (``None``: the client closed it, or it did not end)."""


def _scripts(entries: Sequence[Entry], ignore: Collection[str]) -> list[_Script]:
    by_number: dict[int, _Script] = {}
    order: list[_Script] = []
    for entry in entries:
        if isinstance(entry, Boundary):
            if entry.kind == "open":
                script = by_number[entry.connection] = _Script(entry.connection, entry.t, [], None)
                order.append(script)
            elif entry.kind == "close" and entry.connection in by_number:
                by_number[entry.connection].lost = entry.error
            continue
        script_of = by_number.get(entry.connection)
        if script_of is None or entry.payload_type == HEARTBEAT_PAYLOAD_TYPE:
            continue
        step = _Step(entry)
        if entry.direction == "out":
            envelope = entry.decode()
            step.key = (envelope.payloadType, _normalized(envelope.payloadType, envelope.payload, ignore))
            step.client_msg_id = envelope.clientMsgId if envelope.HasField("clientMsgId") else None
        script_of.steps.append(step)
    return order


class ReplayClientOptions(TypedDict, total=False):
    """``AsyncClient`` keywords that reach a replay server (``ReplayServer.client_options``)."""

    host: str
    port: int
    ssl_context: ssl.SSLContext
    reconnect_initial_delay: float
    reconnect_max_delay: float
    client_id: str
    client_secret: str


class ReplayServer:
    """A TLS server on ``host``:``port`` that plays a recording's server side (see the module docstring).

    Args:
        recording: Path of the recording's first segment.
        pace: ``None``: as fast as the client reads; else the speed factor over the recorded
            delays (1.0: as recorded).
        ignore_fields: Request fields left out of matching (e.g. ``{"fromTimestamp",
            "toTimestamp"}`` for a bot that asks for history up to "now").
        lookahead: How many recorded entries ahead a request may be matched (reordering).
        stall_timeout: Seconds the server waits for a recorded request before giving up on
            the connection (a ``stalled`` divergence).
        partial: The client may stop early: a connection it closes while recorded requests
            are still to come counts as played (no ``missing_requests`` divergence).
        host, port: Where to listen (``port=0``: an ephemeral port).

    Raises:
        RecordingFormatError: The file is not a readable recording.
        ValueError: An option is out of range, or the recording holds no connection.
    """

    def __init__(
        self,
        recording: str | os.PathLike[str],
        *,
        pace: float | None = None,
        ignore_fields: Collection[str] = (),
        lookahead: int = 64,
        stall_timeout: float = 10.0,
        partial: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if pace is not None and pace <= 0:
            raise ValueError("pace must be positive (or None: as fast as the client reads)")
        if lookahead < 1:
            raise ValueError("lookahead must be at least 1")
        if stall_timeout <= 0:
            raise ValueError("stall_timeout must be positive")
        self.path = Path(recording)
        self.pace = pace
        self.ignore_fields = frozenset(ignore_fields)
        self.lookahead = lookahead
        self.stall_timeout = stall_timeout
        self.partial = partial
        self.host = host
        self._port = port
        self.port = 0
        self._scripts = _scripts(list(read_recording(self.path)), self.ignore_fields)
        if not self._scripts:
            raise ValueError(f"{self.path} holds no connection to replay")
        self.divergences: list[Divergence] = []
        self.frames_sent = 0
        self.requests_matched = 0
        self.connections_accepted = 0
        self._reported = 0
        self._server: asyncio.Server | None = None
        self._tmpdir: Path | None = None
        self._ssl_client: ssl.SSLContext | None = None
        self.ca_file = Path()
        self._tasks: set[asyncio.Task[None]] = set()
        self._done: asyncio.Event | None = None
        self._finished_connections = 0

    def __repr__(self) -> str:
        state = f"{self.host}:{self.port}" if self._server is not None else "stopped"
        return f"<ReplayServer {self.path.name} {state} divergences={len(self.divergences)}>"

    # -- what the recording says ------------------------------------------------------------------

    def _first_request(self, payload_type: int) -> ProtobufMessage | None:
        for script in self._scripts:
            for step in script.steps:
                if step.key is not None and step.key[0] == payload_type:
                    wrapper = PAYLOAD_TYPES[payload_type]
                    return wrapper.PROTO.FromString(step.frame.decode().payload)
        return None

    @property
    def client_id(self) -> str | None:
        """The client id of the recorded application auth (to authenticate the same way)."""
        request = self._first_request(model_pb.PROTO_OA_APPLICATION_AUTH_REQ)
        return request.clientId if isinstance(request, pb.ProtoOAApplicationAuthReq) else None

    @property
    def access_token(self) -> str | None:
        """The access token of the recording's first account auth: its placeholder
        (``redacted-access_token-1``), which a client may send back - the replay does not compare
        tokens, and recorded answers that echo a token echo that placeholder."""
        request = self._first_request(model_pb.PROTO_OA_ACCOUNT_AUTH_REQ)
        return request.accessToken if isinstance(request, pb.ProtoOAAccountAuthReq) else None

    @property
    def accounts(self) -> list[int]:
        """The accounts the recording authorised, in order."""
        out: list[int] = []
        for script in self._scripts:
            for step in script.steps:
                if step.key is not None and step.key[0] == model_pb.PROTO_OA_ACCOUNT_AUTH_REQ:
                    request = pb.ProtoOAAccountAuthReq.FromString(step.frame.decode().payload)
                    if request.ctidTraderAccountId not in out:
                        out.append(request.ctidTraderAccountId)
        return out

    @property
    def connections(self) -> int:
        """How many connections the recording holds."""
        return len(self._scripts)

    def client_options(self) -> ReplayClientOptions:
        """Keywords for an ``AsyncClient`` of this server: ``AsyncClient(**replay.client_options())``
        connects to it trusting its CA, with quick reconnects and - if the recording authenticated
        an application - its client id (the secret is a placeholder: the replay never checks it)."""
        options: ReplayClientOptions = {
            "host": self.host,
            "port": self.port,
            "ssl_context": self.ssl_context,
            "reconnect_initial_delay": 0.01,
            "reconnect_max_delay": 0.1,
        }
        client_id = self.client_id
        if client_id is not None:
            options["client_id"] = client_id
            options["client_secret"] = "replayed-client-secret"
        return options

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """A client-side context that trusts the server's throwaway CA (host names checked)."""
        if self._ssl_client is None:
            raise RuntimeError("the replay server is not started")
        return self._ssl_client

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Make the throwaway CA and listen."""
        if self._server is not None:
            raise RuntimeError("the replay server is already running")
        self._tmpdir = Path(tempfile.mkdtemp(prefix="ctrader-replay-"))
        certificates = make_certificates(self._tmpdir)
        self.ca_file = certificates.ca_file
        self._ssl_client = certificates.client_context()
        self._done = asyncio.Event()
        self._server = await asyncio.start_server(
            self._accept, self.host, self._port, ssl=certificates.server_context(), ssl_handshake_timeout=10.0
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close every connection and the listener; delete the CA."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5.0)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)
            self._server = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def check(self) -> None:
        """Raise ``ReplayDivergence`` if the client diverged so far."""
        self._reported = len(self.divergences)
        if self.divergences:
            raise ReplayDivergence(self.divergences)

    async def finished(self, timeout: float = 30.0) -> None:
        """Wait until every recorded connection was played to its end, then ``check``.

        Raises:
            ReplayDivergence: The client diverged (at any time).
            TimeoutError: The recording was not played to its end in time (and did not diverge).
        """
        if self._done is None:
            raise RuntimeError("the replay server is not started")
        try:
            async with asyncio.timeout(timeout):
                await self._done.wait()
        except TimeoutError:
            self.check()
            raise TimeoutError(
                f"the replay of {self.path.name} did not finish within {timeout} s: "
                f"{self._finished_connections} of {len(self._scripts)} connections played"
            ) from None
        self.check()

    @property
    def unreported(self) -> list[Divergence]:
        """Divergences that neither ``check`` nor ``finished`` has raised yet."""
        return self.divergences[self._reported :]

    # -- serving ------------------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        index = self.connections_accepted
        self.connections_accepted += 1
        try:
            if index >= len(self._scripts):
                self.divergences.append(
                    Divergence("unexpected_connection", index + 1, None, "a new connection")
                )
                return
            await _Player(self, self._scripts[index], reader, writer).play()
            self._finished_connections += 1
            if self._finished_connections >= len(self._scripts) and self._done is not None:
                self._done.set()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2.0)


class _Stalled(Exception):
    """The client did not send the request the recording waits for."""


class _Player:
    """Plays one recorded connection on one accepted connection."""

    def __init__(
        self,
        server: ReplayServer,
        script: _Script,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.server = server
        self.script = script
        self.reader = reader
        self.writer = writer
        self.ids: dict[str, str] = {}
        """Recorded clientMsgId -> the live client's."""
        self.echoes: dict[str, dict[object, object]] = {}
        """Recorded clientMsgId -> {recorded value of an ignored field: the live request's value}."""
        self.incoming: asyncio.Queue[Envelope | None] = asyncio.Queue()
        self.anchor = (script.opened_at, time.monotonic())
        """(recorded t, real monotonic time) the pace is measured from."""

    async def play(self) -> None:
        reading = asyncio.get_running_loop().create_task(self._read())
        try:
            await self._play()
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reading

    async def _read(self) -> None:
        try:
            while True:
                header = await self.reader.readexactly(4)
                length = int.from_bytes(header, "big")
                if length > _MAX_FRAME:
                    break
                body = await self.reader.readexactly(length)
                try:
                    envelope = Envelope.FromString(body)
                except DecodeError:
                    break
                if envelope.payloadType != HEARTBEAT_PAYLOAD_TYPE:
                    self.incoming.put_nowait(envelope)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            self.incoming.put_nowait(None)

    def _diverge(self, kind: DivergenceKind, expected: _Step | None, received: Envelope | None) -> Divergence:
        divergence = Divergence(
            kind,
            self.script.number,
            None
            if expected is None
            else _describe(expected.frame.payload_type, expected.frame.decode().payload),
            None if received is None else _describe(received.payloadType, received.payload),
        )
        self.server.divergences.append(divergence)
        return divergence

    async def _play(self) -> None:
        steps = self.script.steps
        for position, step in enumerate(steps):
            if step.key is None:
                await self._send(step)
                continue
            while not step.matched:
                try:
                    envelope = await self._next_request(step)
                except _Stalled:
                    return
                if envelope is None:
                    if not self.server.partial:
                        missing = [s for s in steps[position:] if s.key is not None and not s.matched]
                        self._diverge("missing_requests", missing[0], None)
                    return
                self._match(envelope, position)
        if self.script.lost is not None:
            # The recorded link was lost here: so is this one, once what was recorded before is out
            # (closed, not aborted: an abort would throw away frames not yet written).
            await self.writer.drain()
            self.writer.close()
            return
        # The client closed the recorded link: wait for it to do so (more requests diverge).
        while True:
            envelope = await self.incoming.get()
            if envelope is None:
                return
            self._refuse(envelope, None)

    async def _next_request(self, step: _Step) -> Envelope | None:
        try:
            async with asyncio.timeout(self.server.stall_timeout):
                envelope = await self.incoming.get()
        except TimeoutError:
            self._diverge("stalled", step, None)
            raise _Stalled from None
        if envelope is None:
            self.incoming.put_nowait(None)
        return envelope

    def _match(self, envelope: Envelope, position: int) -> None:
        key = (
            envelope.payloadType,
            _normalized(envelope.payloadType, envelope.payload, self.server.ignore_fields),
        )
        window = self.script.steps[position : position + self.server.lookahead]
        for candidate in window:
            if candidate.key == key and not candidate.matched:
                candidate.matched = True
                self.server.requests_matched += 1
                if candidate.client_msg_id is not None and envelope.HasField("clientMsgId"):
                    self.ids[candidate.client_msg_id] = envelope.clientMsgId
                if candidate.client_msg_id is not None and self.server.ignore_fields:
                    echoes = _ignored_values(candidate.frame.decode(), envelope, self.server.ignore_fields)
                    if echoes:
                        self.echoes[candidate.client_msg_id] = echoes
                self.anchor = (candidate.frame.t, time.monotonic())
                return
        due = next((s for s in window if s.key is not None and not s.matched), None)
        self._refuse(envelope, due)

    def _refuse(self, envelope: Envelope, due: _Step | None) -> None:
        divergence = self._diverge("unexpected_request", due, envelope)
        error = pb.ProtoOAErrorRes(errorCode=DIVERGENCE_ERROR_CODE, description=str(divergence)[:1000])
        reply = Envelope(payloadType=model_pb.PROTO_OA_ERROR_RES, payload=error.SerializeToString())
        if envelope.HasField("clientMsgId"):
            reply.clientMsgId = envelope.clientMsgId
        self._write(encode_frame(reply.SerializeToString()))

    async def _send(self, step: _Step) -> None:
        pace = self.server.pace
        if pace is not None:
            recorded, real = self.anchor
            delay = (step.frame.t - recorded) / pace - (time.monotonic() - real)
            if delay > 0:
                await asyncio.sleep(delay)
        envelope = step.frame.decode()
        if envelope.HasField("clientMsgId"):
            echoes = self.echoes.get(envelope.clientMsgId)
            if echoes:
                envelope.payload = _echo(envelope.payloadType, envelope.payload, echoes)
            live = self.ids.get(envelope.clientMsgId)
            if live is not None:
                envelope.clientMsgId = live
        self._write(encode_frame(envelope.SerializeToString()))
        self.server.frames_sent += 1
        await self.writer.drain()

    def _write(self, frame: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(frame)


class RecordingProxy:
    """A TLS server that forwards each connection to ``upstream`` and records the frames both ways.

    The recording is what a ``Recorder`` on the client would have written: each connection a
    numbered link (``open``, ``out`` from the client, ``in`` from the server, ``close`` - with
    an error when the server ended it), secrets replaced by placeholders.

    Args:
        recorder: Where the frames go (the proxy closes it when it stops).
        upstream_host, upstream_port: The server to forward to.
        upstream_ssl: How to reach it (e.g. ``Simulator.ssl_context``; default: the system's
            trust store, host name checked).
        host, port: Where the proxy listens (``port=0``: an ephemeral port).
    """

    def __init__(
        self,
        recorder: Recorder,
        upstream_host: str,
        upstream_port: int,
        *,
        upstream_ssl: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.recorder = recorder
        self.upstream = (upstream_host, upstream_port)
        self._upstream_ssl = upstream_ssl if upstream_ssl is not None else ssl.create_default_context()
        self.host = host
        self._port = port
        self.port = 0
        self.ca_file = Path()
        self._server: asyncio.Server | None = None
        self._tmpdir: Path | None = None
        self._ssl_client: ssl.SSLContext | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"<RecordingProxy {self.host}:{self.port} -> {self.upstream[0]}:{self.upstream[1]}>"

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """A client-side context that trusts the proxy's throwaway CA."""
        if self._ssl_client is None:
            raise RuntimeError("the recording proxy is not started")
        return self._ssl_client

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the recording proxy is already running")
        self._tmpdir = Path(tempfile.mkdtemp(prefix="ctrader-proxy-"))
        certificates = make_certificates(self._tmpdir)
        self.ca_file = certificates.ca_file
        self._ssl_client = certificates.client_context()
        self._server = await asyncio.start_server(
            self._accept, self.host, self._port, ssl=certificates.server_context(), ssl_handshake_timeout=10.0
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and every forwarded connection; close the recorder."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5.0)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)
            self._server = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
        self.recorder.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        number = self.recorder.next_connection()
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            try:
                host, port = self.upstream
                upstream_reader, upstream_writer = await asyncio.open_connection(
                    host, port, ssl=self._upstream_ssl, server_hostname=host, ssl_handshake_timeout=10.0
                )
            except (OSError, TimeoutError) as exc:
                self.recorder.record_boundary(number, "connect_failed", exc)
                return
            self.recorder.record_boundary(number, "open")
            to_server = asyncio.ensure_future(self._pump(number, "out", reader, upstream_writer))
            to_client = asyncio.ensure_future(self._pump(number, "in", upstream_reader, writer))
            done, _ = await asyncio.wait({to_server, to_client}, return_when=asyncio.FIRST_COMPLETED)
            server_ended = to_client in done
            for pump in (to_server, to_client):
                pump.cancel()
            await asyncio.gather(to_server, to_client, return_exceptions=True)
            error = ConnectionError("the server closed the connection") if server_ended else None
            self.recorder.record_boundary(number, "close", error)
        finally:
            self._tasks.discard(task)
            for side in (writer, upstream_writer):
                if side is not None:
                    side.close()
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(side.wait_closed(), 2.0)

    async def _pump(
        self,
        number: int,
        direction: Literal["in", "out"],
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
    ) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            while True:
                header = await source.readexactly(4)
                body = await source.readexactly(int.from_bytes(header, "big"))
                self.recorder.record_frame(number, direction, body)
                sink.write(header + body)
                await sink.drain()
