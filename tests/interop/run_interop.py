"""Independent cTrader Open API clients against ``ctrader-typed sim``: one report, one exit code.

Run with the project's Python (``python tests/interop/run_interop.py``, or ``nox -s interop``).
For every client registered in :data:`CLIENTS` (or only those named with ``--client NAME``) it:

1. prepares the client in an environment of its own, cached across runs under ``--cache-dir``
   (default: ``ctrader-typed-interop`` in the system temporary directory): a virtualenv with the
   client's pinned packages for a Python client, whatever the client's ``prepare`` builds for others.
   The pins never reach the project's own environment. A client that cannot be prepared here (its
   interpreter or runtime is missing, the install fails) is *skipped*, with the reason;
2. starts a simulator of its own (``ctrader-typed sim`` as a subprocess) and reads its JSON line;
3. runs the client's flow with that line in ``$CTRADER_SIM_INFO``; exit status 0 is a pass.

The exit status is 1 if any client that could be prepared failed (or, with ``--strict``, if any
was skipped), 2 for a bad command line, else 0.

Registering a client
--------------------
Append a :class:`Client` to :data:`CLIENTS` at the end of this file. A Python client is one call
to :func:`python_client` (flow script, pinned requirements, an import that proves the install).
Any other runtime gives its own ``prepare(workdir) -> argv`` callable: it gets a cache directory
of its own, installs what it needs there (reusing it when already there), returns the command that
runs the flow, and raises :class:`Skip` with a reason when it cannot run on this machine.
A flow reads the simulator's JSON line (host, port, ca_file, client_id, client_secret,
access_token, accounts ...) from ``$CTRADER_SIM_INFO``, talks to the simulator with configuration
only, prints one line per step and exits 0 only when every step held.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DEFAULT_CACHE = Path(
    os.environ.get("CTRADER_INTEROP_CACHE", Path(tempfile.gettempdir()) / "ctrader-typed-interop")
)
SIM_ARGS = ("--seed", "7", "--spot-interval", "0.1")
"""Simulator options every client gets (a client's ``sim_args`` come after, so they win)."""

_print_lock = threading.Lock()


class Skip(Exception):
    """A client cannot run on this machine; the message says why (e.g. ``no node on PATH``)."""


@dataclass(frozen=True)
class Client:
    """One independent client: how to prepare it, and what its flow needs from the simulator."""

    name: str
    """Short name for ``--client`` (lower case, no spaces)."""
    title: str
    """What it is, with the version tested, for the report."""
    prepare: Callable[[Path], Sequence[str]]
    """Given a cache directory of its own, install the client if needed and return the command that
    runs its flow; raise :class:`Skip` when it cannot run here."""
    sim_args: tuple[str, ...] = ()
    """Extra ``ctrader-typed sim`` options for this client's simulator."""
    timeout: float = 180.0
    """Seconds the flow may take once the simulator is up."""
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment variables for the flow."""


@dataclass
class Result:
    client: Client
    status: str  # "passed", "failed" or "skipped"
    reason: str = ""
    seconds: float = 0.0


def log(name: str, text: str) -> None:
    with _print_lock:
        for line in text.splitlines() or [""]:
            print(f"[{name}] {line}", flush=True)


# -- Python clients ---------------------------------------------------------------------------------


def _python_version(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    parts = out.stdout.split()
    if out.returncode != 0 or len(parts) != 2:
        return None
    return int(parts[0]), int(parts[1])


def _pyenv_candidates(minor: str) -> list[str]:
    """Interpreters of pyenv's installed ``3.N.*`` versions (their shims run only active versions)."""
    root = os.environ.get("PYENV_ROOT")
    if not root and shutil.which("pyenv"):
        try:
            root = subprocess.run(
                ["pyenv", "root"], capture_output=True, text=True, check=True, timeout=30
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            root = None
    if not root or not (Path(root) / "versions").is_dir():
        return []
    found = []
    for directory in (Path(root) / "versions").iterdir():
        if re.fullmatch(re.escape(minor) + r"\.\d+", directory.name):
            python = directory / "bin" / f"python{minor}"
            if python.exists():
                found.append((tuple(int(p) for p in directory.name.split(".")), str(python)))
    return [python for _, python in sorted(found, reverse=True)]


def find_python(minimum: tuple[int, int] | None) -> str:
    """An interpreter at least ``minimum`` (the project's own when it is new enough); else :class:`Skip`."""
    if minimum is None or sys.version_info[:2] >= minimum:
        return sys.executable
    minors = [f"3.{n}" for n in range(minimum[1], 16)]
    tried: list[str] = []
    for minor in minors:
        for candidate in [f"python{minor}", *_pyenv_candidates(minor)]:
            tried.append(candidate)
            version = _python_version(candidate)
            if version is not None and version >= minimum:
                return shutil.which(candidate) or candidate
    wanted = ".".join(map(str, minimum))
    raise Skip(f"needs Python >= {wanted}; none found (tried python3.{minimum[1]}+ on PATH and pyenv)")


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_python_venv(venv: Path, requirements: Sequence[str], probe: str, base_python: str) -> Path:
    """``venv``'s python with ``requirements`` installed (created if ``probe`` does not import there).

    Raises :class:`Skip` if the virtualenv cannot be made or the packages cannot be installed.
    """
    python = venv_python(venv)
    if python.exists():
        check = subprocess.run([str(python), "-c", f"import {probe}"], capture_output=True, check=False)
        if check.returncode == 0:
            return python
    print(f"interop: creating {venv} with {' '.join(requirements)}", flush=True)
    made = subprocess.run(
        [base_python, "-m", "venv", "--clear", str(venv)], capture_output=True, text=True, check=False
    )
    if made.returncode != 0:
        raise Skip(f"could not create a virtualenv with {base_python}: {made.stderr.strip()[-300:]}")
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements],
        capture_output=True,
        text=True,
        check=False,
    )
    if installed.returncode != 0:
        tail = (installed.stderr or installed.stdout).strip().splitlines()[-3:]
        raise Skip(f"pip install {' '.join(requirements)} failed: {' / '.join(tail)}")
    return python


def python_client(
    name: str,
    title: str,
    flow: Path,
    requirements: Sequence[str],
    probe: str,
    *,
    min_python: tuple[int, int] | None = None,
    sim_args: tuple[str, ...] = (),
    timeout: float = 180.0,
) -> Client:
    """A client that runs ``flow`` with Python in a virtualenv of its own holding ``requirements``.

    ``probe`` is a comma-separated list of modules whose import proves the virtualenv is complete;
    ``min_python`` picks a newer interpreter than the project's when the client needs one (skipped,
    with the reason, where none is installed).
    """

    def prepare(workdir: Path) -> list[str]:
        base = find_python(min_python)
        version = _python_version(base)
        # The virtualenv's name follows the pins and the interpreter, so a changed pin makes a new one.
        key = hashlib.sha256(f"{version}|{'|'.join(requirements)}".encode()).hexdigest()[:10]
        python = ensure_python_venv(workdir / f"venv-{key}", requirements, probe, base)
        return [str(python), str(flow)]

    return Client(name=name, title=title, prepare=prepare, sim_args=sim_args, timeout=timeout)


# -- running ----------------------------------------------------------------------------------------


def simulator_command() -> list[str]:
    """``ctrader-typed sim`` when the installed CLI has it, else the module entry point."""
    script = Path(sys.executable).with_name("ctrader-typed")
    if script.exists():
        probe = subprocess.run([str(script), "sim", "--help"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [str(script), "sim"]
    return [sys.executable, "-m", "ctrader_typed.testing"]


def read_first_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The simulator's first stdout line, or ``RuntimeError`` if it does not come in time."""
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.append(process.stdout.readline() if process.stdout else ""), daemon=True
    )
    reader.start()
    reader.join(timeout)
    if not lines or not lines[0].strip():
        raise RuntimeError("the simulator did not print its JSON line")
    return lines[0]


def _pump(name: str, stream: object) -> None:
    for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
        log(name, line.rstrip("\n"))


def stop(process: subprocess.Popen[str], *readers: threading.Thread) -> None:
    """Stop ``process`` (SIGINT, then kill), let ``readers`` drain its pipes, then close them."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for reader in readers:
        reader.join(timeout=5)
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def run_client(client: Client, cache: Path) -> Result:
    """Prepare ``client``, start its simulator, run its flow: the outcome, never an exception."""
    started = time.monotonic()
    workdir = cache / client.name
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        command = list(client.prepare(workdir))
    except Skip as skip:
        return Result(client, "skipped", str(skip), time.monotonic() - started)
    except Exception as exc:  # a broken prepare step is the client's failure, reported as such
        return Result(client, "failed", f"prepare: {type(exc).__name__}: {exc}", time.monotonic() - started)

    sim = [*simulator_command(), "--json", *SIM_ARGS, *client.sim_args]
    log(client.name, f"starting {' '.join(sim)}")
    simulator = subprocess.Popen(sim, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sim_log = threading.Thread(target=_pump, args=(f"{client.name} sim", simulator.stderr), daemon=True)
    sim_log.start()
    try:
        info_line = read_first_line(simulator, timeout=60).strip()
        info = json.loads(info_line)
        log(client.name, f"simulator on {info['host']}:{info['port']}; running {' '.join(command)}")
        env = {**os.environ, **client.env, "CTRADER_SIM_INFO": info_line}
        flow = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        pump = threading.Thread(target=_pump, args=(client.name, flow.stdout), daemon=True)
        pump.start()
        try:
            code = flow.wait(timeout=client.timeout)
        except subprocess.TimeoutExpired:
            flow.kill()
            flow.wait()
            return Result(
                client, "failed", f"timed out after {client.timeout:.0f} s", time.monotonic() - started
            )
        finally:
            stop(flow, pump)
        if code != 0:
            return Result(client, "failed", f"flow exited with {code}", time.monotonic() - started)
        return Result(client, "passed", "", time.monotonic() - started)
    except (RuntimeError, ValueError, KeyError, OSError) as exc:
        return Result(client, "failed", f"simulator: {exc}", time.monotonic() - started)
    finally:
        stop(simulator, sim_log)


def report(results: Sequence[Result]) -> str:
    width = max(len(r.client.name) for r in results)
    lines = ["", "interop results:"]
    for r in results:
        detail = f" - {r.reason}" if r.reason else ""
        lines.append(
            f"  {r.client.name:<{width}}  {r.status.upper():<7}  {r.seconds:6.1f} s  {r.client.title}{detail}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    names = [c.name for c in CLIENTS]
    parser = argparse.ArgumentParser(description="Independent cTrader Open API clients against the simulator")
    parser.add_argument(
        "--client",
        action="append",
        choices=names,
        metavar="NAME",
        help=f"run only this client (repeatable; one of: {', '.join(names)})",
    )
    parser.add_argument("--list", action="store_true", help="list the registered clients and exit")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE,
        help="where the clients' environments are kept between runs ($CTRADER_INTEROP_CACHE)",
    )
    parser.add_argument("--jobs", type=int, default=1, help="clients run at once (default 1)")
    parser.add_argument("--strict", action="store_true", help="a skipped client fails the run too")
    args = parser.parse_args(argv)

    if args.list:
        for client in CLIENTS:
            print(f"{client.name:<20} {client.title}")
        return 0
    chosen = [c for c in CLIENTS if not args.client or c.name in args.client]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(lambda c: run_client(c, args.cache_dir), chosen))
    print(report(results), flush=True)
    bad = {"failed", "skipped"} if args.strict else {"failed"}
    return 1 if any(r.status in bad for r in results) else 0


# -- the clients ------------------------------------------------------------------------------------

OPENAPIPY_REQUIREMENTS = ("ctrader-open-api==0.9.2", "service-identity==24.2.0")
DEFAULT_VENV = Path(os.environ.get("CTRADER_INTEROP_VENV", DEFAULT_CACHE / "openapipy" / "venv"))
"""OpenApiPy's virtualenv (``$CTRADER_INTEROP_VENV``); the benchmarks reuse it."""


def ensure_venv(venv: Path) -> Path:
    """OpenApiPy's virtualenv python, creating the environment if needed (used by the benchmarks)."""
    return ensure_python_venv(
        venv, OPENAPIPY_REQUIREMENTS, "ctrader_open_api, service_identity", sys.executable
    )


def _prepare_openapipy(_workdir: Path) -> list[str]:
    return [str(ensure_venv(DEFAULT_VENV)), str(HERE / "openapipy_flow.py")]


def _node_client(directory: str, marker: str, *, with_schema: bool = False) -> Callable[[Path], list[str]]:
    """``prepare`` for the Node client in ``tests/interop/DIRECTORY`` (``node_prepare.py``); a missing
    or old Node, or a failed ``npm ci``, is a skip with the reason."""

    def prepare(workdir: Path) -> list[str]:
        import importlib.util

        spec = importlib.util.spec_from_file_location("interop_node_prepare", HERE / "node_prepare.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        try:
            command: list[str] = module.prepare(
                HERE / directory, workdir, marker=marker, with_schema=with_schema
            )
        except module.Unavailable as exc:
            raise Skip(str(exc)) from exc
        return command

    return prepare


_prepare_node = _node_client("node", "protobufjs", with_schema=True)
"""The Node client (``node/client.js``, protobufjs); skipped with the reason where Node is missing."""
_prepare_node_json = _node_client("node_json", "ws")
"""The Node JSON-over-WebSocket client (``node_json/client.js``, ws); skipped where Node is missing."""


CLIENTS: list[Client] = [
    Client(
        name="openapipy",
        title="Spotware OpenApiPy (ctrader-open-api 0.9.2, Twisted, protobuf 3.20.1)",
        prepare=_prepare_openapipy,
    ),
    python_client(
        name="ctrader-api-client",
        title="ctrader-api-client 0.12.0 (asyncio, betterproto; Python >= 3.12)",
        flow=HERE / "ctrader_api_client_flow.py",
        requirements=("ctrader-api-client==0.12.0",),
        probe="ctrader_api_client",
        min_python=(3, 12),
    ),
    Client(
        name="node",
        title="Node client (node/client.js: protobufjs 8.8.1, strict decode, schema labels of release 88)",
        prepare=_prepare_node,
    ),
    python_client(
        name="pynecore",
        title="PyneCore cTrader plugin (pynesys-pynecore-ctrader 0.9.4, pynesys-pynecore 6.11.0)",
        flow=HERE / "pynecore_flow.py",
        # typer 0.29 dropped typer._types, which pynesys-pynecore 6.11.0's CLI (the plugin's token
        # cache lives under it) imports while declaring typer>=0.16: hold typer at 0.28.0.
        requirements=(
            "pynesys-pynecore-ctrader==0.9.4",
            "pynesys-pynecore[cli]==6.11.0",
            "typer==0.28.0",
            "protobuf==7.36.2",
        ),
        probe="pynecore_ctrader, pynecore.cli.app",
        min_python=(3, 11),
    ),
]
"""The registered clients, run in this order. Add yours here (see the module docstring)."""
CLIENTS.append(
    Client(
        name="node-json",
        title="Node client speaking JSON over WebSocket (node_json/client.js: ws 8.23.1, the port 5036 encoding)",
        prepare=_prepare_node_json,
    )
)


if __name__ == "__main__":
    sys.exit(main())
