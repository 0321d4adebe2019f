"""The thread policy of every CINR process that runs torch: one rule, one override.

A process gets `usable_cores() // processes` intra-op threads (at least one), where `usable_cores()` is what the
process may run on (its CPU affinity, capped by a cgroup CPU quota) and `processes` is how many torch processes share
those cores (`CINR_TORCH_PROCESSES`, default 1: a CLI run alone on its machine). `CINR_TORCH_THREADS` overrides the
rule with a fixed count. OpenMP threads wait passively (`OMP_WAIT_POLICY=PASSIVE`) unless the environment says
otherwise: an idle OpenMP thread that spins holds a core that another process needs.

Why: torch's default is one thread per core. On a 2-core machine with one other busy job, a SimCLR step took
1.94 s with 2 threads against 0.99 s with 1 (the threads spin and wait on each other's barriers), and the web app's
worker, web process and second worker each took both cores (bench/threads.py measures this on the machine at hand).

`prepare_environment` must run before torch, numpy or scikit-learn is imported (OpenMP and the BLAS pools read their
variables once, when loaded); `apply_thread_policy` then sets torch's count. This module imports torch only inside
`apply_thread_policy`, so the entry points (cinr_web.asgi, cinr_web.celery, the CLIs) can call the first early.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

THREADS_ENV = "CINR_TORCH_THREADS"
PROCESSES_ENV = "CINR_TORCH_PROCESSES"
_POOL_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """Cores allowed by the cgroup CPU quota (v2 `cpu.max`, v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`), or None
    when there is no quota."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup quota (rounded down, at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        cores = min(cores, max(1, math.floor(quota)))
    return max(1, cores)


def _positive_int(name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a positive integer, got {text!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {text!r}")
    return value


def policy_threads(processes: int | None = None) -> int:
    """Intra-op threads for this process: CINR_TORCH_THREADS when set, else usable_cores() // processes (at least 1).
    processes None: CINR_TORCH_PROCESSES (default 1)."""
    explicit = os.environ.get(THREADS_ENV, "").strip()
    if explicit:
        return _positive_int(THREADS_ENV, explicit)
    if processes is None:
        processes = _positive_int(PROCESSES_ENV, os.environ.get(PROCESSES_ENV, "").strip() or "1")
    return max(1, usable_cores() // max(1, processes))


_processes: int | None = None  # the processes a caller passed to prepare_environment, if any


def prepare_environment(processes: int | None = None) -> int:
    """Sets the OpenMP and BLAS pool sizes and the passive wait policy for this process (where the environment does
    not already set them) and returns the thread count. Call before torch or numpy is imported."""
    global _processes
    threads = policy_threads(processes)
    if processes is not None:  # what describe() reports: the count the rule used, not only the environment's
        _processes = int(processes)
    for name in _POOL_VARIABLES:
        os.environ.setdefault(name, str(threads))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return threads


def apply_thread_policy(processes: int | None = None) -> int:
    """prepare_environment, then torch.set_num_threads; returns the count. Safe to call again."""
    threads = prepare_environment(processes)
    import torch

    torch.set_num_threads(threads)
    return threads


def describe() -> str:
    """One line for logs and benches: threads, usable cores, processes sharing them, wait policy."""
    import torch

    return (f"torch threads {torch.get_num_threads()} (usable cores {usable_cores()}, "
            f"processes {_processes or os.environ.get(PROCESSES_ENV, '') or 1}, "
            f"{THREADS_ENV}={os.environ.get(THREADS_ENV, '') or 'unset'}, "
            f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')})")
