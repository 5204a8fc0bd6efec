"""``ctrader-typed sim``: run the simulator standalone until interrupted.

The first line on stdout is one JSON object with the connection details (host, port,
oauth_url, ca_file, client_id, client_secret, access_token, refresh_token, accounts, ...).
It contains secrets of the throwaway simulator only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys

__all__ = ["add_sim_arguments", "run_sim", "sim_main"]


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
    parser.add_argument("-v", "--verbose", action="store_true", help="log connections and errors to stderr")


async def run_sim(args: argparse.Namespace) -> None:
    """Start a simulator from parsed ``sim`` arguments, print its JSON line, serve until cancelled."""
    from ctrader_typed.testing.simulator import Simulator

    async with Simulator(
        host=args.host,
        port=args.port,
        http_port=args.http_port,
        seed=args.seed,
        spot_interval=args.spot_interval,
        idle_timeout=args.idle_timeout,
        heartbeat_interval=args.heartbeat_interval,
        rate_limits=not args.no_rate_limits,
    ) as sim:
        sys.stdout.write(json.dumps(sim.connection_info()) + "\n")
        sys.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)
        await stop.wait()


def sim_main(argv: list[str] | None = None) -> int:
    """Entry point of ``ctrader-typed sim`` / ``python -m ctrader_typed.testing``."""
    parser = argparse.ArgumentParser(
        prog="ctrader-typed sim", description="Run the local cTrader Open API simulator."
    )
    add_sim_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_sim(args))
    return 0
