"""Suite-wide pytest configuration.

Markers are declared once, in ``pyproject.toml`` (``[tool.pytest.ini_options] markers``).

Hypothesis runs under one of the profiles below, chosen by ``HYPOTHESIS_PROFILE``; without it,
``ci`` where the ``CI`` variable is set (``.ci/run`` sets it) and ``dev`` elsewhere:

* ``dev``: random examples, remembered in ``.hypothesis/`` so a failure found once is replayed first.
* ``ci``: the same examples on every run (``derandomize``), no example database.

No profile has a deadline or the "too slow" health check: both measure machine speed, and the
suite must give the same verdict on a loaded machine as on a quiet one.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

_UNTIMED = [HealthCheck.too_slow]
settings.register_profile("dev", deadline=None, suppress_health_check=_UNTIMED)
settings.register_profile(
    "ci", deadline=None, suppress_health_check=_UNTIMED, derandomize=True, database=None, print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """How many workers ``-n auto`` (set in ``addopts``) starts: four per CPU, at most 8.

    Most tests wait on sockets, timers and subprocesses rather than compute, so several workers
    per CPU keep the CPUs busy (on 2 quiet cores: 8 workers 70 s, 4 workers 79 s). ``PYTEST_XDIST_AUTO_NUM_WORKERS=N`` or ``-n N`` overrides this;
    ``-n 0`` runs everything in one process (for ``--pdb`` or ``-s``).
    """
    if requested := os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return int(requested)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(4 * cpus, 8)
