"""The scrubber: every spelling of a held secret goes, nothing else does; the registry is bounded;
the library loggers' filter scrubs messages, arguments and tracebacks."""

from __future__ import annotations

import json
import logging
import urllib.parse

import pytest

from ctrader_typed import _secrets
from ctrader_typed._secrets import REDACTED, Secrets, get_logger, register, scrub, scrub_exception

SECRET = 's3cr/t+x=y"z é'
"""Differs in every encoding: '/', '+', '=', '"', a space and a non-ASCII letter."""


def spellings(secret: str) -> list[str]:
    json_ascii = json.dumps(secret)[1:-1]
    json_utf8 = json.dumps(secret, ensure_ascii=False)[1:-1]
    quoted = urllib.parse.quote(secret, safe="")
    return [
        secret,
        quoted,
        quoted.lower(),  # lower-case escapes (the letters of the secret are lower-case already)
        urllib.parse.quote(secret),
        urllib.parse.quote_plus(secret, safe=""),
        json_ascii,
        json_utf8,
        json_ascii.replace("/", "\\/"),
        json_utf8.replace("/", "\\/"),
    ]


@pytest.mark.parametrize("spelling", spellings(SECRET))
def test_every_spelling_is_scrubbed(spelling: str) -> None:
    held = Secrets([SECRET])
    text = f"CH_CLIENT_AUTH_FAILURE: clientSecret={spelling} rejected"
    assert held.scrub(text) == f"CH_CLIENT_AUTH_FAILURE: clientSecret={REDACTED} rejected"


def test_the_spellings_really_differ() -> None:
    # Otherwise the test above would check one form several times.
    assert len(set(spellings(SECRET))) == len(spellings(SECRET))


def test_other_text_is_left_alone() -> None:
    held = Secrets(["abcd1234", None, "", "ab"])  # None, empty and too short ones are ignored
    assert len(held) == 1
    assert held.scrub("ab abcd123 abcd12345") == f"ab abcd123 {REDACTED}5"
    assert Secrets().scrub("abcd1234") == "abcd1234"


def test_a_secret_containing_another_is_replaced_whole() -> None:
    held = Secrets(["tokenval", "tokenval-and-more"])
    assert held.scrub("x tokenval-and-more y tokenval") == f"x {REDACTED} y {REDACTED}"


def test_discard_forgets() -> None:
    held = Secrets(["abcd1234"])
    held.discard("abcd1234")
    assert held.scrub("abcd1234") == "abcd1234"
    assert "abcd1234" not in repr(held)


def test_the_registry_is_bounded_and_forgets_the_oldest_first() -> None:
    first = "registry-oldest-secret"
    register(first)
    assert scrub(first) == REDACTED
    for n in range(_secrets._REGISTRY_SIZE):
        register(f"registry-filler-{n:04d}")
    assert len(_secrets._REGISTRY) <= _secrets._REGISTRY_SIZE
    assert scrub(first) == first  # forgotten
    assert scrub(f"registry-filler-{_secrets._REGISTRY_SIZE - 1:04d}") == REDACTED


def test_scrub_exception_cleans_args_description_and_reason() -> None:
    class Failure(Exception):
        def __init__(self, message: str, description: str, reason: str) -> None:
            super().__init__(message, 7)
            self.description = description
            self.reason = reason

    held = Secrets([SECRET])
    quoted = urllib.parse.quote(SECRET, safe="")
    exc = scrub_exception(Failure(f"bad {SECRET}", f"echo {quoted}", json.dumps(SECRET)), held)
    assert SECRET not in str(exc)
    assert exc.args == (f"bad {REDACTED}", 7)
    assert exc.description == f"echo {REDACTED}"
    assert exc.reason == f'"{REDACTED}"'


def test_the_library_log_filter_scrubs_message_args_and_traceback(caplog: pytest.LogCaptureFixture) -> None:
    secret = "log-filter-secret-4711"
    register(secret)
    log = get_logger("ctrader_typed.test_secrets")
    assert get_logger("ctrader_typed.test_secrets") is log
    assert sum(isinstance(f, type(_secrets._FILTER)) for f in log.filters) == 1  # attached once
    caplog.set_level(logging.DEBUG, logger="ctrader_typed.test_secrets")
    log.debug("literal %s", secret)
    log.warning("url-encoded %s and json %r", urllib.parse.quote(secret + "/"), {"s": secret})
    try:
        raise RuntimeError(f"raised with {secret}")
    except RuntimeError:
        log.exception("failed")
    assert len(caplog.records) == 3
    text = caplog.text
    for record in caplog.records:
        text += record.getMessage() + (record.exc_text or "")
    assert secret not in text
    assert text.count(REDACTED) >= 4


def test_short_words_are_never_registered_so_library_texts_stay_whole() -> None:
    """Regression: a test client authorised with the access token "token" registered it
    process-wide, and a later "Access token was revoked" reached users as
    "Access [redacted] was revoked". Nothing shorter than 8 characters is a secret."""
    for word in ("token", "secret", "access", "1234567"):
        register(word)
    assert scrub("Access token was revoked; secret 1234567") == "Access token was revoked; secret 1234567"
    assert len(Secrets(["token", "secret"])) == 0
