"""Where a benchmark's CPU goes: seconds used by each process of the stack and by the driver."""

from __future__ import annotations

import psutil

from embedded.stack import EmbeddedStack, worker_name


def _cpu(process: psutil.Process) -> float:
    """User + system CPU seconds of a process (0 for one that has just exited)."""
    try:
        return float(sum(process.cpu_times()[:2]))
    except psutil.Error:
        return 0.0


class CpuWatch:
    """CPU seconds used by each of the stack's processes (with their children: PostgreSQL's
    backends) and by this driver, since start(); `processes` adds others by name, or stands for
    one of the stack's under its name."""

    def __init__(self, stack: EmbeddedStack, processes: dict[str, int] | None = None) -> None:
        pids = {
            "temporal": stack.temporal.pid,
            "postgresql": stack.postgres.pid,
            **{worker_name(i): pid for i, pid in enumerate(stack.worker_pids)},
            "api": stack.api_pid,
            **(processes or {}),
        }
        self.processes = {name: psutil.Process(pid) for name, pid in pids.items() if pid}
        self.processes["driver (this process)"] = psutil.Process()
        self._last: dict[str, float] = {}
        self.start()

    def _now(self) -> dict[str, float]:
        """CPU seconds so far by process; a process gone since keeps its last reading."""
        now = {}
        for name, process in self.processes.items():
            try:
                tree = [process]
                if not name.startswith("driver"):
                    tree += process.children(True)
                now[name] = sum(_cpu(p) for p in tree)
            except psutil.Error:
                now[name] = self._last.get(name, 0.0)
        self._last = now
        return now

    def start(self) -> None:
        self._base = self._now()

    def _used(self) -> dict[str, float]:
        now = self._now()
        return {name: now[name] - self._base.get(name, 0.0) for name in now}

    def seconds(self) -> dict[str, float]:
        """CPU seconds by process since start()."""
        return {name: round(used, 1) for name, used in self._used().items()}

    def figures(self, calls: int) -> dict[str, float]:
        """Milliseconds of CPU per call since start(), by process."""
        return {name: round(used * 1000 / max(calls, 1), 2) for name, used in self._used().items()}
