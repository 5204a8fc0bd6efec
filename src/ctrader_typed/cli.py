"""The ``ctrader-typed`` command line."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ctrader-typed", description="cTrader Open API tools.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('ctrader-typed')}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run the demo flow (placeholder: prints the version for now)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        print(f"ctrader-typed {version('ctrader-typed')}: the demo flow is not implemented yet.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
