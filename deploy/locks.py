"""The lock files, all exported from uv.lock: what the image installs, what builds its wheel, and
the installer that `make` bootstraps.

    python deploy/locks.py write    # after `uv lock`: rewrite the exports (`make lock` runs it)
    python deploy/locks.py check    # exit 1, naming the file, if uv.lock or an export is stale

uv.lock is the one resolution (every platform and Python the project supports, hashes of every
file); each file below is a view of it in pip's requirements format, hashes included, so that the
image's `pip install --require-hashes` and the bootstrap need no uv. Nothing here asks a package
index anything: `uv lock --check --offline` compares uv.lock with pyproject.toml alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Each export: its file and what `uv export` selects from uv.lock.
EXPORTS: dict[str, tuple[str, ...]] = {
    # The image: the product and its `otel` extra; no dev group, no embedded stack.
    "requirements.lock": ("--no-dev", "--extra", "otel"),
    # The image's build stage: the build backend, in a venv the image does not keep.
    "deploy/build.lock": ("--only-group", "build"),
    # `make`'s bootstrap: uv itself, installed by pip with --require-hashes.
    "deploy/tools.lock": ("--only-group", "tools"),
}


def uv() -> str:
    """The uv beside this Python (the venv's, at the version the lock pins)."""
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.is_file() else "uv"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    # No network and no interpreter downloads: everything needed is in uv.lock.
    env = {**os.environ, "UV_OFFLINE": "1", "UV_PYTHON_DOWNLOADS": "never"}
    return subprocess.run(
        [uv(), *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )


def export(name: str) -> str:
    """The content `name` must have: uv.lock's view for it, with its hashes."""
    result = _run(
        "export",
        "--frozen",
        "--no-emit-project",
        "--no-annotate",
        "--no-header",
        "--quiet",
        *EXPORTS[name],
    )
    if result.returncode != 0:
        raise RuntimeError(f"uv export for {name} failed: {result.stderr.strip()}")
    header = (
        f"# Exported from uv.lock by deploy/locks.py ({' '.join(EXPORTS[name])}); do not edit:\n"
        "# `make lock` refreshes uv.lock and every export.\n"
    )
    return header + result.stdout


def stale() -> list[str]:
    """What is out of date, one sentence each (empty: uv.lock matches pyproject.toml and every
    export matches uv.lock)."""
    problems = []
    checked = _run("lock", "--check", "--offline")
    if checked.returncode != 0:
        problems.append(
            "uv.lock does not match pyproject.toml: run `make lock` "
            f"({checked.stderr.strip().splitlines()[-1] if checked.stderr.strip() else 'uv'})"
        )
        return problems
    for name in EXPORTS:
        path = ROOT / name
        if not path.is_file() or path.read_text() != export(name):
            problems.append(f"{name} is not uv.lock's export: run `make lock`")
    return problems


def main() -> int:
    command = sys.argv[1:]
    if command == ["write"]:
        for name in EXPORTS:
            (ROOT / name).write_text(export(name))
            print(f"wrote {name}")
        return 0
    if command == ["check"]:
        problems = stale()
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
