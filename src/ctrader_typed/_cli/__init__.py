"""Subcommands of the ``ctrader-typed`` command line (see ``ctrader_typed.cli``)."""
