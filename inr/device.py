"""Which device computations run on by default."""

from __future__ import annotations

import os

import torch


def default_device() -> torch.device:
    """The device named by env CINR_DEVICE: "auto" (default) = CUDA when available, else the CPU; or an explicit
    torch device string such as "cpu", "cuda", "cuda:1"."""
    name = os.environ.get("CINR_DEVICE", "auto").strip() or "auto"
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"CINR_DEVICE={name!r} is not a device: use auto, cpu, cuda or cuda:N") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"CINR_DEVICE={name!r} asks for CUDA but torch sees no CUDA device")
    return device
