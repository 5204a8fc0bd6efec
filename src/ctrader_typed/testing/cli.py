"""``ctrader-typed sim``: run the simulator standalone until interrupted.

The first line on stdout is one JSON object with the connection details (host, port,
demo_port, live_port, oauth_url, ca_file, client_id, client_secret, access_token,
refresh_token, accounts, live_accounts, ...).
On a terminal, ready-to-paste ``export CTRADER_...=...`` lines for the other ``ctrader-typed``
commands follow it; ``--print-env`` prints only those lines (valid POSIX shell), ``--json``
only the JSON line. Everything printed is a secret of the throwaway simulator only.

Accounts: ``--account id=44000301,currency=JPY,money-digits=0`` (repeatable) and
``--accounts-file FILE`` (JSON or TOML, ``{"accounts": [{"id": 44000301, ...}]}`` or
``[[accounts]]`` tables) replace the default accounts; the keys are ``ACCOUNT_KEYS``.
``--live-endpoint`` serves live accounts on a port of their own, as Spotware's two hosts do.
Every port also takes a WebSocket upgrade (``websocket_url``); ``--json-port`` fixes the port of
the JSON encoding (``json_port``, ``json_websocket_url``).
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
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ctrader_typed.testing._settings import AccountSpec, SimulatorSettings

__all__ = [
    "ACCOUNT_KEYS",
    "account_spec",
    "accounts_from_file",
    "add_sim_arguments",
    "env_lines",
    "run_sim",
    "sim_main",
]

ACCOUNT_KEYS: Final = {
    "id": "account_id",
    "login": "trader_login",
    "live": "is_live",
    "currency": "deposit_currency",
    "money-digits": "money_digits",
    "deposit": "initial_deposit",
    "registered-days-ago": "registered_days_ago",
}
"""The keys of an ``--account`` spec (and of an accounts file, where ``_`` may stand for ``-``)
-> the ``AccountSpec`` field each sets. ``id`` is required; ``login`` defaults to the id."""
_TRUE: Final = {"true", "yes", "1", "on"}
_FALSE: Final = {"false", "no", "0", "off"}


def _account_from(values: Mapping[str, object], where: str) -> AccountSpec:
    """An ``AccountSpec`` from the keys of ``ACCOUNT_KEYS`` (values as text or as parsed by JSON/TOML).

    Raises:
        ValueError: An unknown key, a missing id, a value of the wrong kind, or one
            ``AccountSpec`` refuses; the message starts with ``where``.
    """
    from ctrader_typed.testing._settings import AccountSpec  # the simulator's extra: only when asked for

    fields: dict[str, Any] = {}
    for raw_key, value in values.items():
        key = raw_key.replace("_", "-")
        field = ACCOUNT_KEYS.get(key)
        if field is None:
            raise ValueError(f"{where}: unknown key {raw_key!r} (known: {', '.join(ACCOUNT_KEYS)})")
        if field == "deposit_currency":
            if not isinstance(value, str):
                raise ValueError(f"{where}: currency must be a text such as USD")
            fields[field] = value.upper()
        elif field == "is_live":
            if isinstance(value, bool):
                fields[field] = value
            elif isinstance(value, str) and value.lower() in _TRUE | _FALSE:
                fields[field] = value.lower() in _TRUE
            else:
                raise ValueError(f"{where}: live must be true or false, not {value!r}")
        else:
            try:
                number = int(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
            except ValueError:
                number = None
            if number is None:
                raise ValueError(f"{where}: {key} must be a whole number, not {value!r}")
            fields[field] = number
    if "account_id" not in fields:
        raise ValueError(f"{where}: id is required (e.g. id=44000301)")
    fields.setdefault("trader_login", fields["account_id"])
    try:
        return AccountSpec(**fields)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def account_spec(text: str) -> AccountSpec:
    """One ``--account`` value: comma-separated ``key=value`` pairs (keys: ``ACCOUNT_KEYS``).

    Raises:
        argparse.ArgumentTypeError: The spec is malformed (argparse reports it).
    """
    values: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise argparse.ArgumentTypeError(
                f"{text!r}: expected key=value pairs separated by commas, e.g. id=44000301,currency=JPY"
            )
        values[key.strip()] = value.strip()
    try:
        return _account_from(values, repr(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def accounts_from_file(path: Path) -> tuple[AccountSpec, ...]:
    """The accounts of a JSON (``.json``) or TOML (any other name) file: a top-level
    ``accounts`` list of tables with the keys of ``ACCOUNT_KEYS``.

    Raises:
        ValueError: The file cannot be read or parsed, or an account is invalid.
    """
    try:
        text = path.read_text(encoding="utf-8")
        document: object = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    entries = document.get("accounts") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected a non-empty 'accounts' list of tables")
    specs: list[AccountSpec] = []
    for n, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: account {n} is not a table")
        specs.append(_account_from(entry, f"{path}: account {n}"))
    return tuple(specs)


def add_sim_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``sim`` options to ``parser`` (for the main CLI's subcommand)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        help="protobuf port, raw TLS and WebSocket (websocket_url in the JSON line; default: any free port)",
    )
    parser.add_argument(
        "--json-port",
        type=int,
        default=0,
        help="JSON port (Spotware's 5036 encoding), raw TLS and WebSocket (json_port and json_websocket_url "
        "in the JSON line; default: any free port)",
    )
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
    parser.add_argument(
        "--oauth-lenient",
        action="store_true",
        help="let /apps/token also take POST bodies and add snake_case copies of its keys (default: "
        "only what Spotware documents, GET with query parameters and camelCase keys)",
    )
    parser.add_argument(
        "--live-endpoint",
        action="store_true",
        help="serve live accounts on a TLS port of their own (live_port in the JSON line) and demo "
        "accounts only on --port, as Spotware's live and demo hosts do: each refuses the other's "
        "accounts with CANT_ROUTE_REQUEST (default: one port serves both). The export lines point "
        "at the demo port",
    )
    parser.add_argument(
        "--live-port",
        type=int,
        default=0,
        help="port of the live endpoint (implies --live-endpoint; default: any free port)",
    )
    parser.add_argument(
        "--account",
        dest="accounts",
        action="append",
        type=account_spec,
        metavar="KEY=VALUE,...",
        help="an account to serve instead of the default ones (repeatable): id (required), login "
        "(default: the id), live (true/false, default false), currency (deposit asset, default USD), "
        "money-digits (default 2), deposit (whole units, a multiple of 20; default 10000), "
        "registered-days-ago (default 30); e.g. id=44000301,currency=JPY,money-digits=0",
    )
    parser.add_argument(
        "--accounts-file",
        type=Path,
        metavar="FILE",
        help="accounts to serve instead of the default ones, from a JSON (.json) or TOML file with an "
        "'accounts' list of tables with the keys of --account (before any --account ones)",
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


def settings_from(args: argparse.Namespace) -> SimulatorSettings:
    """The simulator settings that parsed ``sim`` arguments ask for.

    Raises:
        ValueError: The accounts file is invalid, or the settings are inconsistent (e.g. two
            accounts with one id, or --live-port equal to --port).
    """
    from ctrader_typed.testing._settings import SimulatorSettings

    accounts = (
        *(accounts_from_file(args.accounts_file) if args.accounts_file else ()),
        *(args.accounts or ()),
    )
    options: dict[str, Any] = {"accounts": accounts} if accounts else {}
    return SimulatorSettings(
        host=args.host,
        port=args.port,
        http_port=args.http_port,
        seed=args.seed,
        spot_interval=args.spot_interval,
        idle_timeout=args.idle_timeout,
        heartbeat_interval=args.heartbeat_interval,
        rate_limits=not args.no_rate_limits,
        spot_timestamps=args.spot_timestamps,
        oauth_lenient=args.oauth_lenient,
        live_endpoint=args.live_endpoint or bool(args.live_port),
        live_port=args.live_port,
        json_port=args.json_port,
        **options,
    )


async def run_sim(args: argparse.Namespace) -> None:
    """Start a simulator from parsed ``sim`` arguments, print its details, serve until interrupted."""
    from ctrader_typed.testing import Simulator

    async with Simulator(settings_from(args)) as sim:
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
            where = f"{sim.host}:{sim.port}"
            if sim.live_port != sim.port:
                where = f"{sim.host}:{sim.demo_port} (demo) and {sim.host}:{sim.live_port} (live)"
            sys.stderr.write(f"simulator on {where}; press Ctrl-C to stop\n")
        await stop.wait()
        if stopped_by[:1] == [signal.SIGINT]:
            _end_interrupted_line()


def sim_main(argv: list[str] | None = None) -> int:
    """Entry point of ``ctrader-typed sim`` / ``python -m ctrader_typed.testing``."""
    parser = argparse.ArgumentParser(
        prog="ctrader-typed sim",
        description="Run the local cTrader Open API simulator until Ctrl-C. The first line on stdout "
        "is a JSON object with host, port, demo_port, live_port, oauth_url, ca_file, client_id, "
        "client_secret, access_token, refresh_token, accounts and live_accounts; on a terminal, 'export CTRADER_...' lines for "
        "the other ctrader-typed commands follow it (--print-env: only those, --json: only the JSON).",
    )
    add_sim_arguments(parser)
    args = parser.parse_args(argv)
    try:
        settings_from(args)  # refuse bad accounts or ports with a usage error, before starting
    except ValueError as exc:
        parser.error(str(exc))
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
