"""``ctrader-typed sim``: the simulator's own command line, wired in as a subcommand."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ctrader_typed._cli._common import EXIT_FAILURE

SIM_EXTRA_HINT = "the simulator needs the 'sim' extra: pip install 'ctrader-typed[sim]'"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """List ``sim`` in the main help; its own parser (``sim_main``) handles its arguments."""
    sub.add_parser(
        "sim",
        help="run the local simulator until Ctrl-C",
        description="Run the local cTrader Open API simulator (TLS protobuf endpoint and OAuth HTTP "
        "endpoints) until Ctrl-C. The first line on stdout is a JSON object with host, port, "
        "demo_port, live_port, oauth_url, ca_file, client_id, client_secret, access_token, "
        "refresh_token, accounts and live_accounts; "
        "on a terminal, 'export CTRADER_...' lines for the other commands follow it "
        "(--print-env prints only those).",
        add_help=False,
    )


def run(argv: Sequence[str]) -> int:
    """Hand the arguments after ``sim`` to the simulator's entry point."""
    from ctrader_typed.testing.cli import sim_main  # imports the simulator: only when asked for

    try:
        return sim_main(list(argv))
    except ModuleNotFoundError as exc:
        if exc.name != "cryptography":
            raise
        sys.stderr.write(f"ctrader-typed sim: error: {SIM_EXTRA_HINT}\n")
        return EXIT_FAILURE
