"""Honest evaluation: a validation split carved from the training images, held-out INRs that share no initialisation
with a training INR, and encoder normalisation from a class-balanced sample instead of the first rows."""

from __future__ import annotations

import argparse

import torch

import inr
from training import reproduce
from training.data import fit_inr_dataset
from training.encoder import EncoderConfig, RelationalTransformer, normalization_sample
from training.sources import load_builtin


def test_it_holds_out_a_stratified_share_of_the_images_with_all_their_seeds():
    digits = load_builtin("digits")
    images = digits.subset(torch.arange(100), name="digits100")
    dataset = fit_inr_dataset(images, inr.FieldSpec.siren(hidden=4), 3, steps=0, device="cpu")
    rest, validation = dataset.validation_split(fraction=0.2, seed=0)
    assert len(rest) + len(validation) == len(dataset)
    rest_images, val_images = set(rest.image_index.tolist()), set(validation.image_index.tolist())
    assert not rest_images & val_images  # no image on both sides
    assert all(int((validation.image_index == i).sum()) == 3 for i in val_images)  # every seed of an image
    for c in range(10):  # a fifth of every class
        in_class = {i for i in range(100) if int(images.labels[i]) == c}
        assert len(in_class & val_images) == round(0.2 * len(in_class))
    again = dataset.validation_split(fraction=0.2, seed=0)[1]
    assert torch.equal(again.image_index, validation.image_index)
    assert not torch.equal(dataset.validation_split(fraction=0.2, seed=1)[1].image_index, validation.image_index)


def _nearest_is_identical(test: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    return torch.cdist(test, train).min(dim=1).values == 0  # [N_test]


def test_it_fits_held_out_images_from_initialisations_no_training_inr_shares(tmp_path):
    args = argparse.Namespace(dataset="digits", test_dataset="digits", arch="siren", seeds_per_image=2,
                              fit_steps=1, fit_lr=None, init="independent", device="cpu", cache_dir=str(tmp_path),
                              max_train_images=None, max_test_images=None)
    train, test, spec = reproduce.fit_datasets(args, reproduce.PRESETS["smoke"], log=lambda msg: None)
    flat = {name: torch.cat([t.flatten(1) for t in ds.params.values()], 1) for name, ds in (("train", train),
                                                                                             ("test", test))}
    # the same images on both sides (so the pixels cannot tell them apart): only the initialisation can differ
    assert not bool(_nearest_is_identical(flat["test"], flat["train"]).any())
    assert test.meta["fit"]["image_offset"] == train.num_images
    # why: without an offset, held-out image k starts from exactly the weights of training image k
    digits = load_builtin("digits")
    first, other = digits.subset(torch.arange(4)), digits.subset(torch.arange(100, 104))

    def start(images, offset):
        ds = fit_inr_dataset(images, spec, 2, steps=0, shared_init=False, device="cpu", image_offset=offset)
        return torch.cat([t.flatten(1) for t in ds.params.values()], 1)

    assert bool(_nearest_is_identical(start(other, 0), start(first, 0)).all())
    assert not bool(_nearest_is_identical(start(other, 4), start(first, 0)).any())


def test_it_normalises_on_a_class_balanced_sample_not_the_first_rows():
    labels = torch.arange(10).repeat_interleave(50)  # sorted by class, as MNIST-5k is
    rows = normalization_sample(len(labels), labels, max_rows=100)
    assert torch.bincount(labels[rows]).tolist() == [10] * 10
    assert torch.equal(rows, rows.sort().values) and rows.unique().numel() == 100
    spec = inr.FieldSpec.siren(hidden=4)
    params = inr.init(spec, len(labels), seed=0)
    params["layer1.bias"] += labels.float().unsqueeze(1)  # a class-dependent offset the statistics must see
    model = RelationalTransformer(spec, EncoderConfig(d_node=8, d_edge=4, d_attn=4, heads=1, d_ff=8, feature_dim=8,
                                                      canonicalize=False))
    model.set_normalization(params, labels, max_inrs=100)
    hidden2 = 2  # graph layer of layer1's outputs (input, hidden, hidden, output)
    mean = float(model.node_mean[hidden2, 0])
    assert abs(mean - 4.5) < 0.5  # the classes' mean offset; the first 100 rows (classes 0 and 1) would give 0.5
