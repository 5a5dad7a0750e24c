"""CPU the whole machine spent: every process's, from /proc/stat (a shared machine's included)."""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """Busy CPU time of all cores since boot: user, nice, system, irq, softirq and steal."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    assert fields[0] == "cpu", fields
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


class MachineCpu:
    """`with MachineCpu() as cpu: ...` then `cpu.ms_per(count)`."""

    def __enter__(self) -> MachineCpu:
        self.began = machine_cpu_seconds()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = machine_cpu_seconds() - self.began

    def ms_per(self, count: int) -> float:
        return self.seconds * 1000 / count
