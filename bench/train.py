"""SimCLR step time on a busy machine: the thread policy (training.threads) against torch's default, and a run done
the way the web app's worker does it against `training.simclr.pretrain` in a plain process.

    .venv/bin/python -m bench.train                      # 3 modes x 5 rounds, 16 steps each, beside a 2-thread job
    .venv/bin/python -m bench.train --busy 0 --rounds 1  # on an otherwise idle machine

The work: 200 digits images x 2 seeds (SIREN 2-32-32-1, fitted once and cached under .cinr-cache/), SimCLR with the
`cpu` preset's encoder (neuron_stats) and no augmentations, batches of 64 pairs: the dashboard's default run on its
default dataset size (until 2026-12-03: the default encoder with the default augmentations).
Each mode runs in a fresh process (OpenMP and the BLAS pools read their variables when they load):
- cli-default: `pretrain` with torch's defaults (one thread per core, OpenMP's default wait policy), as every CINR
  process ran before the policy;
- cli-policy: `pretrain` after `training.threads.apply_thread_policy()` with CINR_TORCH_PROCESSES=--processes;
- web-policy: what a `gpu` worker does with a SimCLR run: a Run row in a database (SQLite in a temporary folder), the
  `cinr.train` task's body called in the process (claim, the Reporter's metric writes, live events to Redis,
  heartbeats, cancel checks, the checkpoint artifact), under the same policy as cli-policy; the worker's process
  takes its threads from the same rule when cinr_web loads.
The competing job runs the whole time, in one more process:
- `--competitor matmul` (the default): --busy threads of float32 matrix products, the same in every mode;
- `--competitor simclr`: another SimCLR run on the same INRs, started afresh for each mode with that mode's thread
  settings (torch's default for cli-default, the policy for the others): a second CINR worker training beside the
  first, as on a machine that runs the Procfile's worker and cpuworker. It is the case the policy is for: two
  processes whose OpenMP threads outnumber the cores. `--competitors N`: N such runs (a busier machine: a fit, a
  second training run, the web process's model API), and the policy divides the cores among N + 1 processes.
  `--side-by-side`: cli-policy and web-policy run at the same time, each the other's competitor, beside N - 1 more
  (the same N + 1 processes): with three 1-thread processes on two cores, whichever the scheduler leaves a core to
  itself steps up to a third faster, so two runs made one after the other differ by that much by luck; run together
  they share the luck.
Step times are the wall time between consecutive steps (the CLI's on_step calls; the web run's metric point
timestamps) over steps 2..N: their median, and their mean (a stall of a few steps shows in the mean, and the mean is
what a run's length is made of); then the median over rounds, and each round's web / CLI ratio. The web run also
prints the time its Reporter took per step (the run's result "reporting_seconds" over its steps): the part of a web
run's step that a plain `pretrain` does not have, measured inside the run rather than as a difference of two noisy
timings. The modes alternate within each round. Needs Redis
(REDIS_URL, default redis://127.0.0.1:6379/0) for the web mode's live events; its keys carry a prefix of their own
and are removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.machine import describe_machine, load_average

ROOT = Path(__file__).resolve().parent.parent
MODES = ("cli-default", "cli-policy", "web-policy")
POOL_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY",
                  "CINR_TORCH_THREADS", "CINR_TORCH_PROCESSES")
IMAGES, SEEDS, FIT_STEPS = 200, 2, 100


def fit_inr_dataset_once():
    """The INR dataset of the bench (fitted on first use, then loaded from .cinr-cache/)."""
    import torch

    from inr import FieldSpec
    from training.data import fit_inr_dataset
    from training.sources import load_builtin

    images = load_builtin("digits").subset(torch.arange(IMAGES), name=f"digits{IMAGES}")
    return fit_inr_dataset(images, FieldSpec.siren(), SEEDS, steps=FIT_STEPS, device="cpu",
                           cache_dir=ROOT / ".cinr-cache")


def simclr_config(steps: int, batch: int) -> dict:
    """The same config for every mode, whole (nothing left for the web app's defaults or the CLI's dataclass
    defaults to fill in): the `cpu` preset's encoder and recipe, as a dashboard run gets them."""
    from training.presets import PRESETS

    return PRESETS["cpu"].simclr_config(steps=steps, batch_size=batch, checkpoint_every=10**9).to_dict()


def busy_loop(threads: int) -> None:
    """The competing job: matrix products on `threads` threads until killed."""
    import torch

    torch.set_num_threads(threads)
    a = torch.randn(512, 512)
    while True:
        a = torch.tanh(a @ a)


def _step_times(times: list[float]) -> dict[str, float]:
    gaps = [b - a for a, b in zip(times[:-1], times[1:], strict=True)]
    gaps = gaps[1:] if len(gaps) > 1 else gaps  # step 1 includes the warm-up
    return {"step_seconds": statistics.median(gaps), "mean_step_seconds": statistics.fmean(gaps)}


def competing_simclr(dataset_path: str, batch: int) -> None:
    """The `simclr` competitor: SimCLR steps on the bench's INRs until killed, with the threads its environment
    gives (the parent sets the measured mode's)."""
    if os.environ.get("CINR_TORCH_PROCESSES"):
        from training.threads import apply_thread_policy

        apply_thread_policy()
    from training.data import INRDataset
    from training.simclr import SimCLRConfig, pretrain

    pretrain(INRDataset.load(dataset_path), SimCLRConfig.from_dict(simclr_config(10**9, batch)), device="cpu")


def wait_for_start() -> None:
    """With --side-by-side, a child says it is set up and waits for the parent's word, so that both children's
    steps run at the same time."""
    if os.environ.get("CINR_BENCH_SIDE_BY_SIDE"):
        print("ready", flush=True)
        sys.stdin.readline()


def child_cli(dataset_path: str, steps: int, batch: int) -> dict:
    import torch

    from training.data import INRDataset
    from training.simclr import SimCLRConfig, pretrain

    dataset = INRDataset.load(dataset_path)
    times: list[float] = []
    config = SimCLRConfig.from_dict(simclr_config(steps, batch))
    wait_for_start()
    pretrain(dataset, config, device="cpu", on_step=lambda step, metrics: times.append(time.perf_counter()))
    return {**_step_times(times), "threads": torch.get_num_threads()}


def child_web(dataset_path: str, steps: int, batch: int, workdir: str) -> dict:
    os.environ.update({"DJANGO_SETTINGS_MODULE": "cinr_web.settings", "DEBUG": "1", "CINR_DEVICE": "cpu",
                       "DATABASE_URL": f"sqlite:///{workdir}/bench.sqlite3", "MEDIA_ROOT": f"{workdir}/media",
                       "CINR_REDIS_PREFIX": f"cinr-bench-{os.getppid()}:"})
    import django

    django.setup()
    import torch
    from django.core.management import call_command

    from cinr_web.datasets.services import import_image_set
    from cinr_web.inrsets.models import INRSet
    from cinr_web.runs.configs import normalise_config
    from cinr_web.runs.models import MetricPoint, Run
    from cinr_web.runs.tasks import train
    from cinr_web.storage import save_file
    from training.data import INRDataset
    from training.sources import load_builtin

    call_command("migrate", verbosity=0)
    dataset = INRDataset.load(dataset_path)
    images = load_builtin("digits").subset(torch.arange(IMAGES), name=f"digits{IMAGES}")
    image_set = import_image_set(images, name=f"bench-{time.time_ns()}", source="builtin")
    inrset = INRSet.objects.create(dataset=image_set, spec=dataset.spec.to_dict(), fit_config=dataset.meta["fit"],
                                   seeds_per_image=SEEDS, num_inrs=len(dataset), status="succeeded")
    inrset.weights.name = save_file(f"inrsets/{inrset.pk}/weights.safetensors", Path(dataset_path))
    inrset.save(update_fields=["weights"])
    run = Run.objects.create(kind=Run.Kind.SIMCLR, inrset=inrset,
                             config=normalise_config("simclr", simclr_config(steps, batch), inrset=inrset))
    wait_for_start()
    train(run.pk)  # the task's body, as the worker runs it
    run.refresh_from_db()
    if run.status != "succeeded":
        raise RuntimeError(f"the web run ended {run.status}: {run.error[:500]}")
    stamps = MetricPoint.objects.filter(run=run, name="loss").order_by("step").values_list("time", flat=True)
    return {**_step_times([t.timestamp() for t in stamps]), "threads": torch.get_num_threads(),
            "reporting_seconds": run.result["reporting_seconds"] / steps}


def child(args: argparse.Namespace) -> None:
    if args.child.endswith("policy"):
        from training.threads import apply_thread_policy

        apply_thread_policy()
    if args.child.startswith("cli"):
        out = child_cli(args.dataset, args.steps, args.batch)
    else:
        out = child_web(args.dataset, args.steps, args.batch, args.workdir)
    print(json.dumps(out))


def mode_environment(mode: str, args: argparse.Namespace) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in POOL_VARIABLES}
    if mode.endswith("policy"):
        env["CINR_TORCH_PROCESSES"] = str(args.processes)
    return env


def run_mode(mode: str, dataset: Path, args: argparse.Namespace, workdir: str) -> dict:
    env = mode_environment(mode, args)
    competitors = []
    if args.competitor == "simclr":  # more training processes under the same thread settings as this mode
        competitors = [subprocess.Popen([sys.executable, "-m", "bench.train", "--competitor-child", str(dataset),
                                         "--batch", str(args.batch)], cwd=ROOT, env=env)
                       for _ in range(args.competitors)]
        time.sleep(5.0)  # past their start-up, into their steps
    command = [sys.executable, "-m", "bench.train", "--child", mode, "--dataset", str(dataset), "--steps",
               str(args.steps), "--batch", str(args.batch), "--workdir", workdir]
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    finally:
        for competitor in competitors:
            competitor.kill()
            competitor.wait()
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_side_by_side(dataset: Path, args: argparse.Namespace, workdir: str) -> dict[str, dict]:
    """cli-policy and web-policy at the same time, each the other's competing job, beside --competitors - 1 more
    SimCLR runs under the policy: both see the same load at the same moments, so their ratio is not at the mercy of
    which of them the scheduler favoured in its turn."""
    env = {**mode_environment("cli-policy", args), "CINR_BENCH_SIDE_BY_SIDE": "1"}
    competitors = [subprocess.Popen([sys.executable, "-m", "bench.train", "--competitor-child", str(dataset),
                                     "--batch", str(args.batch)], cwd=ROOT, env=env)
                   for _ in range(args.competitors - 1)]
    children = {mode: subprocess.Popen([sys.executable, "-m", "bench.train", "--child", mode, "--dataset",
                                        str(dataset), "--steps", str(args.steps), "--batch", str(args.batch),
                                        "--workdir", workdir], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for mode in ("cli-policy", "web-policy")}
    try:
        for mode, child in children.items():
            line = "start"
            while line and line.strip() != "ready":  # log lines may come first
                line = child.stdout.readline()
            if not line:
                raise SystemExit(f"{mode} failed before its first step:\n{child.stderr.read()[-3000:]}")
        for child in children.values():
            child.stdin.write("go\n")
            child.stdin.flush()
        out = {}
        for mode, child in children.items():
            stdout, stderr = child.communicate(timeout=3600)
            if child.returncode != 0:
                raise SystemExit(f"{mode} failed:\n{stderr[-3000:]}")
            out[mode] = json.loads(stdout.strip().splitlines()[-1])
        return out
    finally:
        for process in [*competitors, *children.values()]:
            process.kill()
            process.wait()


def delete_redis_keys(prefix: str) -> None:
    try:
        import redis

        client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    except Exception as exc:  # noqa: BLE001 - a bench must still print its figures
        print(f"(could not remove the bench's Redis keys {prefix}*: {exc})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=16, help="SimCLR steps per run")
    parser.add_argument("--batch", type=int, default=64, help="positive pairs per step")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the three modes")
    parser.add_argument("--busy", type=int, default=2, help="threads of the matmul competitor (0: none)")
    parser.add_argument("--competitor", choices=["matmul", "simclr"], default="matmul",
                        help="matmul: --busy threads of matrix products in every mode; simclr: a second SimCLR run "
                             "with the measured mode's thread settings")
    parser.add_argument("--competitors", type=int, default=1,
                        help="with --competitor simclr: how many competing SimCLR processes")
    parser.add_argument("--processes", type=int, default=None,
                        help="CINR_TORCH_PROCESSES of the policy modes (default: the run and its competing jobs, "
                             "--competitors + 1 with --competitor simclr, else 2)")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--side-by-side", action="store_true",
                        help="with --competitor simclr: run cli-policy and web-policy at the same time, each the "
                             "other's competitor, beside --competitors - 1 more (cli-default runs as before)")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--busy-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--competitor-child", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.busy_child:
        busy_loop(args.busy_child)
        return 0
    if args.competitor_child:
        competing_simclr(args.competitor_child, args.batch)
        return 0
    if args.child:
        child(args)
        return 0
    modes = [m for m in args.modes.split(",") if m]
    if not modes or set(modes) - set(MODES) or args.steps < 3 or args.rounds < 1 or args.competitors < 1:
        parser.error(f"--modes from {MODES}, --steps >= 3, --rounds >= 1, --competitors >= 1")
    if args.side_by_side and args.competitor != "simclr":
        parser.error("--side-by-side needs --competitor simclr (the two runs are SimCLR competitors of each other)")
    if args.processes is None:
        args.processes = args.competitors + 1 if args.competitor == "simclr" else 2
    print(describe_machine())
    competing = (f"{args.competitors} more SimCLR run(s), same threads as the mode" if args.competitor == "simclr"
                 else f"{args.busy} threads of matmul")
    if args.side_by_side:
        competing += "; cli-policy and web-policy side by side (each the other's competitor)"
    print(f"SimCLR, {IMAGES} digits images x {SEEDS} seeds (SIREN 2-32-32-1), the cpu preset's encoder, "
          f"batch {args.batch} pairs, {args.steps} steps per run; competing job: {competing}; policy: "
          f"CINR_TORCH_PROCESSES={args.processes}")
    busy = None
    if args.busy > 0 and args.competitor == "matmul":
        busy = subprocess.Popen([sys.executable, "-m", "bench.train", "--busy-child", str(args.busy)], cwd=ROOT)
        time.sleep(2.0)
    results: dict[str, list[float]] = {m: [] for m in modes}
    means: dict[str, list[float]] = {m: [] for m in modes}
    reporting_ms: dict[str, list[float]] = {m: [] for m in modes}
    try:
        with tempfile.TemporaryDirectory(prefix="cinr-bench-train-") as workdir:
            dataset = Path(workdir) / "inrs.safetensors"
            fit_inr_dataset_once().save(dataset)
            paired = args.side_by_side and {"cli-policy", "web-policy"} <= set(modes)
            for r in range(args.rounds):
                together = run_side_by_side(dataset, args, workdir) if paired else {}
                for mode in modes:
                    out = together.get(mode) or run_mode(mode, dataset, args, workdir)
                    results[mode].append(out["step_seconds"])
                    means[mode].append(out["mean_step_seconds"])
                    reporting = ""
                    if "reporting_seconds" in out:
                        reporting_ms[mode].append(1000 * out["reporting_seconds"])
                        reporting = f"   of which the Reporter {1000 * out['reporting_seconds']:.1f} ms"
                    print(f"[{r + 1}] {mode:12s} {out['step_seconds']:7.3f} s/step "
                          f"(mean {out['mean_step_seconds']:.3f}){reporting}   torch threads {out['threads']}   "
                          f"load average {load_average()}", flush=True)
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
        delete_redis_keys(f"cinr-bench-{os.getpid()}:")
    median = {m: statistics.median(v) for m, v in results.items()}
    mean = {m: statistics.median(v) for m, v in means.items()}
    for mode in modes:
        print(f"{mode:12s} median {median[mode]:.3f} s/step, mean {mean[mode]:.3f} s/step over {args.rounds} "
              "round(s)")
    if "cli-default" in median and "cli-policy" in median:
        print(f"policy vs torch's default (pretrain): {median['cli-default'] / median['cli-policy']:.2f}x faster "
              f"by the median step, {mean['cli-default'] / mean['cli-policy']:.2f}x by the mean step")
    if "cli-default" in median and "web-policy" in median:
        print(f"web run under the policy vs pretrain with torch's default: "
              f"{median['cli-default'] / median['web-policy']:.2f}x faster by the median step, "
              f"{mean['cli-default'] / mean['web-policy']:.2f}x by the mean step")
    if "cli-policy" in median and "web-policy" in median:
        # Each round's two runs are neighbours in time, so their ratio sees the same load; the spread over rounds
        # says how far one round's ratio can be trusted.
        paired = sorted(w / c for w, c in zip(results["web-policy"], results["cli-policy"], strict=True))
        print(f"web run / pretrain, same policy: {median['web-policy'] / median['cli-policy']:.3f} "
              f"(target <= 1.10); per round {', '.join(f'{p:.3f}' for p in paired)}")
        share = statistics.median(reporting_ms["web-policy"]) / (1000 * median["web-policy"])
        print(f"the web run's Reporter (metric writes, live events, heartbeats, cancel checks): "
              f"{statistics.median(reporting_ms['web-policy']):.1f} ms/step, {100 * share:.1f} % of its step")
    print(f"{describe_machine()} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
