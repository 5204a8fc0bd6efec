"""``python -m ctrader_typed.testing``: the simulator, standalone."""

import sys

from ctrader_typed.testing.cli import sim_main

if __name__ == "__main__":
    sys.exit(sim_main())
