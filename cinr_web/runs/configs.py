"""Run configs: what each kind accepts, checked (and defaults filled in) when the run is created, not in the worker.

SimCLR and supervised configs are training's dataclasses (training.simclr.SimCLRConfig,
training.supervised.SupervisedConfig) as JSON, with the service's defaults (cinr_web.runs.defaults) for the settings a
config leaves out; nested dataclass fields (e.g. the encoder's) take nested objects.
Every kind also accepts "max_seconds": a wall-clock budget after which the run fails (Celery's own time limits do
not work in the solo pool the GPU workers use).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import typing

from cinr_web.runs.defaults import with_training_defaults

COMMON_KEYS = {"max_seconds"}
PROBE_KEYS = {"max_seconds"}
EMBEDDING_KEYS = {"max_seconds", "seed", "max_points"}
MAX_EMBEDDING_POINTS = 20_000

TRAINING_CONFIGS = {
    "simclr": ("training.simclr", "SimCLRConfig"),
    "supervised": ("training.supervised", "SupervisedConfig"),
}


def config_class(kind: str) -> type:
    module_name, class_name = TRAINING_CONFIGS[kind]
    return getattr(importlib.import_module(module_name), class_name)


def build_dataclass(cls: type, values: dict, where: str = "config"):
    """cls(**values) with nested dataclass fields built from nested dicts; ValueError names unknown keys."""
    if not isinstance(values, dict):
        raise ValueError(f"{where} must be an object, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"{where}: unknown settings {sorted(unknown)}; known: {sorted(names)}")
    kwargs = {}
    for key, value in values.items():
        hint = hints.get(key)
        if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = build_dataclass(hint, value, f"{where}.{key}")
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def training_config(kind: str, config: dict):
    """The training dataclass of a SimCLR / supervised run's config (without the web-only keys)."""
    values = {k: v for k, v in config.items() if k not in COMMON_KEYS}
    return build_dataclass(config_class(kind), values, f"{kind} config")


def _check_budget(config: dict) -> None:
    budget = config.get("max_seconds")
    if budget is not None and not (isinstance(budget, int | float) and math.isfinite(budget) and budget > 0):
        raise ValueError(f"max_seconds must be a positive number, got {budget!r}")


def normalise_config(kind: str, config: dict | None, *, inrset=None, parent=None) -> dict:
    """The config to store for a new run of `kind`, with defaults filled in. ValueError on anything wrong."""
    config = dict(config or {})
    _check_budget(config)
    if kind in TRAINING_CONFIGS:
        if kind == "simclr" and inrset is not None and inrset.seeds_per_image < 2:
            raise ValueError(f"SimCLR pairs two INRs of one image fitted from different seeds; INR set {inrset.pk} "
                             "has 1 seed per image (fit it with seeds_per_image >= 2)")
        config = with_training_defaults(kind, config)
        web = {k: config[k] for k in COMMON_KEYS if k in config}
        return {**dataclasses.asdict(training_config(kind, config)), **web}
    if parent is not None and kind in ("probe", "embedding") and parent.kind not in ("simclr", "supervised", "fit"):
        raise ValueError(f"a {kind} run's parent must be an encoder run (simclr or supervised), not {parent.kind}")
    if kind == "probe":
        unknown = set(config) - PROBE_KEYS
        if unknown:
            raise ValueError(f"probe config: unknown settings {sorted(unknown)}; known: {sorted(PROBE_KEYS)}")
        return config
    if kind == "embedding":
        unknown = set(config) - EMBEDDING_KEYS
        if unknown:
            raise ValueError(f"embedding config: unknown settings {sorted(unknown)}; known: {sorted(EMBEDDING_KEYS)}")
        seed = config.setdefault("seed", 0)
        points = config.setdefault("max_points", 5000)
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if not isinstance(points, int) or not 10 <= points <= MAX_EMBEDDING_POINTS:
            raise ValueError(f"max_points must be an integer in [10, {MAX_EMBEDDING_POINTS}], got {points!r}")
        return config
    raise ValueError(f"unknown run kind {kind!r}")
