"""Checkpoints: one safetensors file holding the model's weights, optionally the optimizer's moments and other
tensors, and a JSON config (plus small JSON extras such as the step) in its `__metadata__`.

Written atomically (temp file + os.replace). Never pickles: optimizer state is split into tensors (safetensors) and
its JSON-serialisable rest (hyper-parameters, param ids).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

FORMAT = "cinr-checkpoint-1"
MAX_BYTES = 2 * 1024**3


class InvalidCheckpoint(ValueError):
    """A checkpoint file is missing, malformed, or not a CINR checkpoint."""


@dataclass
class Checkpoint:
    state_dict: dict[str, torch.Tensor]  # model weights and buffers
    config: dict  # the run's configuration (JSON)
    extra: dict = field(default_factory=dict)  # small JSON values, e.g. {"step": 200}
    optimizer_state: dict | None = None  # ready for optimizer.load_state_dict
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)  # other tensors, e.g. a generator state


def _to_jsonable(config) -> dict:
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    if isinstance(config, dict):
        return config
    raise TypeError(f"config must be a dataclass or a dict, got {type(config).__name__}")


def _split_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors: dict[str, torch.Tensor] = {}
    json_state: dict = {"param_groups": state["param_groups"], "state": {}}
    for pid, per_param in state["state"].items():
        entry = {}
        for key, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{pid}.{key}"] = value.detach().cpu().contiguous()
                entry[key] = {"tensor": f"{pid}.{key}"}
            else:
                entry[key] = value
        json_state["state"][str(pid)] = entry
    return tensors, json_state


def _join_optimizer(tensors: dict[str, torch.Tensor], json_state: dict) -> dict:
    state = {}
    for pid, entry in json_state["state"].items():
        state[int(pid)] = {k: tensors[f"optim/{v['tensor']}"] if isinstance(v, dict) and "tensor" in v else v
                           for k, v in entry.items()}
    return {"state": state, "param_groups": json_state["param_groups"]}


def save_checkpoint(path: str | Path, model: nn.Module, config, extra: dict | None = None, *,
                    optimizer: torch.optim.Optimizer | None = None,
                    tensors: dict[str, torch.Tensor] | None = None) -> Path:
    """Writes `model`'s state dict, `config` (dataclass or dict, stored as JSON), `extra` (JSON), and optionally the
    optimizer state and extra tensors to one safetensors file, atomically."""
    path = Path(path)
    out: dict[str, torch.Tensor] = {f"model/{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "config": json.dumps(_to_jsonable(config), sort_keys=True),
            "extra": json.dumps(extra or {}, sort_keys=True)}
    if optimizer is not None:
        opt_tensors, opt_json = _split_optimizer(optimizer.state_dict())
        out.update({f"optim/{k}": v for k, v in opt_tensors.items()})
        meta["optimizer"] = json.dumps(opt_json)
    for k, v in (tensors or {}).items():
        out[f"extra/{k}"] = v.detach().cpu().contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(out, tmp, metadata=meta)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _metadata(path: Path) -> dict:
    if not path.is_file():
        raise InvalidCheckpoint(f"{path}: no such checkpoint file")
    if path.stat().st_size > MAX_BYTES:
        raise InvalidCheckpoint(f"{path}: larger than {MAX_BYTES} bytes")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise InvalidCheckpoint(f"{path}: not a safetensors file ({exc})") from exc
    if meta.get("format") != FORMAT:
        raise InvalidCheckpoint(f"{path}: not a CINR checkpoint (format {meta.get('format')!r})")
    return meta


def read_config(path: str | Path) -> dict:
    """The JSON config stored in a checkpoint, without loading its tensors."""
    return json.loads(_metadata(Path(path))["config"])


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Reads a checkpoint written by `save_checkpoint` (safetensors only: nothing is unpickled)."""
    path = Path(path)
    meta = _metadata(path)
    try:
        raw = load_file(str(path))
        config = json.loads(meta["config"])
        extra = json.loads(meta.get("extra", "{}"))
        optimizer = _join_optimizer(raw, json.loads(meta["optimizer"])) if "optimizer" in meta else None
    except (SafetensorError, KeyError, ValueError) as exc:
        raise InvalidCheckpoint(f"{path}: damaged checkpoint ({exc})") from exc
    state = {k[len("model/"):]: v for k, v in raw.items() if k.startswith("model/")}
    tensors = {k[len("extra/"):]: v for k, v in raw.items() if k.startswith("extra/")}
    return Checkpoint(state_dict=state, config=config, extra=extra, optimizer_state=optimizer, tensors=tensors)


def load_encoder(path: str | Path):
    """The encoder inside a SimCLR or supervised checkpoint (config keys "spec" and "encoder"; weights under the
    "encoder." prefix), in eval mode: a RelationalTransformer or a WeightMessageGNN, as its config's kind says."""
    import inr
    from training.encoder import EncoderConfig, build_encoder

    ckpt = load_checkpoint(path)
    try:
        spec = inr.FieldSpec.from_dict(ckpt.config["spec"])
        # Encoders saved before `canonicalize` existed were trained on raw weights: keep encoding them that way; those
        # saved before `kind` existed are Relational Transformers.
        enc_cfg = EncoderConfig.from_dict({"canonicalize": False, "kind": "relational", **ckpt.config["encoder"]})
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidCheckpoint(f"{path}: config lacks a valid spec/encoder ({exc})") from exc
    model = build_encoder(spec, enc_cfg)
    state = {k[len("encoder."):]: v for k, v in ckpt.state_dict.items() if k.startswith("encoder.")}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise InvalidCheckpoint(f"{path}: encoder weights do not fit the config ({exc})") from exc
    return model.eval()
