"""Where a benchmark's CPU goes: seconds used by each process of the stack and by the driver."""

from __future__ import annotations

import psutil

from runtime.stack import EmbeddedStack


class CpuWatch:
    """CPU seconds used by each of the stack's processes (with their children: PostgreSQL's
    backends) and by this driver, since start()."""

    def __init__(self, stack: EmbeddedStack) -> None:
        pids = {
            "temporal": stack.temporal.pid,
            "postgresql": stack.postgres.pid,
            "worker": stack.worker_pid,
            "api": stack.api_pid,
        }
        self.processes = {name: psutil.Process(pid) for name, pid in pids.items() if pid}
        self.processes["driver (this process)"] = psutil.Process()
        self.start()

    def _now(self) -> dict[str, float]:
        now = {}
        for name, process in self.processes.items():
            tree = [process] if name.startswith("driver") else [process, *process.children(True)]
            now[name] = sum(sum(p.cpu_times()[:2]) for p in tree if p.is_running())
        return now

    def start(self) -> None:
        self._base = self._now()

    def _used(self) -> dict[str, float]:
        now = self._now()
        return {name: now[name] - self._base[name] for name in now}

    def seconds(self) -> dict[str, float]:
        """CPU seconds by process since start()."""
        return {name: round(used, 1) for name, used in self._used().items()}

    def figures(self, calls: int) -> dict[str, float]:
        """Milliseconds of CPU per call since start(), by process."""
        return {name: round(used * 1000 / max(calls, 1), 2) for name, used in self._used().items()}
