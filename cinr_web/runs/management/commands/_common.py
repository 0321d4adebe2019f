"""Helpers shared by the run management commands."""

from __future__ import annotations

import json
import time

from django.core.management.base import CommandError

from cinr_web.inrsets.models import INRSet
from cinr_web.runs.models import Run
from cinr_web.runs.status import FINISHED


def parse_config(text: str | None) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"--config is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise CommandError("--config must be a JSON object")
    return value


def get_inrset(pk: int) -> INRSet:
    try:
        return INRSet.objects.get(pk=pk)
    except INRSet.DoesNotExist:
        raise CommandError(f"INR set {pk} does not exist") from None


def get_run(pk: int) -> Run:
    try:
        return Run.objects.get(pk=pk)
    except Run.DoesNotExist:
        raise CommandError(f"run {pk} does not exist") from None


def describe(run: Run) -> str:
    text = f"run {run.pk} {run.kind} {run.status} {run.progress:.0%}"
    if run.parent_id:
        text += f" (after run {run.parent_id})"
    return text


def wait(stdout, runs: list[Run], poll: float = 1.0) -> list[Run]:
    """Prints progress until every run is finished; returns them refreshed."""
    last = {}
    while True:
        runs = [Run.objects.get(pk=r.pk) for r in runs]
        for run in runs:
            line = describe(run)
            if last.get(run.pk) != line:
                stdout.write(line)
                last[run.pk] = line
        if all(r.status in FINISHED for r in runs):
            for run in runs:
                if run.status == "failed":
                    stdout.write(f"run {run.pk} failed: {run.error.splitlines()[0] if run.error else ''}")
                elif run.result:
                    stdout.write(f"run {run.pk} result: {json.dumps(_short(run.result))}")
            return runs
        time.sleep(poll)


def _short(result: dict) -> dict:
    return {k: v for k, v in result.items() if not isinstance(v, list | dict)}
