"""Model API benchmark: latency of POST /api/encoders/<id>/embed for one INR, and INRs/s for batches of 64.

    python -m bench.api [--state DIR] [--requests 200] [--batches 20] [--max-seconds 60]

Everything is real: a fresh state directory (SQLite database, media) is migrated, the built-in digits are imported,
fitted into SIREN INRs and a SimCLR encoder with the DEFAULT EncoderConfig is trained for a few steps, then probed and
mapped, by a real Celery worker (solo pool) on the local Redis. The ASGI server (daphne) then serves on loopback and a
single-connection load generator (httpx, keep-alive, token auth) sends bounded numbers of requests, each bounded in
time. --state DIR keeps the trained encoder between invocations (the training step is skipped when DIR has one).

Baseline measured in the same run: GET /api/encoders/<id>/ (same server, auth and routing, no model work), so the
figures can be read as "model API cost over a trivial API call" on this noisy shared machine.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.machine import describe_machine

ROOT = Path(__file__).resolve().parent.parent
BATCH = 64


def env_for(state: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "cinr_web.settings",
        "DATABASE_URL": f"sqlite:///{state / 'bench.sqlite3'}",
        "MEDIA_ROOT": str(state / "media"),
        "CINR_VAR_DIR": str(state),
        "CINR_REDIS_PREFIX": f"cinr-bench-{os.getpid()}:",
        "CINR_EMBED_THROTTLE": "1000000/minute",  # the benchmark measures the API, not its rate limit
        "CINR_DEVICE": env.get("CINR_DEVICE", "cpu"),
        "DEBUG": "0",  # as deployed; with DEBUG off the settings need a key of their own
        "SECRET_KEY": env.get("SECRET_KEY") or secrets.token_urlsafe(50),
    })
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def wait_for_run(run, timeout: float):
    from cinr_web.runs.models import Run

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fresh = Run.objects.get(pk=run.pk)
        if fresh.status in ("succeeded", "failed", "cancelled"):
            if fresh.status != "succeeded":
                raise SystemExit(f"run {fresh.pk} ({fresh.kind}) {fresh.status}: {fresh.error}")
            return fresh
        time.sleep(0.5)
    raise SystemExit(f"run {run.pk} ({run.kind}) did not finish within {timeout} s")


def train_encoder(env: dict[str, str], args) -> int:
    """Digits -> SIREN INRs -> SimCLR (default encoder) -> probe and t-SNE map, through a real Celery worker.
    Returns the encoder run's id."""
    from django.contrib.auth import get_user_model

    import inr
    from cinr_web.datasets.services import import_builtin
    from cinr_web.inrsets.services import start_fit
    from cinr_web.runs.models import Run
    from cinr_web.runs.services import start_run

    existing = Run.objects.filter(kind="simclr", status="succeeded").order_by("-id").first()
    if existing is not None and {"probe", "embedding"} <= set(
            existing.children.filter(status="succeeded").values_list("kind", flat=True)):
        print(f"reusing the trained encoder run {existing.pk} in {env['CINR_VAR_DIR']}", flush=True)
        return existing.pk
    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_staff": True})
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "cinr_web", "worker", "-P", "solo",
                               "-Q", "gpu,default", "--loglevel", "WARNING", "-c", "1"], cwd=ROOT, env=env)
    try:
        t0 = time.monotonic()
        dataset = import_builtin("digits")
        spec = inr.FieldSpec.siren()
        inrset = start_fit(dataset, spec.to_dict(), {"steps": args.fit_steps}, 2, user)  # SimCLR pairs 2 seeds
        wait_for_run(inrset.fit_run, timeout=600)
        inrset.refresh_from_db()
        print(f"fitted {inrset.num_inrs} digits INRs, PSNR {inrset.psnr_mean:.1f} dB "
              f"({time.monotonic() - t0:.0f} s)", flush=True)
        simclr = start_run("simclr", inrset, {"steps": args.train_steps, "batch_size": 64}, user)
        simclr = wait_for_run(simclr, timeout=900)
        probe = wait_for_run(start_run("probe", inrset, {}, user, parent=simclr), timeout=600)
        wait_for_run(start_run("embedding", inrset, {}, user, parent=simclr), timeout=900)
        print(f"trained the encoder (run {simclr.pk}), probe accuracy {probe.result.get('accuracy')} "
              f"({time.monotonic() - t0:.0f} s)", flush=True)
        return simclr.pk
    finally:
        stop(worker, timeout=30)


def stop(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()


def weight_files(spec_dict: dict, count: int) -> list[bytes]:
    """`count` weight files of one INR each: real fitted digits INRs from the encoder's own INR set would be
    nicer, but the cost of the embed call does not depend on the values; random initialisations of the right
    architecture keep this independent of the set."""
    import inr

    spec = inr.FieldSpec.from_dict(spec_dict)
    out = []
    for i in range(count):
        buffer = io.BytesIO()
        inr.save(buffer, spec, inr.init(spec, 1, seed=i))
        out.append(buffer.getvalue())
    return out


def batch_file(spec_dict: dict, size: int, seed: int) -> bytes:
    import inr

    spec = inr.FieldSpec.from_dict(spec_dict)
    buffer = io.BytesIO()
    inr.save(buffer, spec, inr.init(spec, size, seed=seed))
    return buffer.getvalue()


def timed(fn, count: int, max_seconds: float) -> list[float]:
    times = []
    stop = time.monotonic() + max_seconds
    for i in range(count):
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
        if time.monotonic() > stop:
            break
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state", type=Path, default=None, help="state directory to keep (default: a temp dir)")
    parser.add_argument("--requests", type=int, default=200, help="single-INR requests (default 200)")
    parser.add_argument("--batches", type=int, default=20, help="requests of 64 INRs (default 20)")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="time bound per measured phase")
    parser.add_argument("--fit-steps", type=int, default=100)
    parser.add_argument("--train-steps", type=int, default=60)
    parser.add_argument("--threads", type=lambda v: [int(t) for t in v.split(",")], default=[1, 2],
                        help="torch thread counts of the server to measure, e.g. 1,2 (default)")
    args = parser.parse_args()
    print(describe_machine(), flush=True)

    state = args.state or Path(tempfile.mkdtemp(prefix="cinr-bench-api-"))
    state.mkdir(parents=True, exist_ok=True)
    env = env_for(state)
    setup_django(env)
    run_id = train_encoder(env, args)

    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.get(username="bench")
    token, _ = Token.objects.get_or_create(user=user)
    results = []
    for threads in args.threads:
        figures = {"torch_threads": threads, **encoder_only(run_id, threads, args),
                   **measure_server(env, run_id, token.key, threads, args)}
        figures["api_over_encoder_one"] = figures["embed_one_p50_ms"] / figures["encoder_only_one_ms"]
        figures["api_over_encoder_batch64"] = figures["encoder_only_batch64_inrs_per_s"] / figures[
            "embed_batch64_inrs_per_s"]
        results.append(figures)
        print(json.dumps(figures, indent=2), flush=True)
    for f in results:
        print(f"[{f['torch_threads']} torch thread(s)] embed 1 INR: p50 {f['embed_one_p50_ms']:.1f} ms, "
              f"p99 {f['embed_one_p99_ms']:.1f} ms (target p50 <= 20 ms); encoder alone "
              f"{f['encoder_only_one_ms']:.1f} ms; trivial GET p50 {f['baseline_get_p50_ms']:.1f} ms")
        print(f"[{f['torch_threads']} torch thread(s)] embed batches of {BATCH}: "
              f"{f['embed_batch64_inrs_per_s']:.0f} INRs/s (target >= 300); encoder alone "
              f"{f['encoder_only_batch64_inrs_per_s']:.0f} INRs/s")
    print(f"{describe_machine()} at the end")


def encoder_only(run_id: int, threads: int, args) -> dict:
    """Baseline in this process: the same encoder's forward pass alone (no HTTP, no parsing, no probe or map)."""
    import torch

    import inr
    from cinr_web.runs import artifacts
    from cinr_web.runs.models import Run

    run = Run.objects.get(pk=run_id)
    encoder, _ = artifacts.load_encoder(run.artifact("checkpoint"))
    spec = encoder.spec
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        one, batch = inr.init(spec, 1, seed=5), inr.init(spec, BATCH, seed=6)
        with torch.inference_mode():
            for _ in range(5):
                encoder.encode_params(one)
                encoder.encode_params(batch)
            one_times = timed(lambda i: encoder.encode_params(one), args.requests, args.max_seconds)
            batch_times = timed(lambda i: encoder.encode_params(batch), args.batches, args.max_seconds)
    finally:
        torch.set_num_threads(previous)
    return {"encoder_only_one_ms": 1000 * statistics.median(one_times),
            "encoder_only_batch64_inrs_per_s": BATCH * len(batch_times) / sum(batch_times)}


def measure_server(env: dict[str, str], run_id: int, token: str, threads: int, args) -> dict:
    """Starts daphne on loopback (CINR_TORCH_THREADS=threads) and measures the model API and a trivial GET."""
    import logging

    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                               "cinr_web.asgi:application"], cwd=ROOT, env={**env, "CINR_TORCH_THREADS": str(threads)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    # TCP_NODELAY, as urllib3/requests set by default: without it a POST's body waits for the ACK of its headers
    # (Nagle against delayed ACK), ~40 ms on Linux, which would measure the client's socket, not the API.
    transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Token {token}"}, timeout=30.0,
                          transport=transport) as client:
            for _ in range(150):
                try:
                    if client.get(f"/api/encoders/{run_id}/").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            else:
                raise SystemExit("the ASGI server did not come up")
            encoder = client.get(f"/api/encoders/{run_id}/").json()
            url = f"/api/encoders/{run_id}/embed"
            singles = weight_files(encoder["spec"], 16)
            batches = [batch_file(encoder["spec"], BATCH, seed=1000 + i) for i in range(4)]
            answers = {}

            server_times: dict[str, list[float]] = {}
            batch_server_times: dict[str, list[float]] = {}

            def record_server_timing(r, into: dict[str, list[float]]) -> None:
                for part in r.headers.get("server-timing", "").split(","):  # "read;dur=1.2, model;dur=6.5"
                    name, _, dur = part.strip().partition(";dur=")
                    if dur:
                        into.setdefault(name, []).append(float(dur))

            def embed_one(i: int) -> None:
                r = client.post(url, files={"files": (f"inr{i}.safetensors", singles[i % len(singles)])})
                if r.status_code != 200:
                    raise SystemExit(f"embed failed: {r.status_code} {r.text[:300]}")
                answers["one"] = r.json()
                record_server_timing(r, server_times)

            def embed_batch(i: int) -> None:
                r = client.post(url, files={"files": (f"batch{i}.safetensors", batches[i % len(batches)])})
                if r.status_code != 200 or len(r.json()["results"]) != BATCH:
                    raise SystemExit(f"batch embed failed: {r.status_code} {r.text[:300]}")
                record_server_timing(r, batch_server_times)

            def baseline(i: int) -> None:
                client.get(f"/api/encoders/{run_id}/").raise_for_status()

            # warm-up: the first call loads the encoder, the probe and the map (with its stored features; a map made
            # before features were stored: encoding up to 2,000 mapped INRs)
            first = client.post(url, files={"files": ("first.safetensors", singles[0])}, timeout=600.0)
            if first.status_code != 200:
                raise SystemExit(f"embed failed: {first.status_code} {first.text[:300]}")
            answers["first_call_s"] = first.elapsed.total_seconds()
            for i in range(5):
                embed_one(i)
                embed_batch(i)
                baseline(i)
            base_times = timed(baseline, args.requests, args.max_seconds)
            server_times.clear()
            batch_server_times.clear()
            one_times = timed(embed_one, args.requests, args.max_seconds)
            batch_times = timed(embed_batch, args.batches, args.max_seconds)
    finally:
        stop(server, timeout=10)
    sample = answers["one"]
    return {
        "encoder_run": run_id,
        "classifier": sample["classifier"],
        "has_map_position": sample["results"][0]["map_position"] is not None,
        "first_call_s": answers["first_call_s"],
        "baseline_get_p50_ms": 1000 * statistics.median(base_times),
        "embed_one_p50_ms": 1000 * statistics.median(one_times),
        "embed_one_p99_ms": 1000 * percentile(one_times, 0.99),
        "embed_one_requests": len(one_times),
        **{f"embed_one_server_{name}_p50_ms": statistics.median(values) for name, values in server_times.items()},
        "embed_batch64_p50_ms": 1000 * statistics.median(batch_times),
        **{f"embed_batch64_server_{name}_p50_ms": statistics.median(values)
           for name, values in batch_server_times.items()},
        "embed_batch64_inrs_per_s": BATCH * len(batch_times) / sum(batch_times),
        "embed_batch64_requests": len(batch_times),
    }


if __name__ == "__main__":
    main()
