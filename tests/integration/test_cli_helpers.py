"""The command line's pure helpers: progress lines, tables, time and period parsing, error wording.

(No sockets here; these sit next to the CLI's subprocess tests because they are its parts.)
"""

from __future__ import annotations

import io
import json
import ssl
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from ctrader_typed import _secrets
from ctrader_typed._cli._common import CLIError, Progress, parse_period, parse_time, render_table, suggest
from ctrader_typed._cli._errors import describe, oauth_hint
from ctrader_typed._cli.market import QuoteBoard
from ctrader_typed._generated.enums import TrendbarPeriod
from ctrader_typed._generated.messages import SpotEvent
from ctrader_typed.errors import (
    APIError,
    AuthenticationError,
    ConnectionClosedError,
    MaintenanceError,
    OAuthError,
    TLSVerificationError,
)
from ctrader_typed.tokens import TokenStoreError


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_steps(progress: Progress) -> None:
    with progress.step("quick"):
        pass
    with progress.step("paged"):
        progress.update("page 1")
        progress.update("page 2")
    with progress.step("noted"):
        progress.info("a note")
    with pytest.raises(ValueError, match="boom"), progress.step("broken"):
        raise ValueError("boom")
    progress.info("done")


def test_progress_lines_off_a_terminal() -> None:
    out = io.StringIO()
    run_steps(Progress(out))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("- quick ... ok (")
    assert lines[1].startswith("- paged ... ok (")  # updates are not shown off a terminal
    assert lines[2:5] == ["- noted ... ", "a note", lines[4]]
    assert lines[4].startswith("- noted ... ok (")
    assert lines[5:] == ["- broken ... failed", "done"]


def test_progress_on_a_terminal_overwrites_updates() -> None:
    out = Terminal()
    run_steps(Progress(out))
    text = out.getvalue()
    assert "page 1\r\x1b[2Kpage 2\r\x1b[2K- paged ... ok (" in text


def test_quiet_progress_writes_nothing() -> None:
    out = io.StringIO()
    run_steps(Progress(out, quiet=True))
    assert out.getvalue() == ""


def test_render_table_aligns_numbers_right() -> None:
    table = render_table(["id", "name"], [[1, "EURUSD"], [10, "BTCUSD"], [None, ""]])
    assert table.split("\n") == ["id  name", "--  ------", " 1  EURUSD", "10  BTCUSD", ""]


NOW = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01T10:30", datetime(2024, 5, 1, 10, 30, tzinfo=UTC)),
        ("2024-05-01T10:30Z", datetime(2024, 5, 1, 10, 30, tzinfo=UTC)),
        ("2024-05-01T12:30+02:00", datetime(2024, 5, 1, 10, 30, tzinfo=UTC)),
        ("90m", NOW - timedelta(minutes=90)),
        ("12h", NOW - timedelta(hours=12)),
        ("3d", NOW - timedelta(days=3)),
        ("2W", NOW - timedelta(weeks=2)),
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    assert parse_time(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "3x", "d", "2024-13-01"])
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(CLIError) as info:
        parse_time(text, now=NOW)
    assert info.value.exit_code == 2


def test_parse_period() -> None:
    assert parse_period(" h1 ") is TrendbarPeriod.H1
    assert parse_period("MN1") is TrendbarPeriod.MN1
    with pytest.raises(CLIError, match="unknown period 'H2'; choose one of M1, M2"):
        parse_period("H2")


def test_suggest() -> None:
    known = ["EURUSD", "GBPUSD", "XAUUSD"]
    assert suggest("EURUSDX", known) == " (did you mean EURUSD?)"
    assert suggest("eur/usd", known) == " (did you mean EURUSD?)"
    assert suggest("QQQQ", known) == ""


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        (OAuthError("INVALID_GRANT", "The authorization code has expired"), "work once"),
        (OAuthError("INVALID_GRANT", "redirect_uri does not match"), "redirect URI must match"),
        (OAuthError("ACCESS_DENIED", "Invalid client credentials"), "CTRADER_CLIENT_SECRET"),
        (OAuthError("CALLBACK_TIMEOUT", "no redirect"), "--manual"),
        (OAuthError("CALLBACK_PORT_IN_USE", "busy"), "--redirect-uri"),
        (OAuthError("CALLBACK_UNAVAILABLE", "no loopback"), "--manual"),
        (OAuthError("STATE_MISSING", "no state"), "whole redirected URL"),
        (OAuthError("SOMETHING", None), ""),
    ],
)
def test_oauth_hints(error: OAuthError, hint: str) -> None:
    assert hint in oauth_hint(error)
    if not hint:
        assert oauth_hint(error) == ""


@pytest.mark.parametrize(
    ("error", "status", "words"),
    [
        (CLIError("bad", exit_code=2), 2, "bad"),
        (
            OAuthError("INVALID_GRANT", "The authorization code has expired"),
            1,
            "sign-in failed: INVALID_GRANT",
        ),
        (
            AuthenticationError("CH_ACCESS_TOKEN_INVALID", "Access token expired"),
            1,
            "run 'ctrader-typed auth'",
        ),
        (AuthenticationError("CH_CLIENT_AUTH_FAILURE"), 1, "application credentials were refused"),
        (APIError("TRADING_DISABLED", "no"), 1, "the server refused the request: TRADING_DISABLED"),
        (TokenStoreError("token file /x is not a valid token set"), 2, "delete it"),
        (
            MaintenanceError("maintenance until 2036-01-01", maintenance_end=None),
            1,
            "the server is under maintenance: maintenance until 2036-01-01",
        ),
        (ConnectionRefusedError(111, "Connection refused"), 1, "cannot connect: Connection refused"),
        (PermissionError(13, "Permission denied", "/root/x"), 1, "/root/x: Permission denied"),
    ],
)
def test_describe(error: BaseException, status: int, words: str) -> None:
    message, code = describe(error)
    assert message is not None
    assert words in message
    assert "\n" not in message
    assert code == status


def test_describe_hints_at_the_ca_file_for_an_untrusted_certificate() -> None:
    error = TLSVerificationError(
        "the server's certificate was not trusted", verify_message="unable to get local issuer certificate"
    )
    message, code = describe(error)
    assert code == 1
    assert message is not None
    assert "certificate was not trusted" in message
    assert "(unable to get local issuer certificate)" in message
    assert "--ca-file" in message
    assert "CTRADER_CA_FILE" in message
    assert "connection closed" not in message  # not the generic ConnectionClosedError wording
    assert "\n" not in message


def test_describe_tls_hint_without_a_verify_message() -> None:
    message, _ = describe(TLSVerificationError("hostname mismatch for example.test"))
    assert message is not None
    assert "(hostname mismatch for example.test)" in message
    assert "--ca-file" in message


def test_describe_keeps_the_ssl_verification_branch() -> None:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = "self-signed certificate"
    message, code = describe(error)
    assert code == 1
    assert message is not None
    assert "(self-signed certificate)" in message
    assert "--ca-file" in message


def test_describe_a_plain_closed_connection() -> None:
    assert describe(ConnectionClosedError("reset by peer"))[0] == "the connection closed: reset by peer"


SECRETS = ("s3cr3t-value", 'p@ss/w0rd "quoted" +plus&and=\u00e9')


@pytest.fixture
def registered_secrets() -> Iterator[tuple[str, ...]]:
    _secrets.register(*SECRETS)
    yield SECRETS
    # the registry is process-wide: forget the test's secrets again (if it can)
    registry = getattr(_secrets, "_REGISTRY", None)
    if isinstance(registry, _secrets.Secrets):
        for secret in SECRETS:
            registry.discard(secret)


def spellings(secret: str) -> list[str]:
    quoted = urllib.parse.quote(secret, safe="")
    return [
        secret,
        quoted,
        quoted.lower(),
        urllib.parse.quote_plus(secret, safe=""),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    ]


@pytest.mark.parametrize("secret", SECRETS)
@pytest.mark.parametrize("form", range(6))
def test_describe_never_shows_a_registered_secret(
    registered_secrets: tuple[str, ...], secret: str, form: int
) -> None:
    echoed = spellings(secret)[form]
    errors: list[BaseException] = [
        APIError("INVALID_REQUEST", f"bad credentials {echoed} in request"),
        APIError("INVALID_REQUEST", f'{{"clientSecret": "{echoed}"}}'),
        APIError("INVALID_REQUEST", f"https://example.test/apps/token?client_secret={echoed}&x=1"),
        AuthenticationError("ACCOUNT_NOT_AUTHORIZED", f"token {echoed} not granted"),
        OAuthError("ACCESS_DENIED", f"client secret {echoed} unknown"),
        CLIError(f"refused {echoed}"),
        TLSVerificationError(f"untrusted {echoed}", verify_message=f"for {echoed}"),
        ConnectionClosedError(f"closed after {echoed}"),
    ]
    for error in errors:
        message, _ = describe(error)
        assert message is not None
        for spelling in spellings(secret):
            assert spelling not in message, (type(error).__name__, message)
        assert "[redacted]" in message


def test_describe_leaves_bugs_alone() -> None:
    assert describe(KeyError("x")) == (None, 1)
    assert describe(ssl.SSLError())[0] is None


def test_quote_board_redraws_in_place_on_a_terminal() -> None:
    out = Terminal()
    board = QuoteBoard({1: "EURUSD", 2: "GBPUSD"}, {1: 5, 2: 5}, out)
    board.update(SpotEvent(ctid_trader_account_id=9, symbol_id=1, bid=108_123, ask=108_125))
    first = out.getvalue()
    assert "\x1b[" not in first.split("\x1b[2K", 1)[0]  # nothing to move over yet
    board.update(SpotEvent(ctid_trader_account_id=9, symbol_id=1, ask=108_130))  # only the ask changed
    board.update(SpotEvent(ctid_trader_account_id=9, symbol_id=2, bid=130_000, ask=130_010))
    text = out.getvalue()
    assert text.count("\x1b[4F") == 2  # header, rule and two rows redrawn twice
    last = [line.replace("\x1b[2K", "") for line in text.rsplit("\x1b[4F", 1)[1].splitlines()]
    assert last[2].split()[:4] == ["EURUSD", "1.08123", "1.08130", "0.00007"]
    assert last[3].split()[:4] == ["GBPUSD", "1.30000", "1.30010", "0.00010"]


def test_quote_board_prints_lines_off_a_terminal() -> None:
    out = io.StringIO()
    board = QuoteBoard({1: "EURUSD"}, {1: 5}, out)
    board.update(SpotEvent(ctid_trader_account_id=9, symbol_id=1, bid=108_123, timestamp=1_700_000_000_000))
    assert out.getvalue() == "22:13:20.000 EURUSD bid 1.08123 ask -\n"
