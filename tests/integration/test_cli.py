"""The ``ctrader-typed`` command line, run as subprocesses against ``ctrader-typed sim``."""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import re
import signal
import socket
import stat
import struct
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from ctrader_typed.oauth import code_from_redirect
from ctrader_typed.tokens import TokenSet
from tests.integration.cli_support import (
    ANSI,
    AT_A_TERMINAL,
    BROWSER_SCRIPT,
    CLI,
    HANG_GUARD,
    Lines,
    SimInfo,
    assert_demo_output,
    at_the_pty_size,
    clean_env,
    fresh_tokens,
    in_process,
    offline_prefix,
    one_error_line,
    one_error_line_of,
    posix_only,
    read_terminal,
    run,
    running_sim,
    sim_env,
    stop_process,
    store_for,
)

if TYPE_CHECKING:
    from ctrader_typed.testing import Simulator


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimInfo]:
    with running_sim(tmp_path_factory.mktemp("sim") / "sim.log") as info:
        yield info


@pytest.fixture
def signed_in(sim: SimInfo, tmp_path: Path) -> dict[str, str]:
    """Environment of a user who ran ``ctrader-typed auth`` (tokens stored in a fresh home)."""
    store_for(sim, tmp_path).save_sync(fresh_tokens(sim))
    return sim_env(sim, tmp_path)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A clean CTRADER_* environment for in-process runs of ``main``."""
    for name in list(os.environ):
        if name.startswith("CTRADER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CTRADER_TYPED_HOME", str(tmp_path))
    return monkeypatch


# -- help -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [[], ["auth"], ["accounts"], ["symbols"], ["quotes"], ["bars"], ["account"], ["demo"], ["sim"]]
)
def test_help_everywhere(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = in_process([*command, "--help"], capsys)
    assert status == 0
    assert out.startswith("usage: ctrader-typed")
    if command and command != ["sim"]:
        assert "CTRADER_CLIENT_ID" in out


def test_help_and_version_as_installed() -> None:
    result = run(["--help"], clean_env())
    assert result.returncode == 0, result.stderr
    for command in ("auth", "accounts", "symbols", "quotes", "bars", "account", "demo", "sim"):
        assert f"    {command} " in result.stdout
    version = run(["--version"], clean_env())
    assert version.returncode == 0
    assert version.stdout.startswith("ctrader-typed ")


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = in_process([], capsys)
    assert status == 2
    assert "usage:" in err


# -- sim --------------------------------------------------------------------------------------------


def test_sim_print_env_lines_are_enough_for_the_other_commands(tmp_path: Path) -> None:
    with (tmp_path / "sim.log").open("w") as err:
        proc = subprocess.Popen(
            [*CLI, "sim", "--print-env"], stdout=subprocess.PIPE, stderr=err, text=True, env=clean_env()
        )
    try:
        lines = Lines(proc)
        script = [lines.next()]
        while not script[-1].startswith("export CTRADER_ACCESS_TOKEN="):  # the last line: ready
            script.append(lines.next())
            assert script[-1], f"output ended early: {script}"
        assert all(line.startswith(("# ", "export CTRADER_")) for line in script), script
        env_file = tmp_path / "sim.env"
        env_file.write_text("".join(script))
        # Only what the lines export: a POSIX shell sources them, then runs the command.
        result = subprocess.run(
            ["sh", "-c", '. "$SIM_ENV" && exec "$@"', "sh", *CLI, "accounts"],
            env=clean_env(CTRADER_TYPED_HOME=str(tmp_path / "home"), SIM_ENV=str(env_file)),
            capture_output=True,
            text=True,
            timeout=HANG_GUARD,
            check=False,
        )
    finally:
        stop_process(proc)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == ["account", "env", "login", "broker"]
    assert not (tmp_path / "home").exists()  # the exported access token was used; nothing stored


def test_sim_prints_its_connection_details_first(sim: SimInfo) -> None:
    assert {
        "host",
        "port",
        "oauth_url",
        "ca_file",
        "client_id",
        "client_secret",
        "access_token",
        "refresh_token",
        "accounts",
    } <= set(sim)
    assert Path(sim["ca_file"]).is_file()


def test_sim_prints_its_websocket_and_json_endpoints(sim: SimInfo) -> None:
    assert sim["websocket_url"] == f"wss://{sim['host']}:{sim['port']}"  # the same port as TLS
    assert isinstance(sim["json_port"], int)
    assert sim["json_port"] != sim["port"]
    assert sim["json_websocket_url"] == f"wss://{sim['host']}:{sim['json_port']}"


def test_commands_over_websocket(signed_in: dict[str, str]) -> None:
    over_tls = run(["symbols", "--search", "usd"], signed_in)
    over_websocket = run(["symbols", "--search", "usd", "--transport", "websocket"], signed_in)
    assert over_tls.returncode == over_websocket.returncode == 0, over_websocket.stderr
    assert over_websocket.stdout == over_tls.stdout
    assert "over WebSocket" in over_websocket.stderr
    from_env = run(["accounts"], {**signed_in, "CTRADER_TRANSPORT": "websocket"})
    assert from_env.returncode == 0, from_env.stderr
    wrong = run(["accounts"], {**signed_in, "CTRADER_TRANSPORT": "carrier-pigeon"})
    assert wrong.returncode == 2
    assert "CTRADER_TRANSPORT must be 'tls' or 'websocket'" in wrong.stderr


# -- auth -------------------------------------------------------------------------------------------


def _assert_stored(sim: SimInfo, home: Path, result: subprocess.CompletedProcess[str]) -> TokenSet:
    assert result.returncode == 0, result.stderr
    store = store_for(sim, home)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    tokens = store.load_sync()
    assert tokens is not None
    assert tokens.scope == "trading"
    output = result.stdout + result.stderr
    for secret in (sim["client_secret"], tokens.access_token, tokens.refresh_token):
        assert secret not in output
    assert "Signed in" in result.stdout
    return tokens


def test_auth_manual_with_pasted_redirect_url(sim: SimInfo, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*CLI, "auth", "--manual"],
        env=sim_env(sim, tmp_path),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = Lines(proc)
        url = lines.until("http")
        assert url.startswith(sim["oauth_url"] + "/my/settings/openapi/grantingaccess/?")
        location = httpx.get(url, follow_redirects=False, trust_env=False).headers["location"]
        assert proc.stdin is not None
        proc.stdin.write(location + "\n")
        proc.stdin.close()
        proc.wait(timeout=HANG_GUARD)
        stdout = lines.rest()
        assert proc.stderr is not None
        stderr = proc.stderr.read()
    finally:
        stop_process(proc)
    _assert_stored(sim, tmp_path, subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))


def test_auth_manual_with_a_used_code_fails_with_a_hint(sim: SimInfo, tmp_path: Path) -> None:
    env = sim_env(sim, tmp_path)
    # A code obtained (and spent) elsewhere: the exchange must fail cleanly.
    tokens_dir = tmp_path / "unused"
    with httpx.Client(trust_env=False) as http:
        auth_url = f"{sim['oauth_url']}/apps/auth?client_id={sim['client_id']}&redirect_uri={sim['redirect_uri']}&scope=trading"
        code = code_from_redirect(http.get(auth_url).headers["location"])
        params = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": sim["redirect_uri"],
            "client_id": sim["client_id"],
            "client_secret": sim["client_secret"],
        }
        assert "accessToken" in http.get(f"{sim['oauth_url']}/apps/token", params=params).json()
    result = run(["auth", "--manual", "--token-dir", str(tokens_dir)], env, stdin=code + "\n")
    assert result.returncode == 1
    line = one_error_line(result, "auth")
    assert "INVALID_GRANT" in line
    assert "once" in line
    assert code not in result.stdout + result.stderr
    assert not tokens_dir.exists()


@posix_only
def test_auth_in_browser_follows_the_redirect_to_the_local_server(sim: SimInfo, tmp_path: Path) -> None:
    browser = tmp_path / "browser.py"
    browser.write_text(BROWSER_SCRIPT)
    env = sim_env(sim, tmp_path, BROWSER=f"{sys.executable} {browser} %s")
    result = run(["auth", "--redirect-uri", "http://127.0.0.1:0/auth/callback", "--timeout", "180"], env)
    _assert_stored(sim, tmp_path, result)
    assert "browser: 200 /auth/callback" in result.stderr
    assert "Opening your browser" in result.stdout


def test_auth_no_browser_waits_for_the_redirect(sim: SimInfo, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*CLI, "auth", "--no-browser", "--redirect-uri", "http://localhost:0/auth/callback"],
        env=sim_env(sim, tmp_path, BROWSER="false"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = Lines(proc)
        url = lines.until("http")
        page = httpx.get(url, follow_redirects=True, trust_env=False, timeout=HANG_GUARD)
        proc.wait(timeout=HANG_GUARD)
        stdout = lines.rest()
        assert proc.stderr is not None
        stderr = proc.stderr.read()
    finally:
        stop_process(proc)
    assert page.status_code == 200
    assert "Signed in" in page.text
    _assert_stored(sim, tmp_path, subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))


def test_auth_times_out_cleanly(sim: SimInfo, tmp_path: Path) -> None:
    env = sim_env(sim, tmp_path)
    result = run(["auth", "--no-browser", "--redirect-uri", "http://127.0.0.1:0/cb", "--timeout", "0.5"], env)
    assert result.returncode == 1
    assert "CALLBACK_TIMEOUT" in one_error_line(result, "auth")
    assert not store_for(sim, tmp_path).path.exists()


def test_auth_refuses_a_non_loopback_redirect_for_the_local_server(sim: SimInfo, tmp_path: Path) -> None:
    result = run(["auth", "--redirect-uri", "https://example.com/cb"], sim_env(sim, tmp_path))
    assert result.returncode == 2
    assert "--manual" in one_error_line(result, "auth")


# -- accounts, symbols ------------------------------------------------------------------------------


def test_accounts_lists_demo_and_live_and_marks_the_default(sim: SimInfo, signed_in: dict[str, str]) -> None:
    result = run(["accounts"], signed_in)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["account", "env", "login", "broker"]
    rows = [line.split() for line in lines[2:]]
    first_demo = sim["accounts"][0]
    assert ["*", str(first_demo), "demo"] == rows[0][:3]
    listed = {int(r[1]) if r[0] == "*" else int(r[0]) for r in rows}
    assert listed == set(sim["accounts"])
    assert any("live" in r for r in rows)
    assert "listing the accounts" in result.stderr  # progress goes to stderr


def test_live_env_picks_the_live_account(sim: SimInfo, signed_in: dict[str, str], tmp_path: Path) -> None:
    tokens = store_for(sim, tmp_path).load_sync()
    assert tokens is not None
    env = {**signed_in, "CTRADER_ENV": "live", "CTRADER_ACCESS_TOKEN": tokens.access_token}
    result = run(["accounts"], env)
    assert result.returncode == 0, result.stderr
    starred = [line for line in result.stdout.splitlines() if line.startswith("* ")]
    assert starred == [line for line in starred if "live" in line]
    assert str(sim["live_accounts"][0]) in starred[0]


def test_symbols_search(signed_in: dict[str, str]) -> None:
    everything = run(["symbols"], signed_in)
    found = run(["symbols", "--search", "usd"], signed_in)
    assert everything.returncode == found.returncode == 0
    all_rows = everything.stdout.splitlines()[2:]
    rows = found.stdout.splitlines()[2:]
    assert 0 < len(rows) < len(all_rows)
    assert all("usd" in row.lower() for row in rows)
    assert any(row.split()[1] == "EURUSD" for row in rows)


# -- quotes -----------------------------------------------------------------------------------------


def test_quotes_with_count(signed_in: dict[str, str]) -> None:
    result = run(["quotes", "EURUSD", "gbpusd", "--count", "6"], signed_in)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 6
    for line in lines:
        _stamp, name, bid_word, bid, ask_word, ask = line.split()
        assert name in {"EURUSD", "GBPUSD"}
        assert (bid_word, ask_word) == ("bid", "ask")
        if bid != "-" and ask != "-":
            assert Decimal(bid) <= Decimal(ask)
    assert {line.split()[1] for line in lines} == {"EURUSD", "GBPUSD"}  # both first quotes arrive


def test_quotes_for_a_duration(signed_in: dict[str, str]) -> None:
    result = run(["quotes", "EURUSD", "--duration", "0.5"], signed_in)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # How many quotes fit in half a second depends on the machine; that the count is reported right does not.
    assert all(" EURUSD bid " in line for line in lines), lines
    assert result.stderr.splitlines()[-1] == f"{len(lines)} quotes"


@posix_only
def test_quotes_until_ctrl_c(signed_in: dict[str, str], tmp_path: Path) -> None:
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as err:  # a file, not a pipe nobody reads while waiting
        proc = subprocess.Popen(
            [*AT_A_TERMINAL, *CLI, "quotes", "EURUSD"],
            env=signed_in,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        lines = Lines(proc)
        first = lines.next()  # quotes are printed from inside the loop that Ctrl-C ends: ready
        second = lines.next()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=HANG_GUARD)
    finally:
        stop_process(proc)
    stderr = errors.read_text()
    assert "EURUSD bid" in first
    assert "EURUSD" in second
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "press Ctrl-C to stop" in stderr
    assert not stderr.endswith("\n\n")  # the newline after ^C is for terminals only


@posix_only
def test_quotes_board_in_a_narrow_terminal(signed_in: dict[str, str]) -> None:
    pytest.importorskip("rich", reason="the 'cli' extra (rich) is not installed")
    import fcntl  # POSIX only, like pty and termios
    import pty
    import termios

    master, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 12, 40, 0, 0))  # 12 rows, 40 columns
    env = {**at_the_pty_size(signed_in), "TERM": "xterm-256color", "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [*AT_A_TERMINAL, *CLI, "quotes", "EURUSD", "GBPUSD"], env=env, stdin=child, stdout=child, stderr=child
    )
    os.close(child)
    seen = bytearray()
    try:
        read_terminal(master, re.compile(rb"GBPUSD +\d+\.\d{5} +\d+\.\d{5}"), seen)  # a board row: ready
        proc.send_signal(signal.SIGINT)
        read_terminal(master, re.compile(rb"(?!)"), seen)  # everything, up to the end
        proc.wait(timeout=HANG_GUARD)
    finally:
        stop_process(proc)
        os.close(master)
    text = ANSI.sub(b"", bytes(seen)).decode()
    assert proc.returncode == 0, text
    assert "Traceback" not in text
    rows = [row for row in re.split(r"[\r\n]+", text) if row.startswith(("symbol", "EURUSD ", "GBPUSD "))]
    assert rows
    assert all(len(row.rstrip()) <= 40 for row in rows), rows  # the board fits: nothing wraps
    assert "time (UTC)" not in text  # no room for the time column at 40 columns
    assert bytes(seen).endswith(b"\r\n")  # after ^C the prompt starts on a line of its own


# -- bars -------------------------------------------------------------------------------------------


def test_bars_csv_between_dates(signed_in: dict[str, str]) -> None:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    start = end - timedelta(days=2)
    result = run(
        [
            "bars",
            "EURUSD",
            "--period",
            "h1",
            "--from",
            start.isoformat(),
            "--to",
            end.isoformat(),
            "--format",
            "csv",
        ],
        signed_in,
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows, "no bars"
    assert list(rows[0]) == ["time", "open", "high", "low", "close", "tick_volume"]
    times = [datetime.fromisoformat(r["time"].replace("Z", "+00:00")) for r in rows]
    assert times == sorted(set(times))
    assert start <= times[0]
    assert times[-1] <= end
    for r in rows:
        low, high = Decimal(r["low"]), Decimal(r["high"])
        assert low <= Decimal(r["open"]) <= high
        assert low <= Decimal(r["close"]) <= high
    assert f"{len(rows)} bars" in result.stderr


def test_bars_table_with_count(signed_in: dict[str, str]) -> None:
    result = run(["bars", "1", "--period", "M15", "--count", "7"], signed_in)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["time", "open", "high", "low", "close", "tick_volume"]
    assert set(lines[1]) <= {"-", " "}
    assert len(lines) == 2 + 7


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_bars_plot_draws_a_candlestick_png(signed_in: dict[str, str], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the 'plot' extra (matplotlib) is not installed")
    from matplotlib.image import imread

    chart = tmp_path / "eurusd.png"
    result = run(
        [
            "bars",
            "EURUSD",
            "--period",
            "M15",
            "--count",
            "60",
            "--plot",
            str(chart),
            "--plot-size",
            "640x480",
        ],
        signed_in,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # --plot without --format: the chart only
    assert f"drawing 60 bars into {chart} ... ok" in result.stderr
    data = chart.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (640, 480)
    pixels = imread(str(chart))  # decodes as a whole: a valid image
    assert pixels.shape[:2] == (480, 640)
    rgb = (pixels[..., :3] * 255).round().astype(int).reshape(-1, 3).tolist()
    colours = {tuple(px) for px in rgb}
    assert (0x26, 0xA6, 0x9A) in colours  # rising bodies
    assert (0xEF, 0x53, 0x50) in colours  # falling bodies


def test_bars_plot_and_csv_together(signed_in: dict[str, str], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the 'plot' extra (matplotlib) is not installed")
    chart = tmp_path / "usdjpy.svg"
    result = run(
        ["bars", "USDJPY", "--period", "H4", "--count", "12", "--plot", str(chart), "--format", "csv"],
        signed_in,
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 12
    assert re.fullmatch(r"\d+\.\d{3}", rows[0]["close"])  # USDJPY's 3 digits
    assert chart.read_text().lstrip().startswith("<?xml")


def test_bars_plot_without_matplotlib_names_the_extra(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cli_env.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    cli_env.setenv("CTRADER_CLIENT_ID", "1_x")
    cli_env.setenv("CTRADER_CLIENT_SECRET", "y")
    cli_env.setenv("CTRADER_PORT", "1")  # nothing listens there: no connection may be attempted
    status, _, err = in_process(["bars", "EURUSD", "--plot", str(tmp_path / "chart.png")], capsys)
    assert status == 2
    assert (
        "--plot needs the 'plot' extra (matplotlib): pip install 'ctrader-typed[plot]'"
        in one_error_line_of(err, "bars")
    )
    assert not (tmp_path / "chart.png").exists()


@pytest.mark.parametrize(
    ("plot", "size", "expected"),
    [
        (
            "chart.txt",
            "1200x600",
            "--plot writes .jpeg, .jpg, .pdf, .png, .svg, .webp files, not 'chart.txt'",
        ),
        ("missing/chart.png", "1200x600", "does not exist"),
        ("chart.png", "big", "--plot-size takes WIDTHxHEIGHT in pixels"),
        ("chart.png", "50x50", "--plot-size takes WIDTHxHEIGHT in pixels"),
    ],
)
def test_bars_plot_bad_target_fails_before_connecting(
    plot: str,
    size: str,
    expected: str,
    cli_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    pytest.importorskip("matplotlib", reason="the 'plot' extra (matplotlib) is not installed")
    cli_env.setenv("CTRADER_CLIENT_ID", "1_x")
    cli_env.setenv("CTRADER_CLIENT_SECRET", "y")
    cli_env.setenv("CTRADER_PORT", "1")
    status, _, err = in_process(
        ["bars", "EURUSD", "--plot", str(tmp_path / plot), "--plot-size", size], capsys
    )
    assert status == 2
    assert expected in one_error_line_of(err, "bars")


# -- one-line errors --------------------------------------------------------------------------------


def test_unknown_symbol(signed_in: dict[str, str]) -> None:
    result = run(["bars", "EURUSDX", "--period", "H1"], signed_in)
    assert result.returncode == 2
    assert "unknown symbol 'EURUSDX' (did you mean EURUSD?)" in one_error_line(result, "bars")


def test_unknown_symbol_in_quotes(signed_in: dict[str, str]) -> None:
    result = run(["quotes", "EURUSD", "NOPE", "--count", "1"], signed_in)
    assert result.returncode == 2
    assert "unknown symbol 'NOPE'" in one_error_line(result, "quotes")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["bars", "EURUSD", "--period", "H2"], "unknown period 'H2'; choose one of M1,"),
        (["bars", "EURUSD", "--from", "yesterday-ish"], "cannot read 'yesterday-ish' as a time"),
        (["bars", "EURUSD", "--from", "2024-02-01", "--to", "2024-01-01"], "is after --to"),
        (["quotes", "EURUSD", "--count", "0"], "--count must be at least 1"),
    ],
)
def test_bad_input_fails_before_connecting(
    args: list[str], expected: str, cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_env.setenv("CTRADER_CLIENT_ID", "1_x")
    cli_env.setenv("CTRADER_CLIENT_SECRET", "y")
    cli_env.setenv("CTRADER_PORT", "1")  # nothing listens there: no connection may be attempted
    status, _, err = in_process(args, capsys)
    assert status == 2
    assert expected in one_error_line_of(err, args[0])


@pytest.mark.parametrize(
    "command", [["accounts"], ["symbols"], ["quotes", "EURUSD"], ["bars", "EURUSD"], ["auth"]]
)
def test_missing_credentials(
    command: list[str], cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_env.setenv("CTRADER_CLIENT_ID", "only-the-id")
    status, _, err = in_process(command, capsys)
    assert status == 2
    assert "missing application credentials: set CTRADER_CLIENT_SECRET" in one_error_line_of(err, command[0])


def test_missing_credentials_as_installed(tmp_path: Path) -> None:
    result = run(["accounts"], clean_env(CTRADER_TYPED_HOME=str(tmp_path)))
    assert result.returncode == 2
    assert "set CTRADER_CLIENT_ID and CTRADER_CLIENT_SECRET" in one_error_line(result, "accounts")


def test_bad_environment_name(cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    cli_env.setenv("CTRADER_ENV", "staging")
    status, _, err = in_process(["accounts"], capsys)
    assert status == 2
    assert "CTRADER_ENV must be 'demo' or 'live'" in one_error_line_of(err, "accounts")


def test_no_stored_tokens(sim: SimInfo, tmp_path: Path) -> None:
    result = run(["accounts"], sim_env(sim, tmp_path))
    assert result.returncode == 2
    assert "run 'ctrader-typed auth' first" in one_error_line(result, "accounts")


def test_expired_token_is_refreshed_and_stored(sim: SimInfo, tmp_path: Path) -> None:
    tokens = fresh_tokens(sim)
    expired = TokenSet(
        tokens.access_token, tokens.refresh_token, expires_at=datetime.now(UTC) - timedelta(hours=1)
    )
    store = store_for(sim, tmp_path)
    store.save_sync(expired)
    result = run(["accounts"], sim_env(sim, tmp_path))
    assert result.returncode == 0, result.stderr
    assert "refreshing the expired access token" in result.stderr
    renewed = store.load_sync()
    assert renewed is not None
    assert renewed.refresh_token != tokens.refresh_token
    assert not renewed.expires_within(3600)


def test_expired_token_that_cannot_be_refreshed(sim: SimInfo, tmp_path: Path) -> None:
    store_for(sim, tmp_path).save_sync(
        TokenSet("stale-access", "used-refresh", expires_at=datetime.now(UTC) - timedelta(days=1))
    )
    result = run(["symbols"], sim_env(sim, tmp_path))
    assert result.returncode == 1
    line = one_error_line(result, "symbols")
    assert "expired" in line
    assert "run 'ctrader-typed auth'" in line
    assert "used-refresh" not in result.stderr


def test_revoked_token_is_refreshed_once_over_the_socket(sim: SimInfo, tmp_path: Path) -> None:
    tokens = fresh_tokens(sim)
    store = store_for(sim, tmp_path)
    store.save_sync(TokenSet("revoked-access-token", tokens.refresh_token, expires_at=tokens.expires_at))
    result = run(["accounts"], sim_env(sim, tmp_path))
    assert result.returncode == 0, result.stderr
    assert "refreshing it" in result.stderr
    renewed = store.load_sync()
    assert renewed is not None
    assert renewed.access_token not in {"revoked-access-token", tokens.access_token}


def test_refused_token_without_refresh_is_one_line(sim: SimInfo, tmp_path: Path) -> None:
    env = sim_env(sim, tmp_path, CTRADER_ACCESS_TOKEN="not-a-token")
    result = run(["accounts"], env)
    assert result.returncode == 1
    line = one_error_line(result, "accounts")
    assert "CH_ACCESS_TOKEN_INVALID" in line
    assert "ctrader-typed auth" in line
    assert "not-a-token" not in result.stderr


def test_unknown_account(sim: SimInfo, signed_in: dict[str, str]) -> None:
    result = run(["symbols", "--account", "123"], signed_in)
    assert result.returncode == 2
    line = one_error_line(result, "symbols")
    assert "no account of the token has the id or login 123" in line
    assert f"{sim['accounts'][0]} (login " in line  # what the token does reach


# -- --account: a login, an id, live or demo --------------------------------------------------------

SIM_LOGINS = {44_000_001: 5_100_001, 44_000_002: 5_100_002, 44_000_101: 1_200_001}
"""Accounts of the simulator's default token and their trader logins (the logins cTrader shows)."""


def authorized_account(result: subprocess.CompletedProcess[str]) -> int:
    """The account a command authorised, from its progress line on stderr."""
    found = re.findall(r"authorizing account (\d+) \.\.\. ok", result.stderr)
    assert len(found) == 1, result.stderr
    return int(found[0])


def test_the_sim_accounts_have_the_logins_these_tests_use(sim: SimInfo, signed_in: dict[str, str]) -> None:
    result = run(["accounts"], signed_in)
    assert result.returncode == 0, result.stderr
    logins = {int(row.split()[-4]): int(row.split()[-2]) for row in result.stdout.splitlines()[2:]}
    assert SIM_LOGINS.items() <= logins.items()


@pytest.mark.parametrize(
    ("choice", "account"),
    [("5100002", 44_000_002), ("44000002", 44_000_002), ("1200001", 44_000_101), ("live", 44_000_101)],
)
def test_account_by_login_id_or_kind(signed_in: dict[str, str], choice: str, account: int) -> None:
    result = run(["symbols", "--account", choice, "--search", "EURUSD"], signed_in)
    assert result.returncode == 0, result.stderr
    assert authorized_account(result) == account
    assert "EURUSD" in result.stdout


def test_account_from_the_environment_variable(signed_in: dict[str, str]) -> None:
    result = run(["symbols", "--search", "EURUSD"], {**signed_in, "CTRADER_ACCOUNT_ID": "5100002"})
    assert result.returncode == 0, result.stderr
    assert authorized_account(result) == 44_000_002


def test_accounts_marks_the_account_chosen_by_login(signed_in: dict[str, str]) -> None:
    result = run(["accounts", "--account", "1200001"], signed_in)
    assert result.returncode == 0, result.stderr
    starred = [line for line in result.stdout.splitlines() if line.startswith("* ")]
    assert len(starred) == 1
    assert starred[0].split()[1:3] == ["44000101", "live"]


def test_ambiguous_account_kind_lists_the_candidates(signed_in: dict[str, str]) -> None:
    result = run(["symbols", "--account", "demo"], signed_in)  # the simulator grants several demo accounts
    assert result.returncode == 2
    line = one_error_line(result, "symbols")
    assert "demo accounts" in line
    assert "44000001 (login 5100001, demo, SimBroker)" in line
    assert "44000002 (login 5100002, demo, SimBroker)" in line
    assert "give the account's id or login" in line


def test_a_named_account_wins_over_the_environment(signed_in: dict[str, str]) -> None:
    # --env (here as the simulator's export lines set it) only chooses the default account.
    result = run(
        ["symbols", "--account", "1200001", "--search", "EURUSD"], {**signed_in, "CTRADER_ENV": "demo"}
    )
    assert result.returncode == 0, result.stderr
    assert authorized_account(result) == 44_000_101


def test_demo_refuses_a_live_account_by_login(signed_in: dict[str, str]) -> None:
    result = run(["demo", "--account", "1200001"], signed_in)
    assert result.returncode == 2
    line = one_error_line(result, "demo")
    assert "is a live account; this command only uses demo accounts" in line
    assert "authorizing" not in result.stderr + result.stdout


def test_malformed_account_fails_before_connecting(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_env.setenv("CTRADER_CLIENT_ID", "1_x")
    cli_env.setenv("CTRADER_CLIENT_SECRET", "y")
    cli_env.setenv("CTRADER_PORT", "1")  # nothing listens there: no connection may be attempted
    status, _, err = in_process(["symbols", "--account", "my-account"], capsys)
    assert status == 2
    assert "--account takes an account id, a trader login" in one_error_line_of(err, "symbols")


async def test_the_host_follows_the_account(ctrader_simulator: Simulator) -> None:
    """Without a given host, a live account is authorised on the live host (here: another name
    of the same simulator), after the account list was read on the environment's host."""
    from ctrader_typed._cli._common import Progress, Settings
    from ctrader_typed._cli._session import open_session

    sim = ctrader_simulator
    settings = Settings(
        environment="demo",
        host="localhost",
        host_given=False,
        hosts={"demo": "localhost", "live": "127.0.0.1"},
        port=sim.port,
        ca_file=str(sim.ca_file),
        oauth_url=sim.oauth_url,
        redirect_uri=sim.redirect_uri,
        client_id=sim.client_id,
        client_secret=sim.client_secret,
        access_token=sim.access_token,
        account=1_200_001,
    )
    log = io.StringIO()
    async with open_session(settings, Progress(log), reconnect=False) as session:
        assert session.account is not None
        assert session.account.is_live
        assert session.account_id == 44_000_101
        trader = await session.client.send_trader_req(session.account_id)
        assert trader.trader.trader_login == 1_200_001
    steps = [line for line in log.getvalue().splitlines() if line.startswith("- ")]
    assert [step.split(" ... ")[0] for step in steps] == [
        f"- connecting to localhost:{sim.port}",
        "- authenticating the application",
        "- listing the accounts of the access token",
        f"- connecting to 127.0.0.1:{sim.port}",
        "- authenticating the application",
        "- authorizing account 44000101",
    ]
    assert "is a live account: it is served by 127.0.0.1" in log.getvalue()
    demo = dataclasses.replace(settings, account=5_100_002)
    log = io.StringIO()
    async with open_session(demo, Progress(log), reconnect=False) as session:
        assert session.account_id == 44_000_002
    assert "127.0.0.1" not in log.getvalue()  # a demo account stays on the demo host


def test_untrusted_server_certificate(sim: SimInfo, signed_in: dict[str, str]) -> None:
    env = {k: v for k, v in signed_in.items() if k != "CTRADER_CA_FILE"}
    result = run(["accounts"], env)
    assert result.returncode == 1
    line = one_error_line(result, "accounts")
    assert f"cannot connect to {sim['host']}:{sim['port']}" in line


def test_nothing_listening(signed_in: dict[str, str]) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago; nothing listens there now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run(["accounts"], {**signed_in, "CTRADER_PORT": str(port)})
    assert result.returncode == 1
    assert "cannot connect to 127.0.0.1" in one_error_line(result, "accounts")


# -- demo -------------------------------------------------------------------------------------------


def test_demo_without_credentials_uses_the_simulator(tmp_path: Path) -> None:
    prefix = offline_prefix() or []
    result = subprocess.run(
        [*prefix, *CLI, "demo"],
        env=clean_env(CTRADER_TYPED_HOME=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert_demo_output(result.stdout)
    assert not any(tmp_path.iterdir()), "the offline demo must not store tokens"


def test_demo_with_credentials_but_no_tokens_explains_and_simulates(tmp_path: Path) -> None:
    env = clean_env(CTRADER_TYPED_HOME=str(tmp_path), CTRADER_CLIENT_ID="1_x", CTRADER_CLIENT_SECRET="y")
    result = run(["demo", "--quotes", "3"], env)
    assert result.returncode == 0, result.stderr
    assert "run 'ctrader-typed auth'" in result.stdout
    assert_demo_output(result.stdout)


def test_demo_with_credentials_and_tokens_runs_the_real_path(signed_in: dict[str, str]) -> None:
    # The "real" path, pointed at the simulator through CTRADER_HOST: stored tokens, no OAuth step.
    result = run(["demo", "--symbol", "GBPUSD"], signed_in)
    assert result.returncode == 0, result.stderr
    assert "with your stored tokens" in result.stdout
    assert "GBPUSD" in result.stdout
    assert "ORDER_ACCEPTED then ORDER_FILLED" in result.stdout
    assert "built-in simulator" not in result.stdout


def test_demo_refuses_live(signed_in: dict[str, str]) -> None:
    result = run(["demo"], {**signed_in, "CTRADER_ENV": "live", "CTRADER_ACCESS_TOKEN": "any"})
    assert result.returncode == 2
    assert "demo accounts" in one_error_line(result, "demo")
