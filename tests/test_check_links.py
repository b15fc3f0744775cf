"""The documentation's link check (deploy/check_links.py, run by `make lint`): it fails on a
relative link to a file that does not exist and on an anchor no heading makes, and the
repository's own README.md, docs/ and bench/README.md pass it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "deploy" / "check_links.py"


def _checker() -> Any:
    spec = importlib.util.spec_from_file_location("check_links", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_links = _checker()


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


GOOD = {
    "README.md": "# Project\n\nSee [the guide](docs/guide.md#first-steps) and [setup](#setup).\n\n"
    "## Setup\n\n[bench](bench/README.md), [a folder](docs/), [code](tools/run.py#L3).\n",
    "docs/guide.md": "# Guide\n\n## First steps\n\nBack to the [README](../README.md).\n",
    "bench/README.md": "# Bench\n\n[Guide](../docs/guide.md) and [the web](https://example.org/x).\n",
    "tools/run.py": "print('hi')\n",
}


def test_a_repository_whose_links_all_lead_somewhere_passes(tmp_path: Path) -> None:
    assert check_links.check(write(tmp_path, GOOD)) == []


def test_a_link_to_a_missing_file_fails_naming_the_file_and_line(tmp_path: Path) -> None:
    files = dict(GOOD)
    files["docs/guide.md"] += "\nSee [the API](api.md).\n"
    broken = check_links.check(write(tmp_path, files))
    assert broken == ["docs/guide.md:7: broken link (api.md): no such file or folder"]


def test_an_unknown_anchor_fails_in_another_file_and_in_the_same_one(tmp_path: Path) -> None:
    files = dict(GOOD)
    files["README.md"] += "\n[Later](docs/guide.md#later-steps) and [here](#set-up).\n"
    broken = check_links.check(write(tmp_path, files))
    assert len(broken) == 2, broken
    assert "README.md:9: broken link (docs/guide.md#later-steps): no heading" in broken[0]
    assert "README.md:9: broken link (#set-up): no heading with the anchor #set-up" in broken[1]


def test_a_link_out_of_the_repository_fails(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (tmp_path / "elsewhere.md").write_text("# Elsewhere\n")
    files = dict(GOOD)
    files["docs/guide.md"] += "\n[Out](../../elsewhere.md)\n"
    broken = check_links.check(write(root, files))
    assert broken == [
        "docs/guide.md:7: broken link (../../elsewhere.md): leads outside the repository"
    ]


def test_a_link_whose_text_wraps_onto_the_next_line_is_checked(tmp_path: Path) -> None:
    files = dict(GOOD)
    files["docs/guide.md"] += "\nAs the [first\nstep](#fist-steps) says.\n"
    broken = check_links.check(write(tmp_path, files))
    assert broken == [
        "docs/guide.md:7: broken link (#fist-steps): no heading with the anchor #fist-steps in "
        "docs/guide.md"
    ]


def test_links_in_code_are_not_links(tmp_path: Path) -> None:
    files = dict(GOOD)
    files["README.md"] += "\n`[not a link](nowhere.md)`\n\n```\n[nor this](nowhere.md)\n```\n"
    assert check_links.check(write(tmp_path, files)) == []


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Two commands", "two-commands"),
        ("The API's paths", "the-apis-paths"),
        ("Keys, issuer ids and did:web", "keys-issuer-ids-and-didweb"),
        ("VC-JWT (OB 3.0 section 8.2)", "vc-jwt-ob-30-section-82"),
        ("`internflow up`", "internflow-up"),
        ("The `agreement_deadline`", "the-agreement_deadline"),
        ("**Bold** and [a link](x.md)", "bold-and-a-link"),
        ("0001. A part that is down", "0001-a-part-that-is-down"),
        ("Città e perché", "città-e-perché"),
    ],
)
def test_anchors_are_computed_as_github_does(heading: str, anchor: str) -> None:
    assert anchor in check_links.anchors(f"# {heading}\n")


def test_a_repeated_heading_gets_a_numbered_anchor(tmp_path: Path) -> None:
    found = check_links.anchors(
        "# Guide\n\n## Example\n\n## Example\n\n```\n# not a heading\n```\n"
    )
    assert found == {"guide", "example", "example-1"}


def test_the_repository_s_documentation_passes() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    checked = {path.relative_to(ROOT).as_posix() for path in check_links.documents(ROOT)}
    assert {"README.md", "docs/README.md", "bench/README.md"} <= checked


def test_the_command_fails_on_a_broken_link(tmp_path: Path) -> None:
    files = dict(GOOD)
    files["bench/README.md"] += "\n[Gone](../docs/gone.md)\n"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(write(tmp_path, files))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert (
        "bench/README.md:5: broken link (../docs/gone.md): no such file or folder" in result.stdout
    )
