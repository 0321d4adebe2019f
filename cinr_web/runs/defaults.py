"""The one set of defaults for new runs: the dashboard's forms, the admin's forms and the REST API all read them here.

A setting a user leaves out gets the value below, whichever door the run came in by. The library's own defaults
(inr.fit, training.simclr.SimCLRConfig) stay as they are for notebook users; these are the service's.
"""

from __future__ import annotations

import copy
import dataclasses

from inr import FieldSpec
from training.presets import PRESETS as LIBRARY_PRESETS

# The `cpu` preset of training.reproduce (training.presets) is the service's recipe: chosen on a validation split
# (docs/RESULTS.md, "Design changes"), measured at K = 3 on the test splits. Its values are read from there, so the
# command line and the web app cannot drift apart.
CPU_PRESET = LIBRARY_PRESETS["cpu"]

# Fits. Independent initialisation (every image's INRs start from their own weights) is the paper's setting; a shared
# initialisation makes raw weights far easier to read (DESIGN.md: 89.7 % vs 12.7 %) and stays an option.
FIT = {
    "arch": "siren",
    "hidden": 32,
    "depth": 3,  # SIREN: linear layers (2-32-32-out); MFN: filters
    # SimCLR pairs two seeds of one image; the preset's 4 for SIREN give 6 pairings per image (it fits MFNs from 2)
    "seeds_per_image": CPU_PRESET.seeds_for("siren"),
    "anti_alias": False,  # the admin form's checkbox (it starts on SIREN); a fit that leaves it out: on for an MFN
    "shared_init": False,
}
SHARED_INIT_LABEL = "Same initialisation for every image (not the paper's setting)"
SHARED_INIT_HELP = ("Seed s starts from the same weights for every image. Off (the paper's setting): every INR "
                    "starts from its own weights.")

# Encoder training (SimCLR, supervised): what a run gets for the settings its config leaves out (nested settings,
# such as the encoder's, key by key): the preset's whole recipe (steps, batch, optimiser, temperature, the
# weight-message GNN whose neurons start from their incoming and outgoing weights, no weight-space augmentations).
TRAINING = {
    "simclr": CPU_PRESET.simclr_config().to_dict(),
    "supervised": CPU_PRESET.supervised_config().to_dict(),
}
# The preset's encoder made small enough for a few hundred steps on a laptop CPU (training.encoder.EncoderConfig;
# the d_edge / d_attn / heads sizes are the Relational Transformer's, unused by the GNN).
SMALL_ENCODER = {**TRAINING["simclr"]["encoder"], "d_node": 32, "d_edge": 8, "d_attn": 16, "heads": 2, "layers": 2,
                 "d_ff": 64, "d_message": 32, "feature_dim": 64}

# Named presets a form offers. "quick on a CPU" is the form's default until this machine has measured a run of that
# kind: minutes, not hours, on a laptop, to see the whole pipeline work.
PRESETS = {
    "quick on a CPU": {"steps": 100, "batch_size": 32, "encoder": SMALL_ENCODER},
    "the defaults": {},
}
QUICK = "quick on a CPU"


def training_config(kind: str) -> dict:
    """The service's defaults of a SimCLR / supervised config (a copy: callers may change it)."""
    return copy.deepcopy(TRAINING.get(kind, {}))


def preset_config(kind: str, preset: str) -> dict:
    """The config a named preset gives a run of `kind`: the defaults with the preset's settings over them."""
    return merged(training_config(kind), PRESETS[preset])


def with_training_defaults(kind: str, config: dict) -> dict:
    """`config` with the service's defaults for the keys it leaves out."""
    return merged(training_config(kind), config)


def fit_defaults(arch: str, channels: int) -> dict:
    """{"steps", "lr"} a fit of `arch` to images of `channels` channels gets when it leaves them out, the preset's
    (None: inr.DEFAULT_FIT's): a SIREN fitted gently to grey images (300 steps at lr 2e-4: 30 dB on MNIST, features a
    probe reads better than those of the 60 dB fit at lr 1e-3), at lr 1e-3 to colour ones (on CIFAR-10 the gentle fit
    costs the validation probe 4-5 points)."""
    if arch not in CPU_PRESET.fit_steps:
        return {"steps": None, "lr": None}
    return {"steps": CPU_PRESET.fit_steps[arch], "lr": CPU_PRESET.fit_lr_for(arch, channels)}


def fit_spec(arch: str, channels: int, **sizes: int | None) -> FieldSpec:
    """The architecture a new fit of `arch` to images of `channels` channels gets: the preset's (the paper's sizes;
    MFN filters of grey images at 1.5 rad/pixel, half the paper's 3.03, colour at its 3.46), with the sizes a user
    gave (FieldSpec fields such as hidden, layers, filters; None: the default) over it."""
    given = {name: value for name, value in sizes.items() if value is not None}
    return dataclasses.replace(CPU_PRESET.spec(arch, channels), **given)


def merged(defaults: dict, config: dict) -> dict:
    """`config` over `defaults`, nested objects key by key (an encoder setting a config gives keeps the defaults'
    other encoder settings); a copy."""
    out = copy.deepcopy(defaults)
    for key, value in config.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
