"""Recording what a client and a server said to each other: a versioned, redacted, append-only file.

::

    recorder = Recorder("session.ctrec")
    async with AsyncClient.demo(recorder=recorder, client_id=..., client_secret=...) as client:
        ...                                   # every frame in and out lands in session.ctrec

    for entry in read_recording("session.ctrec"):
        ...                                   # RecordedFrame / Boundary entries, in order

File format (``FORMAT`` ``"ctrader-typed-recording"``, ``VERSION`` 1): UTF-8 JSON lines. The first
line of every file (a *segment*) is a header object::

    {"format": "ctrader-typed-recording", "version": 1, "segment": 0, "created_ms": ...,
     "library": "0.1.0", "schema": {"OpenApiMessages.proto": "<sha256>", ...},
     "redaction": "placeholders"}

``schema`` is the sha-256 of each ``.proto`` file of the schema the library was generated from
(as ``python -m codegen`` records them in ``_generated/manifest.json``). Every following line is
one entry, ``t`` being seconds since the recorder started (a monotonic clock) and ``c`` the
connection number (1, 2, ... : each link the client opens, reconnects included):

* ``{"k": "open", "t": .., "c": 1}`` - a link was opened;
* ``{"k": "out", "t": .., "c": 1, "pt": 2100, "f": "<base64>"}`` - a frame the client sent;
* ``{"k": "in", "t": .., "c": 1, "pt": 2101, "f": "<base64>"}`` - a frame the client received;
* ``{"k": "close", "t": .., "c": 1, "error": "..."}`` - the link ended (``error`` absent when
  the client closed it deliberately);
* ``{"k": "connect_failed", "t": .., "c": 2, "error": "..."}`` - a link could not be opened;
* ``{"k": "next", "t": .., "file": "session.1.ctrec"}`` - the recording continues in that
  segment (rotation by size);
* ``{"k": "end", "t": ..}`` - the recorder was closed (entries follow if it is used again).

``f`` is the serialized ``ProtoMessage`` envelope (without the 4-byte length prefix), base64.
Each line is written with one ``write`` and flushed, so a reader of a file that is still growing
sees whole lines plus, at worst, an incomplete last one, which ``read_recording`` leaves out.
The recorder holds nothing but the open file and the redaction table: memory stays bounded
however long it runs. With ``max_bytes``, a segment that reaches that size is closed and the
next one opened (``session.ctrec``, ``session.1.ctrec``, ``session.2.ctrec``, ...), each
beginning with its own header; ``max_segments`` deletes the oldest beyond that many.

Redaction happens before anything is written: the client secret, access tokens and refresh
tokens - the ``clientSecret``, ``accessToken`` and ``refreshToken`` fields of the application
auth, account auth, account list, profile and refresh-token requests and answers - are
replaced by placeholders (``redacted-access_token-1``); the same secret always gets the same
placeholder within one recording, so a replay still sees which requests used which token.
Every other text in a frame (error descriptions, disconnect reasons, the ``clientMsgId``) is
scrubbed of every secret seen so far (literal, URL- or JSON-escaped). A frame that still holds
a secret's bytes after that (in a field the schema does not know) is written without its
payload (``"payload_dropped": true``). Outgoing heartbeats written by the link's own keep-alive
timer do not pass through the link's ``send`` and are not recorded.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from importlib import resources
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _package_version
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtobufMessage

from ctrader_typed._base import ProtoWrapper
from ctrader_typed._generated.OpenApiCommonMessages_pb2 import ProtoMessage as Envelope
from ctrader_typed._generated.registry import PAYLOAD_TYPES
from ctrader_typed._secrets import _forms, get_logger, scrub
from ctrader_typed.errors import CTraderError

__all__ = [
    "FORMAT",
    "SECRET_FIELDS",
    "VERSION",
    "Boundary",
    "Direction",
    "RecordedFrame",
    "Recorder",
    "RecordingFormatError",
    "RecordingHeader",
    "Redactor",
    "read_header",
    "read_recording",
    "schema_fingerprint",
    "segment_paths",
]

FORMAT: Final = "ctrader-typed-recording"
VERSION: Final = 1
SECRET_FIELDS: Final[dict[str, str]] = {
    "clientSecret": "client_secret",
    "accessToken": "access_token",
    "refreshToken": "refresh_token",
}
"""Field name -> the kind of secret it carries (wherever it appears in the schema)."""

Direction = Literal["in", "out"]
logger = get_logger("ctrader_typed.recording")
_MIN_SECRET: Final = 8


class RecordingFormatError(CTraderError, ValueError):
    """A file is not a recording this library can read (wrong format, newer version, a bad line)."""


def _library_version() -> str:
    try:
        return _package_version("ctrader-typed")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def schema_fingerprint() -> dict[str, str]:
    """The sha-256 of each ``.proto`` file the library was generated from (codegen's manifest)."""
    text = resources.files("ctrader_typed._generated").joinpath("manifest.json").read_text("utf-8")
    inputs: dict[str, str] = json.loads(text)["inputs"]
    return {Path(name).name: digest for name, digest in inputs.items() if name.endswith(".proto")}


# -- redaction ---------------------------------------------------------------------------------


class Redactor:
    """Replaces secrets in envelopes by stable placeholders (one table per recording)."""

    def __init__(self, secrets: Iterable[tuple[str, str]] = ()) -> None:
        self._placeholders: dict[str, str] = {}
        self._counts: dict[str, int] = {}
        self._pattern: re.Pattern[str] | None = None
        self._form_owner: dict[str, str] = {}
        self._needles: list[bytes] = []
        for kind, secret in secrets:
            self.learn(kind, secret)

    def __repr__(self) -> str:
        return f"<Redactor: {len(self._placeholders)} secrets>"

    @property
    def placeholders(self) -> list[str]:
        """The placeholders handed out so far, in order."""
        return list(self._placeholders.values())

    def placeholder(self, secret: str) -> str | None:
        """The placeholder standing for ``secret`` (``None`` if it was never seen)."""
        return self._placeholders.get(secret)

    def learn(self, kind: str, secret: str) -> str:
        """Hold ``secret`` (of ``kind``: ``access_token`` ...); return its placeholder."""
        known = self._placeholders.get(secret)
        if known is not None:
            return known
        if secret.startswith("redacted-") or len(secret) < _MIN_SECRET:
            return secret  # already a placeholder, or too short to be a credential
        number = self._counts[kind] = self._counts.get(kind, 0) + 1
        placeholder = self._placeholders[secret] = f"redacted-{kind}-{number}"
        for form in _forms(secret) | {secret}:
            self._form_owner[form] = secret
        for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
            self._needles.append(secret.encode(encoding))
        self._pattern = None
        return placeholder

    def _text(self, text: str) -> str:
        if not self._form_owner or not text:
            return text
        pattern = self._pattern
        if pattern is None:
            forms = sorted(self._form_owner, key=len, reverse=True)
            pattern = self._pattern = re.compile("|".join(map(re.escape, forms)))
        owners = self._form_owner
        placeholders = self._placeholders
        return pattern.sub(lambda m: placeholders[owners[m.group(0)]], text)

    def leaks(self, data: bytes) -> bool:
        """True if ``data`` holds any held secret's bytes (UTF-8 or UTF-16)."""
        return any(needle in data for needle in self._needles)

    def envelope(self, data: bytes) -> tuple[bytes, bool]:
        """``data`` (a serialized envelope) with its secrets replaced; and whether the payload had
        to be dropped because a secret could not be located in it."""
        try:
            envelope = Envelope.FromString(data)
        except DecodeError:
            return b"", True
        changed = False
        wrapper = PAYLOAD_TYPES.get(envelope.payloadType)
        if wrapper is not None and issubclass(wrapper, ProtoWrapper) and envelope.payload:
            try:
                message = wrapper.PROTO.FromString(envelope.payload)
            except DecodeError:
                message = None
            if message is not None and self._message(message):
                envelope.payload = message.SerializePartialToString()
                changed = True
        if envelope.HasField("clientMsgId"):
            clean = self._text(envelope.clientMsgId)
            if clean != envelope.clientMsgId:
                envelope.clientMsgId = clean
                changed = True
        out = envelope.SerializeToString() if changed else data
        if self._needles and self.leaks(out):
            envelope.ClearField("payload")
            envelope.ClearField("clientMsgId")
            return envelope.SerializeToString(), True
        return out, False

    def _message(self, message: ProtobufMessage) -> bool:
        """Redact ``message`` in place (learning the secrets of its secret fields first)."""
        for field, value in message.ListFields():
            kind = SECRET_FIELDS.get(field.name)
            if kind is not None and field.type == FieldDescriptor.TYPE_STRING and isinstance(value, str):
                self.learn(kind, value)
        changed = False
        for field, value in message.ListFields():
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                items = value if _repeated(field) else [value]
                for item in items:
                    changed |= self._message(item)
            elif field.type == FieldDescriptor.TYPE_STRING:
                if _repeated(field):
                    cleaned = [self._clean(field.name, v) for v in value]
                    if cleaned != list(value):
                        del value[:]
                        value.extend(cleaned)
                        changed = True
                else:
                    clean = self._clean(field.name, value)
                    if clean != value:
                        setattr(message, field.name, clean)
                        changed = True
        return changed

    def _clean(self, name: str, value: str) -> str:
        kind = SECRET_FIELDS.get(name)
        if kind is not None:
            return self.learn(kind, value)
        return self._text(value)


def _repeated(field: FieldDescriptor) -> bool:
    flag = getattr(field, "is_repeated", None)  # protobuf 6+; older releases only have the label
    if flag is not None:
        return bool(flag)
    return bool(getattr(field, "label", 0) == FieldDescriptor.LABEL_REPEATED)


# -- entries -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class RecordingHeader:
    """The first line of a segment."""

    version: int
    segment: int
    created_ms: int
    library: str
    schema: dict[str, str]


@dataclasses.dataclass(frozen=True, slots=True)
class RecordedFrame:
    """One frame: ``direction`` ``"out"`` (the client sent it) or ``"in"`` (it received it)."""

    t: float
    connection: int
    direction: Direction
    payload_type: int
    envelope: bytes
    payload_dropped: bool = False

    def decode(self) -> Envelope:
        """The ``ProtoMessage`` envelope."""
        return Envelope.FromString(self.envelope)

    @property
    def frame(self) -> bytes:
        """The frame as it travels (length prefix included)."""
        return len(self.envelope).to_bytes(4, "big") + self.envelope


BoundaryKind = Literal["open", "close", "connect_failed", "end"]


@dataclasses.dataclass(frozen=True, slots=True)
class Boundary:
    """A link opened, ended or failed to open; or the recording ended (``connection`` 0)."""

    t: float
    connection: int
    kind: BoundaryKind
    error: str | None = None


Entry = RecordedFrame | Boundary


# -- the recorder ------------------------------------------------------------------------------


class Recorder:
    """Writes every frame a client's links carry to a recording file (see the module docstring).

    Args:
        path: The first segment's file; it is created (with its directory) on first use and
            must not exist yet unless ``overwrite``.
        max_bytes: Start a new segment once a segment reaches this size (``None``: never).
        max_segments: Keep at most this many segments, deleting the oldest (``None``: all).
        secrets: Secrets known in advance, as ``(kind, secret)`` pairs; every secret seen in a
            secret field on the wire is learned as well.
        overwrite: Replace an existing file at ``path``.

    Raises:
        ValueError: An option is out of range.
        FileExistsError: ``path`` exists and ``overwrite`` is false.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int | None = None,
        max_segments: int | None = None,
        secrets: Iterable[tuple[str, str]] = (),
        overwrite: bool = False,
    ) -> None:
        if max_bytes is not None and max_bytes < 1024:
            raise ValueError("max_bytes must be at least 1024 (or None)")
        if max_segments is not None and max_segments < 1:
            raise ValueError("max_segments must be at least 1 (or None)")
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path} exists; pass overwrite=True to replace it")
        self.max_bytes = max_bytes
        self.max_segments = max_segments
        self.redactor = Redactor(secrets)
        self._overwrite = overwrite
        self._file: BinaryIO | None = None
        self._segment = -1
        self._size = 0
        self._start = time.monotonic()
        self._connections = 0
        self.frames_written = 0
        self.error: OSError | None = None
        """Why the recorder stopped writing (a full disk ...): it then ignores every entry, so the
        client it records goes on unharmed; ``None`` while all is well."""
        self.segments: list[Path] = []
        """Paths of the segments written so far (deleted ones left out)."""

    def __repr__(self) -> str:
        state = "closed" if self._file is None else "open"
        return f"<Recorder {self.path} {state} frames={self.frames_written}>"

    @property
    def closed(self) -> bool:
        """True while the file is not open (before the first entry, and after ``close``)."""
        return self._file is None

    # -- writing ----------------------------------------------------------------------------------

    def _segment_path(self, n: int) -> Path:
        if n == 0:
            return self.path
        return self.path.with_name(f"{self.path.stem}.{n}{self.path.suffix}")

    def _open_segment(self) -> None:
        self._segment += 1
        path = self._segment_path(self._segment)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and self._segment > 0 and not self._overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
        self._file = path.open("wb")
        self._size = 0
        self.segments.append(path)
        header = {
            "format": FORMAT,
            "version": VERSION,
            "segment": self._segment,
            "created_ms": time.time_ns() // 1_000_000,
            "library": _library_version(),
            "schema": schema_fingerprint(),
            "redaction": "placeholders",
        }
        self._write_line(header)
        if self.max_segments is not None:
            while len(self.segments) > self.max_segments:
                self.segments.pop(0).unlink(missing_ok=True)

    def _write_line(self, record: dict[str, object]) -> None:
        file = self._file
        assert file is not None
        line = (json.dumps(record, separators=(",", ":"), ensure_ascii=True) + "\n").encode("ascii")
        file.write(line)
        file.flush()
        self._size += len(line)

    def _now(self) -> float:
        return round(time.monotonic() - self._start, 6)

    def _write(self, record: dict[str, object]) -> None:
        if self.error is not None:
            return
        try:
            self._append(record)
        except OSError as exc:  # a full disk must not break the client that records
            self.error = exc
            logger.error("recording to %s stopped: %s", self.path, exc)
            file, self._file = self._file, None
            if file is not None:
                with contextlib.suppress(OSError):
                    file.close()

    def _append(self, record: dict[str, object]) -> None:
        if self._file is None:
            if self._segment < 0:
                self._start = time.monotonic()
                record["t"] = 0.0
                self._open_segment()
            elif self.segments:  # closed before: the recording goes on at the end of the last segment
                self._file = self.segments[-1].open("ab")
                self._size = self.segments[-1].stat().st_size
            else:
                self._open_segment()
        self._write_line(record)
        if self.max_bytes is not None and self._size >= self.max_bytes:
            following = self._segment_path(self._segment + 1)
            self._write_line({"k": "next", "t": self._now(), "file": following.name})
            if self._file is not None:
                self._file.close()
            self._open_segment()

    def _error_text(self, error: BaseException | None) -> str | None:
        if error is None:
            return None
        return self.redactor._text(scrub(str(error)))

    def record_frame(self, connection: int, direction: Direction, envelope: bytes) -> None:
        """Write one frame (a serialized envelope), redacted."""
        clean, dropped = self.redactor.envelope(envelope)
        try:
            payload_type = Envelope.FromString(clean).payloadType
        except DecodeError:
            payload_type = 0
        record: dict[str, object] = {
            "k": direction,
            "t": self._now(),
            "c": connection,
            "pt": payload_type,
            "f": base64.b64encode(clean).decode("ascii"),
        }
        if dropped:
            record["payload_dropped"] = True
        self._write(record)
        if self.error is None:
            self.frames_written += 1

    def record_boundary(
        self, connection: int, kind: BoundaryKind, error: BaseException | None = None
    ) -> None:
        """Write a connection boundary (``open``, ``close``, ``connect_failed``)."""
        record: dict[str, object] = {"k": kind, "t": self._now(), "c": connection}
        text = self._error_text(error)
        if text is not None:
            record["error"] = text
        self._write(record)

    def close(self) -> None:
        """Write the ``end`` entry and close the file. Idempotent; a later entry (a client that
        reuses the recorder) reopens the last segment and appends to it."""
        file = self._file
        if file is not None:
            try:
                self._write_line({"k": "end", "t": self._now()})
            except OSError as exc:
                self.error = exc
            finally:
                self._file = None
                with contextlib.suppress(OSError):
                    file.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def next_connection(self) -> int:
        """The number of the next link (1, 2, ...): what its entries carry as ``c``."""
        self._connections += 1
        return self._connections


# -- reading -----------------------------------------------------------------------------------


def _parse_header(line: bytes, path: Path) -> RecordingHeader:
    try:
        header = json.loads(line)
    except ValueError as exc:
        raise RecordingFormatError(f"{path}: the first line is not JSON ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise RecordingFormatError(f"{path} is not a ctrader-typed recording")
    version = header.get("version")
    if not isinstance(version, int) or version > VERSION or version < 1:
        raise RecordingFormatError(
            f"{path} is a recording of format version {version!r}; this library reads up to {VERSION}"
        )
    return RecordingHeader(
        version=version,
        segment=int(header.get("segment", 0)),
        created_ms=int(header.get("created_ms", 0)),
        library=str(header.get("library", "")),
        schema=dict(header.get("schema", {})),
    )


def read_header(path: str | os.PathLike[str]) -> RecordingHeader:
    """The header of the segment at ``path``.

    Raises:
        RecordingFormatError: The file is not a recording, or of a newer format version.
        FileNotFoundError: No such file.
    """
    target = Path(path)
    with target.open("rb") as file:
        return _parse_header(file.readline(), target)


def _entry(record: dict[str, Any], path: Path, number: int) -> Entry | str | None:
    kind = record.get("k")
    t = float(record.get("t", 0.0))
    if kind in ("in", "out"):
        data = base64.b64decode(record["f"], validate=True)
        return RecordedFrame(
            t, int(record["c"]), kind, int(record.get("pt", 0)), data, bool(record.get("payload_dropped"))
        )
    if kind in ("open", "close", "connect_failed", "end"):
        error = record.get("error")
        return Boundary(t, int(record.get("c", 0)), kind, None if error is None else str(error))
    if kind == "next":
        return str(record["file"])
    return None  # an entry kind of a later minor revision: skipped


def read_recording(path: str | os.PathLike[str], *, follow_segments: bool = True) -> Iterator[Entry]:
    """The entries of a recording, in order, read lazily (a file still being written included: an
    incomplete last line is left out). Segments are followed unless ``follow_segments`` is false.

    Raises:
        RecordingFormatError: Not a recording, a newer format version, or a malformed line.
        FileNotFoundError: No such file.
    """
    current: Path | None = Path(path)
    while current is not None:
        following: Path | None = None
        with current.open("rb") as file:
            _parse_header(file.readline(), current)
            for number, line in enumerate(file, start=2):
                if not line.endswith(b"\n"):
                    break  # still being written
                try:
                    entry = _entry(json.loads(line), current, number)
                except (ValueError, KeyError, TypeError, binascii.Error) as exc:
                    raise RecordingFormatError(f"{current}, line {number}: malformed entry ({exc})") from exc
                if isinstance(entry, str):
                    following = current.with_name(entry) if follow_segments else None
                    break
                if entry is not None:
                    yield entry
        current = following if following is not None and following.exists() else None


def segment_paths(path: str | os.PathLike[str]) -> list[Path]:
    """The segment files of the recording starting at ``path``, in order (those that exist)."""
    first = Path(path)
    out = [first] if first.exists() else []
    n = 1
    while True:
        candidate = first.with_name(f"{first.stem}.{n}{first.suffix}")
        if not candidate.exists():
            return out
        out.append(candidate)
        n += 1
