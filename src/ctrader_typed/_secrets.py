"""Keeping secrets out of every text the library produces.

A secret - the client secret, an access token, a refresh token, an authorization code -
can come back to us inside text we did not write: a server that echoes the credentials in
an error description, an OAuth reply, an exception raised by a library underneath. Every
such text passes through ``scrub`` before it becomes part of an exception message, a log
record or an event.

``Secrets`` is the set one owner (a client, an ``AsyncAuth``) holds; ``scrub`` replaces
each of them, in the literal form and in the forms it takes once encoded for a URL
(``quote`` with or without ``/`` escaped, ``quote_plus``; upper- and lower-case escapes)
or inside a JSON string (``\\u`` escapes or not, ``/`` escaped or not), by
``[redacted]``. Every owner also registers its secrets with the process-wide registry
(bounded; oldest forgotten first), which the log filter of the library's loggers reads,
so a record is scrubbed whichever component logged it.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import re
import threading
import urllib.parse
from collections.abc import Iterable
from typing import Final, TypeVar

__all__ = ["REDACTED", "Secrets", "get_logger", "register", "scrub", "scrub_exception"]

REDACTED: Final = "[redacted]"
_MIN_LENGTH: Final = 8
"""Shorter strings are not treated as secrets: scrubbing a word such as "token" or "secret"
from every text (the registry is process-wide) would mangle the library's own messages, and
no credential the Open API issues is that short."""
_REGISTRY_SIZE: Final = 256

_E = TypeVar("_E", bound=BaseException)


def _forms(secret: str) -> set[str]:
    """The spellings of ``secret`` that can appear in a text."""
    forms = {secret}
    for quoted in (
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote(secret),  # "/" left as it is: quote's default
        urllib.parse.quote_plus(secret, safe=""),
    ):
        forms.add(quoted)
        forms.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quoted))
    for escaped in (json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]):
        forms.add(escaped)
        forms.add(escaped.replace("/", "\\/"))  # encoders that escape "/" too (PHP, some Java)
    return {form for form in forms if len(form) >= _MIN_LENGTH}


class Secrets:
    """A set of secrets and the pattern that finds any of their spellings in a text."""

    __slots__ = ("_forms", "_lock", "_pattern")

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._forms: dict[str, set[str]] = {}
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()
        for secret in secrets:
            self.add(secret)

    def __repr__(self) -> str:
        return f"<Secrets: {len(self._forms)} held>"

    def __len__(self) -> int:
        return len(self._forms)

    def add(self, secret: str | None) -> None:
        """Hold ``secret`` (``None``, empty and very short strings are ignored)."""
        if not secret or len(secret) < _MIN_LENGTH or secret in self._forms:
            return
        with self._lock:
            self._forms[secret] = _forms(secret)
            self._pattern = None

    def discard(self, secret: str) -> None:
        with self._lock:
            if self._forms.pop(secret, None) is not None:
                self._pattern = None

    def _compiled(self) -> re.Pattern[str] | None:
        pattern = self._pattern
        if pattern is None and self._forms:
            with self._lock:
                every = {form for forms in self._forms.values() for form in forms}
                # Longest first, so a secret that contains another is replaced whole.
                alternatives = sorted(every, key=len, reverse=True)
                pattern = self._pattern = re.compile("|".join(map(re.escape, alternatives)))
        return pattern

    def scrub(self, text: str) -> str:
        """``text`` with every spelling of every held secret replaced by ``[redacted]``."""
        pattern = self._compiled()
        if pattern is None or not text:
            return text
        return pattern.sub(REDACTED, text)


class _Registry(Secrets):
    """The process-wide set: bounded, the oldest secret forgotten first."""

    __slots__ = ("_order",)

    def __init__(self) -> None:
        super().__init__()
        self._order: collections.deque[str] = collections.deque()

    def add(self, secret: str | None) -> None:
        if not secret or len(secret) < _MIN_LENGTH or secret in self._forms:
            return
        super().add(secret)
        with self._lock:
            self._order.append(secret)
            while len(self._order) > _REGISTRY_SIZE:
                self._forms.pop(self._order.popleft(), None)
                self._pattern = None


_REGISTRY: Final = _Registry()


def register(*secrets: str | None) -> None:
    """Make the log filter of every library logger scrub these secrets too."""
    for secret in secrets:
        _REGISTRY.add(secret)


def scrub(text: str, *extra: Secrets) -> str:
    """``text`` without any registered secret, nor any secret of ``extra``."""
    for held in extra:
        text = held.scrub(text)
    return _REGISTRY.scrub(text)


def scrub_exception(exc: _E, *extra: Secrets) -> _E:
    """Scrub an exception's arguments (its message) in place and return it."""
    exc.args = tuple(scrub(a, *extra) if isinstance(a, str) else a for a in exc.args)
    for name in ("description", "reason"):
        value = getattr(exc, name, None)
        if isinstance(value, str):
            with contextlib.suppress(AttributeError):
                setattr(exc, name, scrub(value, *extra))
    return exc


class _ScrubFilter(logging.Filter):
    """Renders a record's message once and scrubs it (arguments may hold exceptions and
    server texts); the traceback text of ``exc_info`` is scrubbed too."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not len(_REGISTRY):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to logging to report
            return True
        clean = _REGISTRY.scrub(message)
        if clean != message or record.args:
            record.msg = clean
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            if not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = _REGISTRY.scrub(record.exc_text)
        return True


_FILTER: Final = _ScrubFilter()


def get_logger(name: str) -> logging.Logger:
    """The library's logger ``name``, with the scrubbing filter attached."""
    log = logging.getLogger(name)
    if _FILTER not in log.filters:
        log.addFilter(_FILTER)
    return log
