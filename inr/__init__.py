"""inr: batched neural fields (SIREN, MFN), fitting, weight-space augmentations, symmetries, graph view, weight files.

Layer 1 of CINR: depends on torch, numpy and safetensors only.
"""

from inr.fields import Params, check_params, evaluate, grid, init, nyquist, pixel_spacing, render
from inr.spec import FieldSpec

__all__ = [
    "FieldSpec", "Params", "check_params", "evaluate", "grid", "init", "nyquist", "pixel_spacing", "render",
]
