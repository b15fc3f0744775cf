"""The sample plans (`examples/` in the repository), wherever internflow is installed.

In a checkout they are the repository's `examples/`. An installed internflow (the image, a wheel)
has them as the wheel's data files, under its environment's `share/internflow/examples/` (the
image: /opt/internflow/share/internflow/examples/). A plan file named `examples/NAME` that does
not exist where the command runs is the sample of that name, so the commands in `--help` and the
documentation work as written in either.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path, PurePosixPath

#: The repository's examples, beside the packages (absent from an installed wheel).
CHECKOUT = Path(__file__).resolve().parent.parent / "examples"
#: Where the wheel installs them, under its environment's data directory (pyproject.toml).
INSTALLED = PurePosixPath("share/internflow/examples")


def examples_directory() -> Path | None:
    """The directory of the sample plans: the checkout's, else the installed one (None when
    neither is there)."""
    if CHECKOUT.is_dir():
        return CHECKOUT
    try:
        files = metadata.distribution("internflow").files or []
    except metadata.PackageNotFoundError:
        return None
    for file in files:
        if PurePosixPath(file.as_posix()).parent.as_posix().endswith(INSTALLED.as_posix()):
            return Path(str(file.locate())).resolve().parent
    return None


def example_plan(name: str = "plan.json") -> Path:
    """The sample plan `name` (a path that may not exist, when no samples are installed)."""
    directory = examples_directory()
    return (directory if directory is not None else CHECKOUT) / name


def plan_path(given: Path) -> Path:
    """`given`, or, when it does not exist and reads `examples/NAME`, the sample plan NAME."""
    if given.exists() or given.is_absolute() or given.parent != Path("examples"):
        return given
    sample = example_plan(given.name)
    return sample if sample.is_file() else given
