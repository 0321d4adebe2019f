"""The thread policy (training.threads): the usable cores divided among the processes that share them, one override,
cgroup quotas, and the entry points that apply it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from training import threads

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def clean_env(monkeypatch):
    for name in (threads.THREADS_ENV, threads.PROCESSES_ENV):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_it_divides_the_usable_cores_among_the_processes(clean_env):
    cores = threads.usable_cores()
    assert 1 <= cores <= (os.cpu_count() or 1)
    assert threads.policy_threads() == cores  # alone on the machine: every core
    assert threads.policy_threads(processes=cores) == 1
    assert threads.policy_threads(processes=cores * 4) == 1  # never zero
    clean_env.setenv(threads.PROCESSES_ENV, str(cores))
    assert threads.policy_threads() == 1


def test_it_takes_an_explicit_thread_count_over_the_rule(clean_env):
    clean_env.setenv(threads.THREADS_ENV, "3")
    clean_env.setenv(threads.PROCESSES_ENV, "64")
    assert threads.policy_threads() == 3


@pytest.mark.parametrize("name,value", [(threads.THREADS_ENV, "0"), (threads.THREADS_ENV, "two"),
                                        (threads.PROCESSES_ENV, "-1")])
def test_it_refuses_a_setting_that_is_not_a_positive_integer(clean_env, name, value):
    clean_env.setenv(name, value)
    with pytest.raises(ValueError, match=f"{name} must be a positive integer, got '{value}'"):
        threads.policy_threads()


def test_it_reads_cgroup_v2_and_v1_cpu_quotas(tmp_path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert threads.cgroup_cpu_quota(v2) == 1.5
    (v2 / "cpu.max").write_text("max 100000\n")
    assert threads.cgroup_cpu_quota(v2) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert threads.cgroup_cpu_quota(v1) == 3.0
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert threads.cgroup_cpu_quota(v1) is None
    assert threads.cgroup_cpu_quota(tmp_path / "none") is None


def _fresh_process(code: str, **env: str) -> str:
    base = {k: v for k, v in os.environ.items()
            if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY",
                         threads.THREADS_ENV, threads.PROCESSES_ENV)}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**base, **env}, capture_output=True,
                          text=True, timeout=120, check=True)
    return done.stdout.strip()


def test_it_sets_the_pools_before_torch_loads_in_every_django_process():
    # Loading cinr_web (web server, workers, manage.py) applies the rule before torch is imported: torch's own
    # count and OpenMP's wait policy come from it, with no call to torch.set_num_threads.
    code = ("import os, cinr_web, torch; print(torch.get_num_threads(), os.environ['OMP_WAIT_POLICY'], "
            "os.environ['OMP_NUM_THREADS'])")
    assert _fresh_process(code, CINR_TORCH_PROCESSES="64") == "1 PASSIVE 1"
    assert _fresh_process(code, CINR_TORCH_THREADS="1", OMP_WAIT_POLICY="ACTIVE") == "1 ACTIVE 1"


def test_it_applies_the_policy_even_after_torch_was_loaded(clean_env):
    import torch

    before = torch.get_num_threads()
    try:
        clean_env.setenv(threads.THREADS_ENV, "1")
        assert threads.apply_thread_policy() == 1 and torch.get_num_threads() == 1
        clean_env.setenv(threads.THREADS_ENV, "2")
        assert threads.apply_thread_policy() == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_it_describes_the_process_count_a_caller_passed():
    code = ("from training.threads import apply_thread_policy, describe; apply_thread_policy(3); "
            "print(describe())")
    assert "processes 3," in _fresh_process(code)
