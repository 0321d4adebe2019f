"""inr: batched neural fields (SIREN, MFN), fitting, weight-space augmentations, symmetries, graph view, weight files.

Layer 1 of CINR: depends on torch, numpy and safetensors only.
"""

from inr.augment import (
    AugmentDraw,
    AugmentPolicy,
    add_noise,
    apply_augmentation,
    colour,
    colour_matrix,
    dropout,
    intensity,
    output_layer,
    random_augment,
    rotate,
    sample_augmentation,
    scale,
    translate,
)
from inr.canonical import canonicalize
from inr.device import default_device
from inr.fields import Params, check_params, evaluate, grid, init, nyquist, pixel_spacing, render
from inr.fit import DEFAULT_FIT, FitCancelled, FitDefaults, FitResult, band_limit, fit, psnr
from inr.graph import Graph, GraphLayout, dense_edges, edge_values, graph_layout, node_features, to_graph
from inr.io import InvalidWeights, load, params_from_arrays, save
from inr.spec import LIBRARY_LIMITS, FieldSpec, SpecLimits
from inr.spectral import out_of_band_energy, spectrum
from inr.symmetry import apply_permutations, node_permutation, permute, random_permutations

__all__ = [
    "FieldSpec", "Params", "check_params", "evaluate", "grid", "init", "nyquist", "pixel_spacing", "render",
    "LIBRARY_LIMITS", "SpecLimits",
    # fitting, device, spectra (inr-fit)
    "DEFAULT_FIT", "FitCancelled", "FitDefaults", "FitResult", "band_limit", "default_device", "fit", "psnr",
    "out_of_band_energy", "spectrum",
    # graph view (inr-transform)
    "Graph", "GraphLayout", "dense_edges", "edge_values", "graph_layout", "node_features", "to_graph",
    # augmentations and symmetries (inr-transform)
    "AugmentDraw", "AugmentPolicy", "add_noise", "apply_augmentation", "colour", "colour_matrix", "dropout",
    "intensity", "output_layer", "random_augment", "rotate",
    "sample_augmentation", "scale", "translate",
    "apply_permutations", "canonicalize", "node_permutation", "permute", "random_permutations",
    # weight files (inr-transform)
    "InvalidWeights", "load", "params_from_arrays", "save",
]
