"""Ablations on digits (400 train / 150 test images, MFN 3x8, fit 300 steps): SimCLR 150 steps, tiny encoder.
Each line of output is one JSON record. Usage: ablate.py NAME [NAME ...]"""

import dataclasses
import json
import os
import sys
import time

import torch

import inr
from training.data import fit_inr_dataset
from training.encoder import EncoderConfig, RelationalTransformer
from training.loop import OptimConfig, seed_everything
from training.probe import extract_features, linear_probe
from training.reproduce import _cap
from training.simclr import SimCLRConfig, pretrain
from training.sources import load_builtin

torch.set_num_threads(1)
ENC = EncoderConfig(d_node=32, d_edge=8, d_attn=16, heads=2, layers=1, d_ff=64, feature_dim=64)
NOAUG = inr.AugmentPolicy(rotation_prob=0, scale_prob=0, translation_prob=0, noise_prob=0, dropout_prob=0)
VARIANTS = {
    "base": {},
    "t0.1": {"temperature": 0.1},
    "t0.5": {"temperature": 0.5},
    "no-augment": {"augment": NOAUG},
    "geometric-only": {"augment": dataclasses.replace(inr.AugmentPolicy(), noise_prob=0, dropout_prob=0)},
    "no-geometric": {
        "augment": dataclasses.replace(inr.AugmentPolicy(), rotation_prob=0, scale_prob=0, translation_prob=0)
    },
    "probe-features-16": {"encoder": dataclasses.replace(ENC, probe_points=16)},
    "encoder-2-layers-d64": {
        "encoder": EncoderConfig(d_node=64, d_edge=16, d_attn=32, heads=4, layers=2, d_ff=128, feature_dim=128)
    },
    "steps-400": {"steps": 400},
}
init = sys.argv[1]
seeds_per_image = int(sys.argv[2])
images = _cap(load_builtin("digits"), 400, 150)
spec = inr.FieldSpec.mfn(1, hidden=8, filters=3)
ds = fit_inr_dataset(
    images,
    spec,
    seeds_per_image,
    steps=300,
    anti_alias=True,
    shared_init=init == "shared",
    cache_dir=os.path.join(os.environ.get("CINR_RUNS", "runs"), "cache"),
)
tr, te = ds.train(), ds.test()


def acc(e):
    return linear_probe(extract_features(e, tr), tr.labels, extract_features(e, te), te.labels).accuracy


for name in sys.argv[3:]:
    for seed in (0, 1):
        kw = {
            "encoder": ENC,
            "optim": OptimConfig(lr=5e-3, warmup_steps=5),
            "batch_size": 64,
            "steps": 150,
            "temperature": 0.2,
            "seed": seed,
            **VARIANTS[name],
        }
        t = time.time()
        r = pretrain(ds, SimCLRConfig(**kw), device="cpu")
        a = acc(r.encoder)
        seed_everything(seed)
        re = RelationalTransformer(spec, kw["encoder"])
        re.set_normalization(tr.params)
        print(
            json.dumps(
                {
                    "variant": name,
                    "init": init,
                    "seeds_per_image": seeds_per_image,
                    "seed": seed,
                    "contrastive": a,
                    "random": acc(re),
                    "top1": r.history[-1]["top1"],
                    "loss": r.history[-1]["loss"],
                    "seconds": time.time() - t,
                }
            ),
            flush=True,
        )
