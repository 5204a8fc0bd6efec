"""The client's side of recording: a link factory whose links write what they carry to a ``Recorder``.

Kept apart from ``ctrader_typed.recording`` (the file format, the recorder and the reader), which
the simulator's replay server reads too and which therefore uses none of the client's transport.
"""

from __future__ import annotations

from typing import Any

from ctrader_typed._framing import Envelope
from ctrader_typed._transport import Link, LinkFactory, OnClosed, OnEnvelope
from ctrader_typed.errors import CTraderError
from ctrader_typed.recording import Recorder

__all__ = ["recorded_links"]


def recorded_links(recorder: Recorder, factory: LinkFactory) -> LinkFactory:
    """A link factory that opens links with ``factory`` and records every frame they carry, with
    the link's opening, its end, and a failed attempt to open one.

    A recorded link hands each envelope to the client one at a time (the callback it wraps is a
    plain function, so the decoder's batched path for quotes is not taken while recording)."""

    async def open_recorded(on_envelope: OnEnvelope, on_closed: OnClosed) -> Link:
        number = recorder.next_connection()
        holder: list[_RecordingLink] = []

        def received(envelope: Envelope) -> object:
            recorder.record_frame(number, "in", envelope.SerializeToString())
            return on_envelope(envelope)

        def ended(link: Link, error: CTraderError | None) -> object:
            recorder.record_boundary(number, "close", error)
            return on_closed(holder[0] if holder else link, error)

        try:
            inner = await factory(received, ended)
        except Exception as exc:
            recorder.record_boundary(number, "connect_failed", exc)
            raise
        recorder.record_boundary(number, "open")
        link = _RecordingLink(inner, recorder, number)
        holder.append(link)
        return link

    return open_recorded


class _RecordingLink:
    """A ``Link`` that records every frame sent through it, then hands it to the real link."""

    __slots__ = ("_connection", "_inner", "_recorder")

    def __init__(self, inner: Link, recorder: Recorder, connection: int) -> None:
        self._inner = inner
        self._recorder = recorder
        self._connection = connection

    def __repr__(self) -> str:
        return f"<recorded {self._inner!r}>"

    @property
    def is_open(self) -> bool:
        return self._inner.is_open

    @property
    def error(self) -> CTraderError | None:
        return self._inner.error

    def send(self, frame: bytes) -> None:
        self._inner.send(frame)  # raises (and nothing is recorded) when the link is closed
        self._recorder.record_frame(self._connection, "out", frame[4:])

    def close(self, error: CTraderError | None = None) -> None:
        self._inner.close(error)

    async def wait_closed(self) -> CTraderError | None:
        return await self._inner.wait_closed()

    def __getattr__(self, name: str) -> Any:  # frames_sent, bytes_received ... of the real link
        return getattr(self._inner, name)
