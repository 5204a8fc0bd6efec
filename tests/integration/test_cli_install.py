"""A fresh install (``pip install '<repo>[sim]'`` into a new virtualenv) runs ``ctrader-typed demo``.

This is the README's first command, minus the shell: a real install with dependencies
resolved from the package index (pip's cache makes repeats quick), then the demo with
no configuration at all - offline, when the platform can cut the network.

It leaves the default run (marker ``install``): ``nox -s install`` runs it, and ``.ci/run`` calls
that session.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.cli_support import assert_demo_output, clean_env, offline_prefix

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.install
def test_fresh_install_runs_the_demo(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    env = clean_env(PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    install = subprocess.run(
        [str(bindir / "python"), "-m", "pip", "install", "--quiet", f"{REPO}[sim]"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr

    # The install is a real copy, not the checkout: the package imports from the new venv.
    where = subprocess.run(
        [str(bindir / "python"), "-c", "import ctrader_typed; print(ctrader_typed.__file__)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert Path(where.stdout.strip()).resolve().is_relative_to(venv.resolve())

    demo = subprocess.run(
        [*(offline_prefix() or []), str(bindir / "ctrader-typed"), "demo"],
        env={**env, "CTRADER_TYPED_HOME": str(tmp_path / "home")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert_demo_output(demo.stdout)
