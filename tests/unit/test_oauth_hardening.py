"""The OAuth reply parser and AsyncAuth against hostile token endpoints (httpx.MockTransport).

Whatever the server sends, only ``OAuthError`` comes out; whatever it echoes, no spelling
of a secret reaches an exception or a log record.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from ctrader_typed import _secrets
from ctrader_typed.errors import OAuthError
from ctrader_typed.oauth import AsyncAuth, code_from_redirect, parse_token_reply
from ctrader_typed.tokens import MAX_LIFETIME_SECONDS

CLIENT_ID = "1234_clientid"
# Characters that change under URL encoding (both styles) and JSON escaping.
SECRET = 'cl1ent-s\u00e9cret/+ "q" \\ &=?'
CODE = "auth-c0de/+=&x"
REFRESH = 'refresh"t0ken\\+/x'
REDIRECT = "http://localhost:8080/auth/callback"
GOOD = {"accessToken": "acc-token-hard-1", "refreshToken": "ref-token-hard-1", "expiresIn": 60}

Handler = Callable[[httpx.Request], httpx.Response]


def make_auth(handler: Handler) -> AsyncAuth:
    return AsyncAuth(CLIENT_ID, SECRET, REDIRECT, transport=httpx.MockTransport(handler))


def raw_reply(body: bytes, status: int = 200) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"content-type": "application/json"})

    return handler


def spellings(secret: str) -> set[str]:
    """Every form a server could echo a secret in (computed here, independently of the library)."""
    forms = {secret}
    for quoted in (urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret, safe="")):
        forms |= {quoted, quoted.lower()}  # lower() changes only the escapes here: no letters in between
    forms |= {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    return forms


async def failure(handler: Handler, call: str = "code") -> OAuthError:
    async with make_auth(handler) as auth:
        request = auth.get_token(CODE) if call == "code" else auth.refresh_token(REFRESH)
        with pytest.raises(OAuthError) as info:
            await request
    assert type(info.value) is OAuthError
    return info.value


# -- item: absurd lifetimes and bodies are OAuthError, never OverflowError/RecursionError ------


OUT_OF_RANGE = [b"1e12", b"1000000000000", b"1" + b"0" * 400, b"-" + b"1" * 400, b"4611686018427387904"]
NOT_FINITE = [b"1e400", b'"1e12"', b'"' + b"9" * 5000 + b'"', b"NaN", b"Infinity", b"-Infinity", b'"nan"']
NOT_SECONDS = [b"-1", b"-0.5", b"true", b"false", b"[]", b"[60]", b"{}", b'{"s": 60}', b'"soon"', b'"inf"']


@pytest.mark.parametrize("expires_in", [*OUT_OF_RANGE, *NOT_FINITE, *NOT_SECONDS])
async def test_expires_in_out_of_range_or_of_the_wrong_type_is_invalid_reply(expires_in: bytes) -> None:
    body = b'{"accessToken": "a", "refreshToken": "r", "expiresIn": ' + expires_in + b"}"
    error = await failure(raw_reply(body))
    assert error.error_code == "INVALID_REPLY"
    assert "expiresIn" in str(error)


async def test_an_integer_past_pythons_digit_limit_is_invalid_json() -> None:
    body = b'{"accessToken": "a", "refreshToken": "r", "expiresIn": ' + b"9" * 5000 + b"}"
    assert (await failure(raw_reply(body))).error_code == "INVALID_JSON"


@pytest.mark.parametrize(
    "expires_in", [b"0", b"0.0", b"1", b"2628000", b'"2628000"', str(MAX_LIFETIME_SECONDS).encode()]
)
async def test_lifetimes_in_range_are_accepted(expires_in: bytes) -> None:
    body = b'{"accessToken": "a1x", "refreshToken": "r1x", "expiresIn": ' + expires_in + b"}"
    before = datetime.now(UTC)
    async with make_auth(raw_reply(body)) as auth:
        tokens = await auth.get_token(CODE)
    assert tokens.expires_at is not None
    seconds = float(json.loads(expires_in))
    assert tokens.expires_at - before >= timedelta(seconds=seconds)


DEEP = 100_000


@pytest.mark.parametrize(
    "body",
    [
        b"[" * DEEP + b"]" * DEEP,
        b'{"a":' * DEEP + b"1" + b"}" * DEEP,
        b'{"accessToken": ' + b"[" * DEEP + b"]" * DEEP + b', "refreshToken": "r"}',
        b'{"errorCode": ' + b"[" * DEEP + b"]" * DEEP + b"}",
        b"[" * DEEP,  # and never closed
    ],
    ids=["list", "object", "in-a-field", "in-error-code", "unclosed"],
)
@pytest.mark.parametrize("status", [200, 400])
async def test_deeply_nested_json_is_an_oauth_error(body: bytes, status: int) -> None:
    error = await failure(raw_reply(body, status))
    assert error.error_code == ("INVALID_JSON" if status == 200 else "HTTP_400")
    assert error.status_code == status


WRONG_TYPES: list[object] = [["x"], {"x": "y"}, 5, 1.5, True, [[["deep"]]]]


@pytest.mark.parametrize("value", WRONG_TYPES)
@pytest.mark.parametrize(
    "field",
    ["accessToken", "access_token", "refreshToken", "refresh_token", "tokenType", "token_type", "scope"],
)
async def test_every_field_of_the_wrong_type_is_invalid_reply(field: str, value: object) -> None:
    reply: dict[str, object] = {"accessToken": "a1x", "refreshToken": "r1x", "expiresIn": 60}
    reply.pop(field.replace("_token", "Token").replace("_type", "Type"), None)
    reply[field] = value
    error = await failure(raw_reply(json.dumps(reply).encode()))
    assert error.error_code == "INVALID_REPLY"
    camel = {"access_token": "accessToken", "refresh_token": "refreshToken", "token_type": "tokenType"}
    assert camel.get(field, field) in str(error)


@pytest.mark.parametrize("value", WRONG_TYPES)
async def test_an_error_code_of_the_wrong_type_in_a_200_reply_is_invalid_reply(value: object) -> None:
    body = json.dumps({"errorCode": value, "description": "x"}).encode()
    error = await failure(raw_reply(body))
    assert error.error_code == "INVALID_REPLY"
    assert "errorCode" in str(error)


@pytest.mark.parametrize("value", WRONG_TYPES)
async def test_wrongly_typed_texts_of_a_refusal_do_not_hide_the_refusal(value: object) -> None:
    refused = await failure(raw_reply(json.dumps({"errorCode": value, "description": value}).encode(), 401))
    assert (refused.error_code, refused.status_code) == ("HTTP_401", 401)
    described = await failure(raw_reply(json.dumps({"errorCode": "BAD", "description": value}).encode()))
    assert (described.error_code, described.description) == ("BAD", None)


async def test_server_texts_are_one_line_and_bounded() -> None:
    body = json.dumps(
        {"errorCode": "BAD\r\nX-Injected: 1", "description": "line1\n\x1b[31mred" + "y" * 10_000}
    )
    error = await failure(raw_reply(body.encode()))
    assert error.error_code == "BAD X-Injected: 1"
    assert error.description is not None
    assert "\n" not in str(error)
    assert "\x1b" not in str(error)
    assert len(error.description) <= 500


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"1e400",
        b'"text"',
        b"\xff\xfe",
        b"[" * DEEP,
        b'{"accessToken": "a", "expiresIn": 1e999}',
    ],
)
@pytest.mark.parametrize("status", [200, 201, 302, 400, 500])
def test_parse_token_reply_raises_nothing_but_oauth_error(body: bytes, status: int) -> None:
    with pytest.raises(OAuthError) as info:
        parse_token_reply(status, body)
    assert type(info.value) is OAuthError


# -- item: secrets in every spelling stay out of errors and logs ------------------------------


def echo_everything(status: int, where: str) -> Handler:
    """A token endpoint that repeats every secret it received, in every spelling, in its refusal."""

    def handler(request: httpx.Request) -> httpx.Response:
        received = [
            v for k, v in request.url.params.items() if k in {"client_secret", "code", "refresh_token"}
        ]
        echoed = " | ".join(" ".join(sorted(spellings(value))) for value in received)
        # Double-encoded as a server that builds its JSON by hand would: the JSON-escaped
        # spelling survives json.loads.
        reply = {"errorCode": "INVALID_GRANT", "description": f"you sent {echoed}"}
        if where == "errorCode":
            reply = {"errorCode": f"BAD_{echoed}", "description": "no"}
        return httpx.Response(status, json=reply)

    return handler


def assert_no_spelling(text: str, *secrets: str) -> None:
    for secret in secrets:
        for form in spellings(secret):
            assert form not in text, f"a form of a secret leaked: {form!r}"


@pytest.mark.parametrize("status", [200, 400, 401])
@pytest.mark.parametrize("where", ["description", "errorCode"])
@pytest.mark.parametrize("call", ["code", "refresh"])
async def test_echoed_secrets_are_scrubbed_in_every_spelling(
    caplog: pytest.LogCaptureFixture, status: int, where: str, call: str
) -> None:
    caplog.set_level(logging.DEBUG)
    error = await failure(echo_everything(status, where), call)
    texts = [str(error), error.error_code, error.description or "", repr(error.args)]
    texts += [record.getMessage() for record in caplog.records]
    texts.append(caplog.text)
    for text in texts:
        assert_no_spelling(text, SECRET, CODE, REFRESH)
    assert _secrets.REDACTED in str(error)
    assert any(r.name == "ctrader_typed.oauth" for r in caplog.records), "the failure is logged (at DEBUG)"


async def test_a_transport_error_quoting_the_url_is_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(
            f"cannot reach {request.url} ({SECRET!r}, {json.dumps(CODE)})", request=request
        )

    error = await failure(refuse)
    assert error.error_code == "CONNECTION_ERROR"
    for text in (str(error), caplog.text):
        assert_no_spelling(text, SECRET, CODE)


async def test_tokens_obtained_are_registered_with_every_library_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=GOOD)

    async with make_auth(handler) as auth:
        tokens = await auth.get_token(CODE)
    other = _secrets.get_logger("ctrader_typed.somewhere_else")
    other.warning("leak? %s %s %s %s", tokens.access_token, tokens.refresh_token, SECRET, CODE)
    logging.getLogger("ctrader_typed.oauth").warning("leak? %s", urllib.parse.quote(tokens.refresh_token))
    assert_no_spelling(caplog.text, tokens.access_token, tokens.refresh_token, SECRET, CODE)


async def test_tokens_in_a_refusal_are_scrubbed_too() -> None:
    leaked = "tok-in-refusal-9"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"accessToken": leaked, "errorCode": "ODD", "description": f"kept {leaked}"}
        )

    error = await failure(handler)
    assert_no_spelling(str(error), leaked)


# -- item: a pasted redirect that should carry our state and does not is refused -----------

CALLBACK = "http://localhost:8080/auth/callback"


@pytest.mark.parametrize(
    "pasted",
    [
        f"{CALLBACK}?code=abc123",
        f"{CALLBACK}?code=abc123&state=",
        f"{CALLBACK}#code=abc123",
        "/auth/callback?code=abc123",
        "?code=abc123",
        "code=abc123",
        f"  {CALLBACK}?code=abc123  \n",
    ],
)
def test_a_redirect_without_state_is_refused_when_one_was_sent(pasted: str) -> None:
    with pytest.raises(OAuthError) as info:
        code_from_redirect(pasted, state="s1")
    expected = "STATE_MISMATCH" if pasted.endswith("state=") else "STATE_MISSING"
    assert info.value.error_code == expected


@pytest.mark.parametrize(
    "pasted",
    [
        f"{CALLBACK}?code=abc123&state=s2",
        f"{CALLBACK}?code=abc123&state=s1&state=s2",  # two states: ambiguous, refused
        f"{CALLBACK}?code=abc123&state=s2&state=s1",
        f"{CALLBACK}?code=abc123&state=S1",
    ],
)
def test_another_or_an_ambiguous_state_is_a_mismatch(pasted: str) -> None:
    with pytest.raises(OAuthError) as info:
        code_from_redirect(pasted, state="s1")
    assert info.value.error_code == "STATE_MISMATCH"


def test_check_state_false_accepts_a_redirect_without_or_with_another_state() -> None:
    assert code_from_redirect(f"{CALLBACK}?code=abc123", state="s1", check_state=False) == "abc123"
    assert code_from_redirect(f"{CALLBACK}?code=abc&state=x", state="s1", check_state=False) == "abc"


def test_without_an_expected_state_nothing_is_checked() -> None:
    assert code_from_redirect(f"{CALLBACK}?code=abc123") == "abc123"
    assert code_from_redirect(f"{CALLBACK}?code=abc123&state=whatever") == "abc123"


def test_a_bare_code_is_accepted_as_it_carries_no_state() -> None:
    assert code_from_redirect("  abc123==\n", state="s1") == "abc123=="


def test_a_provider_error_is_reported_whatever_the_state() -> None:
    for pasted in (f"{CALLBACK}?error=access_denied", f"{CALLBACK}?error=access_denied&state=zz"):
        with pytest.raises(OAuthError) as info:
            code_from_redirect(pasted, state="s1")
        assert info.value.error_code == "access_denied"


def test_the_pasted_code_becomes_a_registered_secret(caplog: pytest.LogCaptureFixture) -> None:
    code = code_from_redirect(f"{CALLBACK}?code=pasted-c0de-77&state=s1", state="s1")
    with pytest.raises(OAuthError) as info:
        code_from_redirect(f"{CALLBACK}?code=pasted-c0de-78&error=bad&error_description=pasted-c0de-78")
    assert "pasted-c0de-78" not in str(info.value)
    _secrets.get_logger("ctrader_typed.oauth").warning("saw %s", code)
    assert code not in caplog.text
