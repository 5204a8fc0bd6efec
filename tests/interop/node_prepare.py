"""Prepare a Node interop client: find Node and npm, install its locked packages, name its schema.

``run_interop.py`` loads this module for each Node client (``node/``: protobufjs over TLS;
``node_json/``: JSON over WebSocket with ``ws``) and calls :func:`prepare` with the client's
directory and a cache directory of its own. The client's packages, pinned by its committed
``package-lock.json``, are installed with ``npm ci`` into a directory named after the hash of its
lock file and manifest inside that cache, never into the repository, and reused while they are
unchanged.

The protobufjs client decodes with Spotware's published schema (:func:`upstream_schema_dir`): the
upstream ``release-91`` snapshot when the reference copy is beside this checkout
(``../shared/reference``; ``$CTRADER_INTEROP_UPSTREAM_PROTOS`` names another directory), else the
project's ``protos/``, whose field labels, numbers and types are upstream's. Either way its
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
ROOT = HERE.parent.parent
MIN_NODE = 18
UPSTREAM_RELEASE_91 = ROOT.parent / "shared" / "reference" / "openapi-proto-messages" / "release-91"
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
        raise Unavailable(f"no node on PATH (the Node clients need Node.js >= {MIN_NODE} and npm)")
    if npm is None:
        raise Unavailable("node is on PATH but npm is not")
    version = _version(node)
    major = re.match(r"v?(\d+)\.", version)
    if major is None or int(major.group(1)) < MIN_NODE:
        raise Unavailable(f"node {version} is older than {MIN_NODE}")
    return node, npm


def upstream_schema_dir() -> Path:
    """The schema the protobufjs client loads: upstream's release-91 text where available, else ``protos/``."""
    chosen = os.environ.get("CTRADER_INTEROP_UPSTREAM_PROTOS")
    candidates = [Path(chosen)] if chosen else [UPSTREAM_RELEASE_91, ROOT / "protos"]
    for directory in candidates:
        if all((directory / name).is_file() for name in PROTO_FILES):
            return directory
    raise Unavailable(f"no OpenApi*.proto schema in {', '.join(map(str, candidates))}")


def npm_ci(npm: str, client_dir: Path, workdir: Path, marker: str) -> Path:
    """``node_modules`` filled by ``npm ci`` from the client's lock file (reused while it is unchanged).

    ``marker`` is a package the lock installs: its ``package.json`` proves an earlier install whole.
    """
    manifest, lock = client_dir / "package.json", client_dir / "package-lock.json"
    key = hashlib.sha256(lock.read_bytes() + manifest.read_bytes()).hexdigest()[:12]
    target = workdir / f"npm-{key}"
    modules = target / "node_modules"
    stamp = target / ".installed"
    if stamp.is_file() and (modules / marker / "package.json").is_file():
        return modules
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(manifest, target / "package.json")
    shutil.copy2(lock, target / "package-lock.json")
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


def prepare(client_dir: Path, workdir: Path, *, marker: str, with_schema: bool = False) -> list[str]:
    """Install the client in ``client_dir`` under ``workdir``; the command that runs its flow
    (``client.js --modules DIR``, plus ``--proto-dir DIR`` for a client that loads the schema)."""
    node, npm = find_node()
    extra = ["--proto-dir", str(upstream_schema_dir())] if with_schema else []
    modules = npm_ci(npm, client_dir, workdir, marker)
    return [node, str(client_dir / "client.js"), "--modules", str(modules), *extra]
