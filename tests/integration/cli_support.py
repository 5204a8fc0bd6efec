"""What the CLI tests share: running ``ctrader-typed`` and ``ctrader-typed sim`` as subprocesses.

Used by test_cli.py, test_cli_account.py, test_cli_install.py and the example tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import queue
import re
import select
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from ctrader_typed.cli import main
from ctrader_typed.oauth import AsyncAuth, code_from_redirect
from ctrader_typed.tokens import FileTokenStore, TokenSet

posix_only = pytest.mark.skipif(os.name != "posix", reason="signals and file modes")

_SCRIPT = Path(sys.executable).with_name("ctrader-typed")
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "ctrader_typed.cli"]

SimInfo = dict[str, Any]

HANG_GUARD = 180.0
"""Seconds before a wait on a subprocess counts as a hang. Only a guard: every wait below ends on
something the CLI prints or on its exit, never on elapsed time, so a loaded machine is only slower."""

AT_A_TERMINAL = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])",
]
"""Run a command with SIGINT at its default, as in a terminal's foreground. A job started in the
background of a non-interactive shell (``pytest ... &``) inherits SIGINT *ignored*; programs keep
that, so ``kill -INT`` would not be the Ctrl-C these tests mean."""


class Lines:
    """Lines of a subprocess's stdout, read by a thread so that waiting can time out."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self._queue: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put("")

    def next(self, timeout: float = HANG_GUARD) -> str:
        """The next line ('' at end of output)."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output within {timeout}s") from None

    def until(self, prefix: str, timeout: float = HANG_GUARD) -> str:
        while True:
            line = self.next(timeout)
            assert line, f"output ended before a line starting with {prefix!r}"
            if line.startswith(prefix):
                return line.strip()

    def rest(self) -> str:
        self._thread.join(timeout=HANG_GUARD)
        lines = []
        while not self._queue.empty():
            lines.append(self._queue.get())
        return "".join(lines)


def stop_process(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=HANG_GUARD)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTRADER_") and k != "BROWSER"}
    env.update(extra)
    return env


@contextlib.contextmanager
def running_sim(log: Path) -> Iterator[SimInfo]:
    """``ctrader-typed sim`` in a subprocess; yields the JSON object of its first line."""
    with log.open("w") as err:
        proc = subprocess.Popen(
            [*CLI, "sim", "--spot-interval", "0.05"],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=clean_env(),
        )
    try:
        info: SimInfo = json.loads(Lines(proc).next())  # the JSON line: the simulator is ready
        yield info
    finally:
        stop_process(proc)


def sim_env(sim: SimInfo, home: Path, **extra: str) -> dict[str, str]:
    return clean_env(
        CTRADER_CLIENT_ID=sim["client_id"],
        CTRADER_CLIENT_SECRET=sim["client_secret"],
        CTRADER_HOST=sim["host"],
        CTRADER_PORT=str(sim["port"]),
        CTRADER_CA_FILE=sim["ca_file"],
        CTRADER_OAUTH_URL=sim["oauth_url"],
        CTRADER_TYPED_HOME=str(home),
        **extra,
    )


def run(
    args: list[str], env: Mapping[str, str], *, stdin: str | None = None, timeout: float = HANG_GUARD
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env=dict(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def fresh_tokens(sim: SimInfo) -> TokenSet:
    """A new grant from the simulator, obtained over its OAuth endpoints."""

    async def grant() -> TokenSet:
        async with AsyncAuth(
            sim["client_id"], sim["client_secret"], sim["redirect_uri"], base_url=sim["oauth_url"]
        ) as auth:
            async with httpx.AsyncClient(trust_env=False) as http:
                reply = await http.get(auth.get_auth_uri("trading", state="s"))
            return await auth.get_token(code_from_redirect(reply.headers["location"], state="s"))

    return asyncio.run(grant())


def store_for(sim: SimInfo, home: Path) -> FileTokenStore:
    return FileTokenStore.for_client(sim["client_id"], "demo", directory=home)


def one_error_line(result: subprocess.CompletedProcess[str], command: str) -> str:
    return one_error_line_of(result.stderr, command)


def one_error_line_of(stderr: str, command: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith(f"ctrader-typed {command}: error: ")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    return errors[0]


def in_process(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``main`` in this process (for checks that need no server): status, stdout, stderr."""
    try:
        status = main(args)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return status, captured.out, captured.err


BROWSER_SCRIPT = textwrap.dedent(
    """
    # A stand-in for a web browser, run through $BROWSER: follows redirects like one.
    import sys, httpx
    reply = httpx.get(sys.argv[1], follow_redirects=True, trust_env=False, timeout=180)
    sys.stderr.write(f"browser: {reply.status_code} {reply.url.path}\\n")
    """
)


ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def read_terminal(master: int, until: re.Pattern[bytes], seen: bytearray) -> None:
    """Read what a program wrote to its terminal into ``seen`` until ``until`` matches (or it ends)."""
    while until.search(ANSI.sub(b"", bytes(seen))) is None:
        ready, _, _ = select.select([master], [], [], HANG_GUARD)
        assert ready, f"nothing matching {until.pattern!r} within {HANG_GUARD}s: {bytes(seen)[-500:]!r}"
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other side is closed
            chunk = b""
        if not chunk:
            return
        seen.extend(chunk)


def at_the_pty_size(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without COLUMNS/LINES (set in pytest-xdist's workers): they would win over the pty's size."""
    return {k: v for k, v in env.items() if k not in {"COLUMNS", "LINES"}}


DEMO_STEPS = [
    "starting the built-in simulator ... ok",
    "exchanging the code for tokens (OAuth /apps/token) ... ok",
    "authenticating the application (ApplicationAuthReq) ... ok",
    "listing the token's accounts",
    "authorizing account",
    "fetching the symbol list (SymbolsListReq) ... ok",
    "quote 3: EURUSD bid",
    "ORDER_ACCEPTED then ORDER_FILLED: position",
    " opened at 1.",
    "closing position",
    "gross profit",
    "fetching a page of H1 bars of EURUSD (GetTrendbarsReq) ... ok",
    "nothing left this machine",
    "Demo finished.",
]


def assert_demo_output(stdout: str, *, simulated: bool = True) -> None:
    position = 0
    for step in DEMO_STEPS if simulated else DEMO_STEPS[2:-2]:
        found = stdout.find(step, position)
        assert found >= 0, f"missing or out of order: {step!r}\n{stdout}"
        position = found
    # Prices with EURUSD's 5 digits, never a float's shortest form ("opened at 1.0405").
    assert re.search(r" opened at \d+\.\d{5}\n", stdout), stdout
    assert re.search(r" closed at \d+\.\d{5}: ", stdout), stdout


@functools.cache
def offline_prefix() -> list[str] | None:
    """A command prefix that runs a program with no network but loopback (Linux), if available."""
    prefix = ["unshare", "-rn", "sh", "-c", 'ip link set lo up && exec "$0" "$@"']
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return None
    try:
        probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=HANG_GUARD, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return prefix if probe.returncode == 0 else None
