"""What a bench ran on, printed beside its figures: these machines are shared and noisy, so a figure without its CPU,
its cores, its load and its thread count cannot be compared with anything."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from training.threads import usable_cores


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_average() -> str:
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def describe_machine() -> str:
    """'machine: AMD EPYC, 2 usable cores of 2, load average 1.10/0.80/0.50 (1/5/15 min)'."""
    return (f"machine: {cpu_model()}, {usable_cores()} usable cores of {os.cpu_count()}, "
            f"load average {load_average()} (1/5/15 min)")
