"""Developer sessions: ``nox -s codegen``, ``nox -s tests``, ``nox -s interop`` ...

Each session installs what it needs into its own virtualenv under ``.nox/``. A session whose Python
is not installed is skipped, with the interpreter it looked for as the reason (``nox -s matrix`` on a
machine without 3.12, say); ``.ci/run`` passes ``--error-on-missing-interpreters`` so CI fails instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False  # nox turns it on where CI is set; the command line wins
nox.options.sessions = ["codegen_check", "lint", "mypy", "typing", "tests"]

PYTHON = "3.11"
MATRIX = ["3.11", "3.12", "3.13"]


def _pyenv_shims_find(versions: list[str]) -> None:
    """Where pyenv manages the interpreters, let its shims run every version asked for.

    pyenv installs versions side by side but its shims run only the active ones, so ``python3.12``
    fails while 3.12 is installed. ``PYENV_VERSION`` (left alone if already set) lists the active
    versions first, so ``python`` stays what it was, then the newest install of each version.
    """
    if "PYENV_VERSION" in os.environ or shutil.which("pyenv") is None:
        return
    try:
        active = subprocess.run(
            ["pyenv", "version-name"], capture_output=True, text=True, check=True, timeout=30
        ).stdout.split()
        root = Path(
            subprocess.run(
                ["pyenv", "root"], capture_output=True, text=True, check=True, timeout=30
            ).stdout.strip()
        )
    except (OSError, subprocess.SubprocessError):
        return
    versions_dir = root / "versions"
    if not versions_dir.is_dir():
        return
    installed = [p.name for p in versions_dir.iterdir() if re.fullmatch(r"3\.\d+\.\d+", p.name)]
    chosen = [*active[:1]]
    for version in versions:
        matching = [name for name in installed if name.startswith(version + ".")]
        if matching:
            chosen.append(max(matching, key=lambda name: tuple(int(part) for part in name.split("."))))
    os.environ["PYENV_VERSION"] = ":".join(dict.fromkeys(":".join(chosen).split(":")))


_pyenv_shims_find(MATRIX)


@nox.session(python=PYTHON)
def codegen(session: nox.Session) -> None:
    """Regenerate src/ctrader_typed/_generated/ from protos/ (run after editing protos/, codegen/ or templates/)."""
    session.install("-e", ".[codegen]")
    session.run("python", "-m", "codegen", *session.posargs)


@nox.session(python=PYTHON)
def codegen_check(session: nox.Session) -> None:
    """Fail if the committed generated code differs from a fresh run."""
    session.install("-e", ".[codegen]")
    session.run("python", "-m", "codegen", "--check")


@nox.session(python=PYTHON)
def codegen_diff(session: nox.Session) -> None:
    """What an upstream schema release changed compared with protos/ (`nox -s codegen_diff -- UPSTREAM_DIR`)."""
    if not session.posargs:
        session.error("name the directory of upstream's .proto files: nox -s codegen_diff -- UPSTREAM_DIR")
    session.install("-e", ".[codegen]")
    # Exit status 1 only means "there are differences": the report is the point.
    session.run("python", "-m", "codegen", "diff", *session.posargs, success_codes=[0, 1])


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    session.install("-e", ".[codegen]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def mypy(session: nox.Session) -> None:
    """mypy --strict over src, codegen and tests."""
    session.install("-e", ".[dev]")
    session.run("mypy")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite (pass pytest arguments after --)."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=MATRIX)
def matrix(session: nox.Session) -> None:
    """The test suite on every supported interpreter, each skipped where it is not installed (not in CI: CI runs 3.11)."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "pytest", "-q", *session.posargs)


@nox.session(python=PYTHON)
def interop(session: nox.Session) -> None:
    """Independent clients (OpenApiPy, ctrader-api-client, Node ...) each run a bot's flow against `ctrader-typed sim`.

    Each client runs in its own cached environment against its own simulator; one is picked with
    `nox -s interop -- --client openapipy` (`-- --list` names them). See docs/interop.md.
    """
    session.install("-e", ".[sim]")
    session.run("python", "tests/interop/run_interop.py", *session.posargs)


@nox.session(python=PYTHON)
def interop_replay(session: nox.Session) -> None:
    """Record OpenApiPy's interop flow against the simulator (through a RecordingProxy), then replay it to OpenApiPy.

    The flow must pass both times and the replay must see no divergence. OpenApiPy runs in the
    interop runner's cached virtualenv. See docs/guide/record-replay.md.
    """
    session.install("-e", ".[sim]")
    session.run("python", "tests/interop/replay_openapipy.py", *session.posargs)


@nox.session(python=PYTHON)
def typing(session: nox.Session) -> None:
    """Downstream typing: mypy --strict and pyright --strict on tests/typing, golden misuse, no Any in the API."""
    session.install("-e", ".[dev]")
    session.run("mypy")
    session.run(
        "python",
        "-m",
        "pytest",
        "tests/typing",
        "tests/docs/test_docs.py",
        "-m",
        "typecheck or not typecheck",
        *session.posargs,
    )


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site into site/ with mkdocs --strict (`nox -s docs -- serve` to preview)."""
    session.install("-e", ".[docs]")
    session.env["NO_MKDOCS_2_WARNING"] = "1"  # silences mkdocs-material's end-of-life banner
    if session.posargs[:1] == ["serve"]:
        session.run("mkdocs", "serve", *session.posargs[1:])
    else:
        session.run("mkdocs", "build", "--strict", *session.posargs)


@nox.session(python=PYTHON)
def docs_browser(session: nox.Session) -> None:
    """Build the site, then check it in headless Chromium via Playwright: search, trading guide in two clicks, no broken link."""
    # Playwright drives the system's Chromium: its own browser downloads are never used.
    session.env["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
    session.install("-e", ".[docs,dev]", "playwright==1.65.2")
    if shutil.which("chromium") is None and shutil.which("apt-get") is not None and os.geteuid() == 0:
        session.run("apt-get", "update", "-q", external=True)
        session.run("apt-get", "install", "-y", "-q", "chromium", external=True)
    session.env["NO_MKDOCS_2_WARNING"] = "1"
    site = Path(session.create_tmp()) / "site"
    session.run("mkdocs", "build", "--strict", "--site-dir", str(site))
    session.run(
        "python",
        "-m",
        "pytest",
        "-q",
        "-rs",
        "-n",
        "0",  # one browser and one site server, not one per worker
        "tests/docs/test_browser.py",
        *session.posargs,
        env={"CTRADER_DOCS_SITE": str(site)},
    )


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks: each ratio against its baseline in the same run (`-- --publish` rewrites the committed results)."""
    session.install("-e", ".[sim,codegen]")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session(python=PYTHON)
def reliability(session: nox.Session) -> None:
    """Fault matrix, soak, default fuzz run and security checks; then print the README section with the soak figures."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "pytest", "tests/reliability", *session.posargs)
    # The soak and the order burst load the machine on purpose: one at a time, in one process.
    session.run("python", "-m", "pytest", "tests/reliability", "-m", "soak", "-n", "0", *session.posargs)
    session.run("python", "-m", "tests.reliability.report")


@nox.session(python=PYTHON)
def soak(session: nox.Session) -> None:
    """The full-size soak (500,000 spot events, 25,000 requests; 1-2 min; figures in .cache/reliability/soak.json) and the 500-order burst on busy cores.

    ``CTRADER_SOAK_*`` in the environment size it (``.ci/run`` runs a slice this way); in one process
    (``-n 0``), one test at a time, printing its figures (``-s``).
    """
    session.install("-e", ".[test]")
    session.run(
        "python",
        "-m",
        "pytest",
        "tests/reliability/test_soak.py",
        "tests/reliability/test_order_burst.py",
        "-m",
        "soak",
        "-n",
        "0",
        "-s",
        *session.posargs,
    )


@nox.session(python=PYTHON)
def fuzz(session: nox.Session) -> None:
    """Hypothesis over the frame decoder and message decoding: 100,000 examples per property (~10-20 min).

    ``nox -s fuzz -- 2000`` runs another count (CI runs 2,000); further arguments go to pytest.
    """
    args = list(session.posargs)
    examples = args.pop(0) if args[:1] and args[0].isdigit() else "100000"
    session.install("-e", ".[test]")
    session.run(
        "python",
        "-m",
        "pytest",
        "tests/reliability/test_fuzz.py",
        "-q",
        "--timeout=0",  # 100,000 examples of a property can take longer than the everyday hang guard
        *args,
        env={"CTRADER_FUZZ_EXAMPLES": examples},
    )


@nox.session(python=PYTHON)
def install(session: nox.Session) -> None:
    """The fresh install: ``pip install '<repo>[sim]'`` into a new virtualenv, then ``ctrader-typed demo`` in it."""
    session.install("-e", ".[test]")
    session.run(
        "python",
        "-m",
        "pytest",
        "tests/integration/test_cli_install.py",
        "-m",
        "install",
        "-n",
        "0",
        "-q",
        *session.posargs,
    )
