"""The command line's pure helpers: progress lines, tables, time and period parsing, error wording.

(No sockets here; these sit next to the CLI's subprocess tests because they are its parts.)
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import ssl
import sys
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from ctrader_typed import _secrets
from ctrader_typed._cli import _ui
from ctrader_typed._cli._common import (
    CLIError,
    Progress,
    Settings,
    parse_period,
    parse_time,
    render_table,
    suggest,
)
from ctrader_typed._cli._errors import describe, oauth_hint
from ctrader_typed._cli._session import choose_account
from ctrader_typed._cli.market import QuoteBoard, RichQuoteBoard
from ctrader_typed._generated.enums import TrendbarPeriod
from ctrader_typed._generated.messages import CtidTraderAccount, SpotEvent
from ctrader_typed.errors import (
    APIError,
    AuthenticationError,
    ConnectionClosedError,
    MaintenanceError,
    OAuthError,
    TLSVerificationError,
)
from ctrader_typed.tokens import TokenStoreError

if TYPE_CHECKING:
    from rich.console import Console


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def no_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plain terminal rendering, as without the 'cli' extra."""
    monkeypatch.setattr(_ui, "rich_console", lambda stream: None)


@pytest.fixture
def with_rich() -> None:
    """rich must be there (the 'cli' extra, part of 'dev')."""
    pytest.importorskip("rich", reason="the 'cli' extra (rich) is not installed")


@pytest.fixture
def columns(monkeypatch: pytest.MonkeyPatch) -> int:
    """An 80-column terminal for the streams here (they have no real size)."""
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("LINES", "24")
    return 80


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


def test_progress_on_a_terminal_overwrites_updates(no_rich: None, columns: int) -> None:
    out = Terminal()
    run_steps(Progress(out))
    text = out.getvalue()
    # Updates go below the step line and are cleared; "ok" goes back onto the step's own line
    # (up one row, to the column after "- paged ... "), instead of printing the step again.
    assert "- paged ... \npage 1\r\x1b[2Kpage 2\r\x1b[2K\x1b[1A\x1b[13Gok (" in text
    assert text.count("- paged ... ") == 1
    assert "- noted ... \na note\n- noted ... ok (" in text  # a printed line stays: the step is repeated
    assert "\x1b[3" not in text  # no colour without rich


def test_long_step_line_on_a_narrow_terminal_is_printed_once(no_rich: None, columns: int) -> None:
    out = Terminal()
    progress = Progress(out)
    text = "fetching H1 bars of EURUSD from 2024-05-01 00:00 to 2024-05-03 00:00 (a long line)"
    with progress.step(text):
        progress.update("  page " + "x" * 200)
    written = out.getvalue()
    assert written.count(text) == 1
    prefix = len(f"- {text} ... ")
    assert prefix > columns
    assert f"\x1b[1A\x1b[{prefix % columns + 1}Gok (" in written  # on the wrapped step line's last row
    update = written.split("\n", 1)[1].split("\r", 1)[0]
    assert len(update) == columns - 1  # cut to one row: it never wraps
    assert update.endswith("...")


def test_step_line_filling_its_last_row_exactly_is_printed_again(no_rich: None, columns: int) -> None:
    out = Terminal()
    progress = Progress(out)
    text = "x" * (columns - len("- ") - len(" ... "))
    with progress.step(text):
        progress.update("page 1")
    written = out.getvalue()
    # The cursor cannot be put back after a row filled to its last column: print the step again.
    assert "\x1b[1A" not in written
    assert written.count(f"- {text} ... ") == 2
    assert f"page 1\r\x1b[2K- {text} ... ok (" in written


def test_progress_with_rich_colours_outcomes(
    monkeypatch: pytest.MonkeyPatch, columns: int, with_rich: None
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = Terminal()
    run_steps(Progress(out))
    text = out.getvalue()
    assert "- quick ... \x1b[32mok\x1b[0m (" in text
    assert "- broken ... \x1b[1;31mfailed\x1b[0m\n" in text


def test_progress_with_rich_respects_no_color(
    monkeypatch: pytest.MonkeyPatch, columns: int, with_rich: None
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    out = Terminal()
    run_steps(Progress(out))
    text = out.getvalue()
    assert "- quick ... ok (" in text
    assert "\x1b[3" not in text
    assert "\x1b[1;" not in text


def test_download_with_rich_draws_a_bar_then_the_step_line(
    monkeypatch: pytest.MonkeyPatch, columns: int, with_rich: None
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    out = Terminal()
    progress = Progress(out)
    assert progress.console is not None
    with progress.download(
        "fetching H1 bars of EURUSD from 2024-05-01", 100.0, unit="bars", label="EURUSD H1"
    ) as download:
        download.advance_to(40.0, 1500)
    text = out.getvalue()
    bar, after = text.rsplit("- fetching H1 bars of EURUSD from 2024-05-01 ... ", 1)
    # The last frame is drawn when the bar stops, then erased (it is transient) for the step line.
    assert "EURUSD H1 " in bar
    assert "fetching" not in bar  # the short label leaves the room to the bar
    assert "40%" in bar
    assert "1500 bars" in bar
    assert after.startswith("ok (")
    assert after.endswith(" ms)\n")
    with pytest.raises(ValueError, match="cut"), progress.download("fetching ticks", 10.0, unit="ticks"):
        raise ValueError("cut")
    assert out.getvalue().endswith("- fetching ticks ... \x1b[1mfailed\x1b[0m\n")  # bold: no colour


def test_download_on_a_plain_terminal_shows_share_and_time_left(no_rich: None, columns: int) -> None:
    out = Terminal()
    progress = Progress(out)
    with progress.download("fetching bars", 100.0, unit="bars") as download:
        download._started -= 10  # ten seconds in
        download.advance_to(40.0, 1500)
        shown = out.getvalue()
        assert shown.endswith("\n  1500 bars, 40%, about 15 s left")
        download.advance_to(30.0, 1600)  # progress never goes back
        assert download.done == 40.0
    assert out.getvalue().count("- fetching bars ... ") == 1


def test_download_off_a_terminal_is_one_step_line() -> None:
    out = io.StringIO()
    progress = Progress(out)
    with progress.download("fetching bars", 100.0, unit="bars") as download:
        download.advance_to(50.0, 10)
    assert out.getvalue().startswith("- fetching bars ... ok (")
    assert out.getvalue().count("\n") == 1


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
    board = QuoteBoard({1: "EURUSD", 2: "GBPUSD"}, {1: 5, 2: 5}, out, size=lambda: os.terminal_size((80, 24)))
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


def quote(symbol_id: int, bid: int | None = None, ask: int | None = None) -> SpotEvent:
    return SpotEvent(
        ctid_trader_account_id=9, symbol_id=symbol_id, bid=bid, ask=ask, timestamp=1_700_000_000_000
    )


NAMES = {1: "EURUSD", 2: "GBPUSD", 3: "XAUUSD", 4: "US500", 5: "BTCUSD"}
DIGITS = {1: 5, 2: 5, 3: 2, 4: 2, 5: 2}


def test_plain_quote_board_stays_within_a_small_terminal() -> None:
    out = Terminal()
    board = QuoteBoard(NAMES, DIGITS, out, size=lambda: os.terminal_size((30, 6)))
    board.update(quote(1, 108_123, 108_125))
    board.update(quote(3, 199_012_000, 199_052_000))
    frames = out.getvalue().split("\x1b[5F")  # each redraw goes back over the 5 rows it drew
    assert len(frames) == 2
    for frame in frames:
        rows = [row.replace("\x1b[2K", "") for row in frame.removesuffix("\x1b[J").split("\n")[:-1]]
        assert len(rows) == 5  # the last row of 6 stays free: drawing there would scroll
        assert all(len(row) <= 29 for row in rows)  # never wraps
        assert rows[-1].startswith("... 3 more")
    assert frames[-1].endswith("\x1b[J")  # whatever an earlier, larger frame left below is erased


def rich_board(width: int, height: int = 24, *, color: bool = True) -> tuple[RichQuoteBoard, Console]:
    console = pytest.importorskip("rich.console", reason="the 'cli' extra (rich) is not installed").Console(
        file=io.StringIO(),
        force_terminal=True,
        record=True,
        width=width,
        height=height,
        color_system="standard" if color else None,
    )
    return RichQuoteBoard(NAMES, DIGITS, console, auto_refresh=False), console


def play(board: RichQuoteBoard) -> None:
    with board:
        board.update(quote(1, 108_123, 108_125))
        board.update(quote(1, bid=108_120))  # the bid went down
        board.update(quote(3, 199_012_000, 199_052_000))
        board.update(quote(3, ask=199_060_000))  # the ask went up


def last_frame(console: Console, height: int) -> list[str]:
    return console.export_text().rstrip("\n").split("\n")[-height:]


@pytest.mark.parametrize("width", [120, 40])
def test_rich_quote_board_fits_the_width(width: int) -> None:
    board, console = rich_board(width)
    play(board)
    lines = [line.rstrip() for line in board_lines(console, board, width)]
    assert all(len(line) <= width for line in lines)
    header = lines[0].split()
    if width == 120:
        assert header == ["symbol", "bid", "ask", "spread", "time", "(UTC)"]
        assert lines[2].split() == ["EURUSD", "1.08120", "1.08125", "0.00005", "22:13:20.000"]
    else:  # the time, then the spread, give way before anything is cut
        assert header[:3] == ["symbol", "bid", "ask"]
        assert "time" not in header
        assert lines[2].split()[:3] == ["EURUSD", "1.08120", "1.08125"]  # prices whole
    assert lines[4].split()[:3] == ["XAUUSD", "1990.12", "1990.60"]


def board_lines(console: Console, board: RichQuoteBoard, width: int) -> list[str]:
    """The board as rendered at ``width`` columns, one string per row."""
    options = console.options.update_width(width)
    return ["".join(s.text for s in line) for line in console.render_lines(board, options, pad=False)]


def test_rich_quote_board_narrower_than_its_names_cuts_names_not_prices() -> None:
    board, console = rich_board(22)
    play(board)
    lines = board_lines(console, board, 22)
    assert all(len(line) <= 22 for line in lines)
    eurusd = lines[2].split()
    assert eurusd[1:3] == ["1.08120", "1.08125"]


def test_rich_quote_board_shorter_than_the_table_is_cut_not_scrolled() -> None:
    board, console = rich_board(40, height=5)
    assert isinstance(console.file, io.StringIO)
    with board:
        for symbol_id in NAMES:
            board.update(quote(symbol_id, 108_000 + symbol_id, 108_010 + symbol_id))
        live = console.file.getvalue()  # what reached the terminal while the board was live
    frames = live.split("\x1b[2K\x1b[1A")[-1]  # the last redraw, after moving back up over the old one
    assert "..." in live  # rows past the terminal's height become one "..." row
    assert "BTCUSD" not in live  # the 5th symbol never reached the screen: nothing scrolled
    assert frames.count("\n") <= 4
    assert "BTCUSD" in console.file.getvalue()  # the last table, printed whole once the board stops


def test_rich_quote_board_colours_moves_and_honours_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    board, console = rich_board(120)
    play(board)
    assert isinstance(console.file, io.StringIO)
    written = console.file.getvalue()  # what reached the terminal
    assert "\x1b[31m1.08120" in written  # the bid went down: red
    assert "\x1b[32m1990.60" in written  # the ask went up: green
    monkeypatch.setenv("NO_COLOR", "1")
    board, console = rich_board(120)  # rich reads NO_COLOR when the console is made
    play(board)
    assert isinstance(console.file, io.StringIO)
    written = console.file.getvalue()
    assert "1.08120" in written
    assert "\x1b[31m" not in written
    assert "\x1b[32m" not in written


def test_rich_console_only_for_terminals(monkeypatch: pytest.MonkeyPatch, with_rich: None) -> None:
    monkeypatch.delenv("TERM", raising=False)
    assert _ui.rich_console(io.StringIO()) is None
    assert _ui.rich_console(Terminal()) is not None
    monkeypatch.setenv("TERM", "dumb")
    assert _ui.rich_console(Terminal()) is None


def test_interrupted_line_is_ended_on_the_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    err, out = Terminal(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(sys, "stdout", out)
    _ui.end_interrupted_line()
    assert (err.getvalue(), out.getvalue()) == ("\n", "")
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    _ui.end_interrupted_line()
    assert out.getvalue() == ""


# -- which account a command uses -------------------------------------------------------------------


def _account(account_id: int, login: int, *, live: bool) -> CtidTraderAccount:
    return CtidTraderAccount(
        ctid_trader_account_id=account_id, is_live=live, trader_login=login, broker_title_short="Broker"
    )


def _settings(account: str | None = None, env: str | None = None, host: str | None = None) -> Settings:
    args = argparse.Namespace(
        env=env,
        port=None,
        account=account,
        host=host,
        ca_file=None,
        oauth_url=None,
        redirect_uri=None,
        client_id="id",
        client_secret="secret",
        access_token="token",
    )
    return Settings.from_args(args)


DEMO_A, DEMO_B, LIVE = (
    _account(11, 501, live=False),
    _account(12, 502, live=False),
    _account(21, 601, live=True),
)
TWIN_DEMO, TWIN_LIVE = _account(31, 777, live=False), _account(41, 777, live=True)  # one login, two brokers


@pytest.mark.parametrize(
    ("accounts", "account", "env", "chosen"),
    [
        ([DEMO_A, DEMO_B, LIVE], None, None, DEMO_A),  # the first account of the (demo) environment
        ([DEMO_A, DEMO_B, LIVE], None, "live", LIVE),
        ([LIVE], None, None, LIVE),  # no environment given and no demo account: the only account
        ([DEMO_A, DEMO_B, LIVE], "502", None, DEMO_B),  # a login
        ([DEMO_A, DEMO_B, LIVE], "12", None, DEMO_B),  # an id
        ([DEMO_A, DEMO_B, LIVE], "601", "demo", LIVE),  # a named account wins over --env
        ([DEMO_A, DEMO_B, LIVE], "live", None, LIVE),
        ([TWIN_DEMO, TWIN_LIVE], "777", "live", TWIN_LIVE),  # --env tells the twins apart
        ([TWIN_DEMO, TWIN_LIVE], "777", "demo", TWIN_DEMO),
    ],
)
def test_choose_account(
    accounts: list[CtidTraderAccount], account: str | None, env: str | None, chosen: CtidTraderAccount
) -> None:
    assert choose_account(accounts, _settings(account, env)) == chosen


@pytest.mark.parametrize(
    ("accounts", "account", "env", "message"),
    [
        (
            [DEMO_A, DEMO_B],
            "999",
            None,
            "no account of the token has the id or login 999; it reaches: 11 (login 501",
        ),
        (
            [DEMO_A, DEMO_B],
            "demo",
            None,
            "the token reaches 2 demo accounts: 11 (login 501, demo, Broker); 12",
        ),
        ([TWIN_DEMO, TWIN_LIVE], "777", None, "777 names 2 accounts"),
        ([DEMO_A], None, "live", "this access token grants no live accounts"),
        ([DEMO_A, DEMO_B], None, None, None),  # (no error: the first demo account)
    ],
)
def test_choose_account_errors(
    accounts: list[CtidTraderAccount], account: str | None, env: str | None, message: str | None
) -> None:
    settings = _settings(account, env)
    if message is None:
        choose_account(accounts, settings)
        return
    with pytest.raises(CLIError, match=re.escape(message)) as raised:
        choose_account(accounts, settings)
    assert raised.value.exit_code == 2


def test_demo_only_refuses_a_live_account_by_login() -> None:
    with pytest.raises(
        CLIError, match=r"21 \(login 601, live, Broker\) is a live account; this command only"
    ):
        choose_account([DEMO_A, LIVE], _settings("601"), demo_only=True)
    assert choose_account([LIVE, DEMO_A], _settings(), demo_only=True) == DEMO_A


def test_the_host_follows_the_account_unless_given() -> None:
    assert _settings().host_for(LIVE) == "live.ctraderapi.com"
    assert _settings(env="live").host_for(DEMO_A) == "demo.ctraderapi.com"
    assert _settings(host="127.0.0.1").host_for(LIVE) == "127.0.0.1"
