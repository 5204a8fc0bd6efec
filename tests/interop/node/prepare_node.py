"""Prepare the Node interop client (``client.js``): find Node and npm, install the locked packages.

``run_interop.py`` registers the client and calls :func:`prepare` with a cache directory of the
client's own. The packages (``protobufjs`` and its one dependency, pinned by ``package-lock.json``)
are installed with ``npm ci`` into a directory named after the lock file's hash inside that cache,
never into the repository, and reused while the lock file is unchanged.

The client decodes with Spotware's published schema: the upstream ``release-91`` snapshot when the
reference copy is on this machine (``$CTRADER_INTEROP_UPSTREAM_PROTOS`` names another directory),
else the project's ``protos/``, whose field labels, numbers and types are upstream's. Either way
``client.js`` restores the labels of release 88 on a temporary copy before it loads it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
CLIENT = HERE / "client.js"
LOCK = HERE / "package-lock.json"
MANIFEST = HERE / "package.json"
MIN_NODE = 18
UPSTREAM_RELEASE_91 = Path("/work/shared/reference/openapi-proto-messages/release-91")
PROTO_FILES = (
    "OpenApiCommonMessages.proto",
    "OpenApiCommonModelMessages.proto",
    "OpenApiMessages.proto",
    "OpenApiModelMessages.proto",
)


class Unavailable(Exception):
    """Node or npm is missing or too old here, or the locked packages cannot be installed."""


def _version(executable: str) -> str:
    try:
        out = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise Unavailable(f"{executable} --version failed: {exc}") from exc
    if out.returncode != 0:
        raise Unavailable(f"{executable} --version exited with {out.returncode}")
    return out.stdout.strip()


def find_node() -> tuple[str, str]:
    """Paths of ``node`` and ``npm`` on PATH; :class:`Unavailable` if either is missing or too old."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None:
        raise Unavailable("no node on PATH (the Node client needs Node.js >= 18 and npm)")
    if npm is None:
        raise Unavailable("node is on PATH but npm is not")
    version = _version(node)
    major = re.match(r"v?(\d+)\.", version)
    if major is None or int(major.group(1)) < MIN_NODE:
        raise Unavailable(f"node {version} is older than {MIN_NODE}")
    return node, npm


def proto_dir() -> Path:
    """The schema the client loads: upstream's release-91 text where available, else ``protos/``."""
    chosen = os.environ.get("CTRADER_INTEROP_UPSTREAM_PROTOS")
    candidates = [Path(chosen)] if chosen else [UPSTREAM_RELEASE_91, ROOT / "protos"]
    for directory in candidates:
        if all((directory / name).is_file() for name in PROTO_FILES):
            return directory
    raise Unavailable(f"no OpenApi*.proto schema in {', '.join(map(str, candidates))}")


def install(npm: str, workdir: Path) -> Path:
    """``node_modules`` filled by ``npm ci`` from the committed lock file (reused while it is unchanged)."""
    key = hashlib.sha256(LOCK.read_bytes() + MANIFEST.read_bytes()).hexdigest()[:12]
    target = workdir / f"npm-{key}"
    modules = target / "node_modules"
    stamp = target / ".installed"
    if stamp.is_file() and (modules / "protobufjs" / "package.json").is_file():
        return modules
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(MANIFEST, target / "package.json")
    shutil.copy2(LOCK, target / "package-lock.json")
    print(f"interop: npm ci in {target}", flush=True)
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--cache", str(workdir / "npm-cache")],
        cwd=target,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise Unavailable(f"npm ci failed: {' / '.join(tail)}")
    stamp.write_text(key + "\n")
    return modules


def prepare(workdir: Path) -> list[str]:
    """Install the client's packages under ``workdir``; the command that runs its flow."""
    node, npm = find_node()
    schema = proto_dir()
    modules = install(npm, workdir)
    return [node, str(CLIENT), "--modules", str(modules), "--proto-dir", str(schema)]
