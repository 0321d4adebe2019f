"""The one set of defaults for new runs: the dashboard's forms, the admin's forms and the REST API all read them here.

A setting a user leaves out gets the value below, whichever door the run came in by. The library's own defaults
(inr.fit, training.simclr.SimCLRConfig) stay as they are for notebook users; these are the service's.
"""

from __future__ import annotations

import copy

# Fits. Independent initialisation (every image's INRs start from their own weights) is the paper's setting; a shared
# initialisation makes raw weights far easier to read (DESIGN.md: 89.7 % vs 12.7 %) and stays an option.
FIT = {
    "arch": "siren",
    "hidden": 32,
    "depth": 3,  # SIREN: linear layers (2-32-32-out); MFN: filters
    "seeds_per_image": 2,  # SimCLR pairs two seeds of one image
    "steps": None,  # None: the architecture's default (inr.DEFAULT_FIT)
    "lr": None,
    "anti_alias": False,
    "shared_init": False,
}
SHARED_INIT_LABEL = "Same initialisation for every image (not the paper's setting)"
SHARED_INIT_HELP = ("Seed s starts from the same weights for every image. Off (the paper's setting): every INR "
                    "starts from its own weights.")

# A Relational Transformer small enough for a few hundred steps on a laptop CPU (training.encoder.EncoderConfig).
SMALL_ENCODER = {"d_node": 32, "d_edge": 8, "d_attn": 16, "heads": 2, "layers": 1, "d_ff": 64, "feature_dim": 64}

# Encoder training (SimCLR, supervised): what a run gets for the settings its config leaves out. The rest are
# training's dataclass defaults (default-size encoder, lr, temperature, ...). As the `cpu` preset of
# training.reproduce: a few hundred steps of batches of 64.
TRAINING = {
    "simclr": {"steps": 300, "batch_size": 64},
    "supervised": {"steps": 200, "batch_size": 64},
}

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
    return {**training_config(kind), **copy.deepcopy(PRESETS[preset])}


def with_training_defaults(kind: str, config: dict) -> dict:
    """`config` with the service's defaults for the keys it leaves out."""
    return {**training_config(kind), **config}
