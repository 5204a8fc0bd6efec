"""``ctrader-typed sim``: run the simulator standalone until interrupted.

The first line on stdout is one JSON object with the connection details (host, port,
oauth_url, ca_file, client_id, client_secret, access_token, refresh_token, accounts, ...).
On a terminal, ready-to-paste ``export CTRADER_...=...`` lines for the other ``ctrader-typed``
commands follow it; ``--print-env`` prints only those lines (valid POSIX shell), ``--json``
only the JSON line. Everything printed is a secret of the throwaway simulator only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import shlex
import signal
import sys
from collections.abc import Mapping

__all__ = ["add_sim_arguments", "env_lines", "run_sim", "sim_main"]


def add_sim_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``sim`` options to ``parser`` (for the main CLI's subcommand)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TLS protobuf port (default: any free port)")
    parser.add_argument("--http-port", type=int, default=0, help="OAuth HTTP port (default: any free port)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated market (default 0)")
    parser.add_argument(
        "--spot-interval", type=float, default=0.2, help="seconds between quotes of a symbol (default 0.2)"
    )
    parser.add_argument(
        "--idle-timeout", type=float, default=30.0, help="close connections silent this long (default 30)"
    )
    parser.add_argument(
        "--heartbeat-interval",
        type=float,
        default=10.0,
        help="server heartbeat after this much silence (default 10)",
    )
    parser.add_argument(
        "--no-rate-limits", action="store_true", help="do not enforce the request rate limits"
    )
    parser.add_argument(
        "--spot-timestamps",
        choices=("clock", "sequence"),
        default="clock",
        help="spot event timestamps: wall-clock Unix ms (clock, the default) or the connection's "
        "open time plus a per-connection counter (sequence: consecutive, for deterministic tests)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log connections and errors to stderr")
    output = parser.add_mutually_exclusive_group()
    output.add_argument(
        "--print-env",
        action="store_true",
        help="print only 'export CTRADER_...=...' lines (POSIX shell) that point the other "
        "ctrader-typed commands at this simulator, instead of the JSON line",
    )
    output.add_argument(
        "--json",
        action="store_true",
        help="print only the JSON line, also on a terminal (the default elsewhere)",
    )


def env_lines(info: Mapping[str, object]) -> list[str]:
    """``export`` lines (shell-quoted) for the variables the ``ctrader-typed`` commands read."""
    variables = {
        "CTRADER_ENV": "demo",
        "CTRADER_HOST": info["host"],
        "CTRADER_PORT": info["port"],
        "CTRADER_CA_FILE": info["ca_file"],
        "CTRADER_OAUTH_URL": info["oauth_url"],
        "CTRADER_REDIRECT_URI": info["redirect_uri"],
        "CTRADER_CLIENT_ID": info["client_id"],
        "CTRADER_CLIENT_SECRET": info["client_secret"],
        "CTRADER_ACCESS_TOKEN": info["access_token"],
    }
    return [
        "# Point the ctrader-typed commands at this simulator (throwaway credentials); with",
        "# CTRADER_ACCESS_TOKEN set they need no 'ctrader-typed auth'. Paste into another shell:",
        *(f"export {name}={shlex.quote(str(value))}" for name, value in variables.items()),
    ]


def _output(args: argparse.Namespace, info: Mapping[str, object], *, tty: bool) -> str:
    """What goes to stdout at start: the JSON line, the export lines, or both (on a terminal)."""
    json_line = json.dumps(info)
    if args.print_env:
        return "\n".join(env_lines(info)) + "\n"
    if args.json or not tty:
        return json_line + "\n"
    return "\n".join([json_line, "", *env_lines(info), ""])


async def run_sim(args: argparse.Namespace) -> None:
    """Start a simulator from parsed ``sim`` arguments, print its details, serve until interrupted."""
    from ctrader_typed.testing import Simulator

    async with Simulator(
        host=args.host,
        port=args.port,
        http_port=args.http_port,
        seed=args.seed,
        spot_interval=args.spot_interval,
        idle_timeout=args.idle_timeout,
        heartbeat_interval=args.heartbeat_interval,
        rate_limits=not args.no_rate_limits,
        spot_timestamps=args.spot_timestamps,
    ) as sim:
        stopped_by: list[int] = []
        stop = asyncio.Event()

        def on_signal(signum: int) -> None:
            stopped_by.append(signum)
            stop.set()

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, on_signal, signum)
        sys.stdout.write(_output(args, sim.connection_info(), tty=sys.stdout.isatty()))
        sys.stdout.flush()
        if sys.stderr.isatty():
            sys.stderr.write(f"simulator on {sim.host}:{sim.port}; press Ctrl-C to stop\n")
        await stop.wait()
        if stopped_by[:1] == [signal.SIGINT]:
            _end_interrupted_line()


def sim_main(argv: list[str] | None = None) -> int:
    """Entry point of ``ctrader-typed sim`` / ``python -m ctrader_typed.testing``."""
    parser = argparse.ArgumentParser(
        prog="ctrader-typed sim",
        description="Run the local cTrader Open API simulator until Ctrl-C. The first line on stdout "
        "is a JSON object with host, port, oauth_url, ca_file, client_id, client_secret, "
        "access_token, refresh_token and accounts; on a terminal, 'export CTRADER_...' lines for "
        "the other ctrader-typed commands follow it (--print-env: only those, --json: only the JSON).",
    )
    add_sim_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        asyncio.run(run_sim(args))
    except KeyboardInterrupt:  # before the signal handlers were in place
        _end_interrupted_line()
    return 0


def _end_interrupted_line() -> None:
    """After Ctrl-C, end the line the terminal echoed ``^C`` on, so the prompt starts afresh."""
    for stream in (sys.stderr, sys.stdout):
        if stream.isatty():
            stream.write("\n")
            stream.flush()
            return
