"""Run Spotware's official OpenApiPy against ``ctrader-typed sim``; exit with the flow's code.

Run with the project's Python (``python tests/interop/run_interop.py``). It:

1. creates a separate virtualenv with ``ctrader-open-api==0.9.2`` (Twisted, protobuf 3.20.1)
   unless one is there already (``--venv`` / ``$CTRADER_INTEROP_VENV``; default in the system
   temporary directory): those pins must never reach the project's own environment;
2. starts the simulator as a subprocess (``ctrader-typed sim`` if the CLI has the subcommand,
   else ``python -m ctrader_typed.testing``) and reads its JSON line;
3. runs ``openapipy_flow.py`` in that virtualenv and returns its exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
FLOW = HERE / "openapipy_flow.py"
REQUIREMENTS = ["ctrader-open-api==0.9.2", "service-identity==24.2.0"]
DEFAULT_VENV = Path(tempfile.gettempdir()) / "ctrader-typed-interop-venv"


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_venv(venv: Path) -> Path:
    """The interop virtualenv's python, creating the environment if needed."""
    python = venv_python(venv)
    if python.exists():
        check = subprocess.run(
            [str(python), "-c", "import ctrader_open_api, service_identity"], capture_output=True, check=False
        )
        if check.returncode == 0:
            return python
    print(f"interop: creating {venv} with {' '.join(REQUIREMENTS)}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *REQUIREMENTS],
        check=True,
    )
    return python


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
    assert process.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.append(process.stdout.readline() if process.stdout else "")
    )
    reader.daemon = True
    reader.start()
    reader.join(timeout)
    if not lines or not lines[0].strip():
        raise RuntimeError("the simulator did not print its JSON line")
    return lines[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="OpenApiPy against the simulator")
    parser.add_argument(
        "--venv", type=Path, default=Path(os.environ.get("CTRADER_INTEROP_VENV", DEFAULT_VENV))
    )
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds the flow may take")
    args = parser.parse_args(argv)

    python = ensure_venv(args.venv)
    command = [*simulator_command(), "--seed", "7", "--spot-interval", "0.1"]
    print(f"interop: starting {' '.join(command)}", flush=True)
    simulator = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        info_line = read_first_line(simulator, timeout=60)
        info = json.loads(info_line)
        print(f"interop: simulator on {info['host']}:{info['port']}", flush=True)
        env = {**os.environ, "CTRADER_SIM_INFO": info_line.strip()}
        flow = subprocess.run([str(python), str(FLOW)], env=env, timeout=args.timeout, check=False)
        return flow.returncode
    finally:
        if simulator.poll() is None:
            simulator.send_signal(signal.SIGINT)
            try:
                simulator.wait(timeout=15)
            except subprocess.TimeoutExpired:
                simulator.kill()
                simulator.wait()


if __name__ == "__main__":
    sys.exit(main())
