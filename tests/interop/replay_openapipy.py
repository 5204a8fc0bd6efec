"""Record Spotware's OpenApiPy walking its whole interop flow against the simulator, then replay the
recording to OpenApiPy: the same flow must pass against the replay, with no divergence.

``python tests/interop/replay_openapipy.py [--keep FILE]``: the simulator runs in this process, a
``RecordingProxy`` stands between it and OpenApiPy (OpenApiPy has no recorder of its own), and
``openapipy_flow.py`` runs in OpenApiPy's virtualenv (``run_interop.ensure_venv``, created on
first use: needs the package index once). Exit status 0 only if both runs pass and the replay saw
no divergence. History windows are computed from the clock by the flow, so ``fromTimestamp`` and
``toTimestamp`` are left out of the matching.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from ctrader_typed.recording import Recorder, read_recording
from ctrader_typed.testing import RecordingProxy, ReplayDivergence, ReplayServer, Simulator

HERE = Path(__file__).resolve().parent
FLOW = HERE / "openapipy_flow.py"
TIMEOUT_S = 300.0


async def run_flow(python: str, info: dict[str, Any]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        python,
        str(FLOW),
        "--info",
        json.dumps(info),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), TIMEOUT_S)
    return process.returncode or 0, output.decode(errors="replace")


async def record_and_replay(python: str, path: Path) -> int:
    async with (
        Simulator() as sim,
        RecordingProxy(
            Recorder(path, overwrite=True), sim.host, sim.port, upstream_ssl=sim.ssl_context
        ) as proxy,
    ):
        info: dict[str, Any] = {
            **sim.connection_info(),
            "host": proxy.host,
            "port": proxy.port,
            "ca_file": str(proxy.ca_file),
        }
        status, output = await run_flow(python, info)
    print(output, end="")
    if status != 0:
        print("record: the flow failed against the simulator", flush=True)
        return 1
    frames = sum(1 for _ in read_recording(path))
    print(f"recorded {frames} entries to {path}", flush=True)
    async with ReplayServer(path, ignore_fields={"fromTimestamp", "toTimestamp"}) as replay:
        info = {
            "host": replay.host,
            "port": replay.port,
            "ca_file": str(replay.ca_file),
            "client_id": replay.client_id,
            "client_secret": "replayed-client-secret",
            "access_token": replay.access_token,
            "accounts": replay.accounts,
        }
        status, output = await run_flow(python, info)
        print(output, end="")
        try:
            await replay.finished(timeout=30.0)
        except (ReplayDivergence, TimeoutError) as exc:
            print(f"replay: {exc}", flush=True)
            return 1
    if status != 0:
        print("replay: the flow failed against the replay", flush=True)
        return 1
    print(f"replay: PASSED ({replay.requests_matched} requests matched, {replay.frames_sent} frames sent)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keep", metavar="FILE", help="write the recording here (default: a temporary file)")
    parser.add_argument("--python", help="OpenApiPy's interpreter (default: run_interop's virtualenv)")
    args = parser.parse_args(argv)
    python = args.python
    if python is None:
        sys.path.insert(0, str(HERE))
        runner: Any = importlib.import_module("run_interop")  # the interop runner's own virtualenv
        python = str(runner.ensure_venv(runner.DEFAULT_VENV))
    with tempfile.TemporaryDirectory(prefix="replay-openapipy-") as folder:
        path = Path(args.keep) if args.keep else Path(folder) / "openapipy.ctrec"
        return asyncio.run(record_and_replay(python, path))


if __name__ == "__main__":
    sys.exit(main())
