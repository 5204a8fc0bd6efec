"""The simulator in its own process, driven over stdin, so it has a core of its own.

Run as ``python -m benchmarks._simproc``: prints the simulator's JSON line, then reads
commands, one a line, and answers each with one line:

* ``burst N [ACCOUNT [SYMBOL]]`` -> ``sent K`` once the K spot events are written;
* ``quit`` -> stops.

The same process also runs a bare TLS echo server (``echo_port`` / ``echo_ca_file`` in the
JSON line), the round-trip baseline, so both servers sit on the same core.
Rate limits are off and the market is paused, so the only spot events are the burst's
(and the first event a subscription brings). ``SimProcess`` is the parent side.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any, Self


async def _serve() -> None:
    from benchmarks._raw import echo_server
    from ctrader_typed.testing._certs import make_certificates

    certs_dir = Path(tempfile.mkdtemp(prefix="ctrader-bench-echo-"))
    certificates = make_certificates(certs_dir)
    echo = await echo_server("127.0.0.1", certificates.server_context())
    try:
        await _run_simulator(
            {"echo_port": echo.sockets[0].getsockname()[1], "echo_ca_file": str(certificates.ca_file)},
        )
    finally:
        echo.close()
        await echo.wait_closed()
        shutil.rmtree(certs_dir, ignore_errors=True)


async def _run_simulator(extra: dict[str, Any]) -> None:
    from ctrader_typed.testing import Simulator

    async with Simulator(
        rate_limits=False,
        spot_interval=3600.0,
        idle_timeout=3600.0,
        heartbeat_interval=60.0,
        spot_log_limit=16,
    ) as sim:
        sim.pause_market(True)
        sys.stdout.write(json.dumps({**sim.connection_info(), **extra}) + "\n")
        sys.stdout.flush()
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            words = line.split()
            if not words or words[0] == "quit":
                return
            if words[0] == "burst":
                n = int(words[1])
                account = int(words[2]) if len(words) > 2 else None
                symbol = int(words[3]) if len(words) > 3 else None
                sent = await sim.burst_spots(n, account_id=account, symbol_id=symbol)
                sys.stdout.write(f"sent {sent}\n")
            else:
                sys.stdout.write(f"error unknown command {words[0]!r}\n")
            sys.stdout.flush()


class ChildProcess:
    """A benchmark server run as ``python -m MODULE``: its first stdout line is a JSON object (host,
    port, ca_file ...), then it answers one command line per request; ``quit`` ends it."""

    MODULE = ""
    """The module that ``python -m`` runs."""
    WHAT = "the child process"
    """What it is called in errors."""

    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None
        self.info: dict[str, Any] = {}

    async def __aenter__(self) -> Self:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.MODULE,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self.info = json.loads(await self._readline(60.0))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            assert process.stdin is not None
            try:
                process.stdin.write(b"quit\n")
                await process.stdin.drain()
                await asyncio.wait_for(process.wait(), 15.0)
            except (TimeoutError, ConnectionError):
                process.kill()
                await process.wait()
        self._process = None

    async def _readline(self, timeout: float) -> str:
        assert self._process is not None
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"{self.WHAT} ended")
        return line.decode()

    @property
    def host(self) -> str:
        return str(self.info["host"])

    @property
    def port(self) -> int:
        return int(self.info["port"])

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting the process's throwaway CA (host name checked)."""
        return ssl.create_default_context(cafile=self.info["ca_file"])


class SimProcess(ChildProcess):
    """Start ``python -m benchmarks._simproc`` and talk to it."""

    MODULE = "benchmarks._simproc"
    WHAT = "the simulator process"

    def echo_ssl_context(self) -> ssl.SSLContext:
        """A client context trusting the echo server's CA (host name checked)."""
        return ssl.create_default_context(cafile=self.info["echo_ca_file"])

    async def burst(self, n: int, account_id: int | None = None, symbol_id: int | None = None) -> int:
        """Ask for a burst of ``n`` spot events per connection; returns once all were written."""
        assert self._process is not None
        assert self._process.stdin is not None
        words = ["burst", str(n)]
        if account_id is not None:
            words.append(str(account_id))
            if symbol_id is not None:
                words.append(str(symbol_id))
        self._process.stdin.write((" ".join(words) + "\n").encode())
        await self._process.stdin.drain()
        answer = (await self._readline(300.0)).split()
        if answer[0] != "sent":
            raise RuntimeError(f"simulator: {' '.join(answer)}")
        return int(answer[1])


if __name__ == "__main__":
    asyncio.run(_serve())
