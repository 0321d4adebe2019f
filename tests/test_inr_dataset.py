"""INR datasets: fitting a few digits with 2 seeds, exact save/load, the cache, and the SimCLR pair sampler."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import inr
from inr import FieldSpec
from training.data import INRDataset, PairSampler, fit_inr_dataset
from training.sources import load_builtin

STEPS, LR = 40, 1e-2  # about 30 dB on 8x8 digits


@pytest.fixture(scope="module")
def images():
    digits = load_builtin("digits")
    index = torch.cat([digits.train_index[:4], digits.test_index[:2]])  # 4 train, 2 test images
    return digits.subset(index, name="digits6")


@pytest.fixture(scope="module")
def dataset(images):
    return fit_inr_dataset(images, FieldSpec.siren(hidden=8), seeds_per_image=2, steps=STEPS, lr=LR, device="cpu",
                           chunk_size=3)  # the shards below are whole chunks of it


def test_it_fits_every_image_with_each_seed_and_keeps_labels_and_split(images, dataset):
    assert len(dataset) == 12 and dataset.num_images == 6 and dataset.seeds_per_image == 2
    assert dataset.image_index.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert dataset.seed.tolist() == [0, 1] * 6
    assert torch.equal(dataset.labels, images.labels.repeat_interleave(2))
    assert dataset.is_train.tolist() == [True] * 8 + [False] * 4
    assert dataset.class_names == images.class_names
    assert dataset.meta["fit"] == {"seeds": [0, 1], "steps": STEPS, "lr": LR,
                                   "anti_alias": False, "shared_init": True}
    # the stored PSNR is the fit's, and the INRs really represent their images
    rendered = inr.render(dataset.spec, dataset.params, 8, 8)  # [12, 1, 8, 8]
    target = images.images.repeat_interleave(2, dim=0)
    psnr = -10 * torch.log10((rendered - target).square().mean(dim=(1, 2, 3)))
    assert torch.allclose(psnr, dataset.psnr, atol=0.5)
    assert float(psnr.mean()) > 20.0
    assert len(dataset.train()) == 8 and not bool(dataset.test().is_train.any())


def test_it_round_trips_a_dataset_through_one_weight_file_exactly(dataset, tmp_path):
    dataset.save(tmp_path / "ds.safetensors")
    assert [p.name for p in tmp_path.iterdir()] == ["ds.safetensors"]  # no temp file left behind
    back = INRDataset.load(tmp_path / "ds.safetensors")
    assert back.spec == dataset.spec and back.class_names == dataset.class_names and back.meta == dataset.meta
    for name in dataset.params:
        assert torch.equal(back.params[name], dataset.params[name])
    for name in ("labels", "image_index", "seed", "is_train", "psnr"):
        assert torch.equal(getattr(back, name), getattr(dataset, name)), name
    # the file is a plain inr weight file too
    spec, params, meta = inr.load(tmp_path / "ds.safetensors")
    assert torch.equal(meta["label"], dataset.labels) and spec == dataset.spec


def test_it_refuses_a_weight_file_that_is_not_a_dataset(dataset, tmp_path):
    inr.save(tmp_path / "plain.safetensors", dataset.spec, dataset.params)
    with pytest.raises(inr.InvalidWeights, match="not an INR dataset"):
        INRDataset.load(tmp_path / "plain.safetensors")


def test_it_reuses_a_cached_fit_and_refits_when_a_setting_changes(images, tmp_path):
    spec = FieldSpec.siren(hidden=8)
    calls = []
    first = fit_inr_dataset(images, spec, 2, steps=5, device="cpu", cache_dir=tmp_path,
                            callback=lambda step, stats: calls.append(step))
    assert len(calls) > 0 and first.meta["fit"]["lr"] == inr.DEFAULT_FIT["siren"].lr  # None resolved in the key
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].name.startswith("digits6-siren-")
    mtime = files[0].stat().st_mtime_ns
    calls.clear()
    again = fit_inr_dataset(images, spec, 2, steps=5, device="cpu", cache_dir=tmp_path,
                            callback=lambda step, stats: calls.append(step))
    assert calls == [] and files[0].stat().st_mtime_ns == mtime  # loaded, not fitted
    assert all(torch.equal(again.params[k], first.params[k]) for k in first.params)
    fit_inr_dataset(images, spec, 2, steps=6, device="cpu", cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2


def test_it_reuses_a_cached_fit_for_the_same_images_split_and_labelled_another_way(images, tmp_path):
    spec = FieldSpec.siren(hidden=8)
    first = fit_inr_dataset(images, spec, 2, steps=5, device="cpu", cache_dir=tmp_path)
    # all six images in the train split (as training.reproduce --test-dataset takes them), labels reversed
    resplit = dataclasses.replace(images, labels=images.num_classes - 1 - images.labels,
                                  train_index=torch.arange(6), test_index=torch.zeros(0, dtype=torch.int64))
    calls = []
    again = fit_inr_dataset(resplit, spec, 2, steps=5, device="cpu", cache_dir=tmp_path,
                            callback=lambda step, stats: calls.append(step))
    assert calls == [] and len(list(tmp_path.iterdir())) == 1  # the fit is reused ...
    assert all(torch.equal(again.params[k], first.params[k]) for k in first.params)
    assert again.is_train.all() and not first.is_train.all()  # ... with the split and labels of the images given
    assert torch.equal(again.labels, resplit.labels[again.image_index])
    assert torch.equal(again.labels, images.num_classes - 1 - first.labels)
    # other pixels are another fit
    brighter = dataclasses.replace(images, images=images.images * 0.5)
    fit_inr_dataset(brighter, spec, 2, steps=5, device="cpu", cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2


def test_it_merges_sharded_fits_in_image_seed_order_and_refuses_duplicates(images, dataset):
    spec = FieldSpec.siren(hidden=8)
    shards = [inr.fit(spec, images.images[lo:hi], seeds=2, steps=STEPS, lr=LR, device="cpu", image_offset=lo,
                      chunk_size=3)
              for lo, hi in ((3, 6), (0, 3))]
    merged = INRDataset.from_fit(images, shards)
    assert torch.equal(merged.image_index, dataset.image_index) and torch.equal(merged.labels, dataset.labels)
    assert torch.equal(merged.is_train, dataset.is_train)
    # each shard ran exactly one chunk of the whole fit: identical bits, on any CPU and either sine path
    assert all(torch.equal(merged.params[k], dataset.params[k]) for k in dataset.params)
    with pytest.raises(ValueError, match="more than once"):
        INRDataset.from_fit(images, [shards[0], shards[0]])


def test_it_rejects_a_spec_with_the_wrong_number_of_channels(images):
    with pytest.raises(ValueError, match="out_dim is 3 but the images have 1 channel"):
        fit_inr_dataset(images, FieldSpec.siren(out_dim=3), 1, steps=1, device="cpu")


def test_it_samples_two_different_seeds_of_the_same_image(dataset):
    sampler = PairSampler(dataset, None, batch_size=4, generator=torch.Generator().manual_seed(3))
    assert len(sampler) == 2
    seen = []
    for view_a, view_b, image_ids in sampler:
        seen += image_ids.tolist()
        for k, image in enumerate(image_ids.tolist()):
            rows = torch.nonzero(dataset.image_index == image).reshape(-1)
            # each view is exactly one of the image's INRs, and the two are different INRs
            match_a = [r for r in rows.tolist() if torch.equal(view_a["layer1.weight"][k],
                                                               dataset.params["layer1.weight"][r])]
            match_b = [r for r in rows.tolist() if torch.equal(view_b["layer1.weight"][k],
                                                               dataset.params["layer1.weight"][r])]
            assert len(match_a) == 1 and len(match_b) == 1 and match_a != match_b
            assert dataset.seed[match_a[0]] != dataset.seed[match_b[0]]
    assert sorted(seen) == list(range(6))  # one epoch: every image once
    assert torch.equal(dataset.labels_of(torch.tensor([5, 0])), dataset.labels[[10, 0]])


def test_it_augments_each_view_and_is_deterministic_for_a_seeded_generator(dataset):
    policy = inr.AugmentPolicy(rotation_prob=1.0, noise_prob=1.0)

    def batch(seed):
        return PairSampler(dataset, policy, 3, torch.Generator().manual_seed(seed)).sample()

    a1, b1, ids1 = batch(7)
    a2, b2, ids2 = batch(7)
    assert torch.equal(ids1, ids2) and all(torch.equal(a1[k], a2[k]) and torch.equal(b1[k], b2[k]) for k in a1)
    raw = {k: v[ids1 * 2] for k, v in dataset.params.items()}  # seed-0 INRs of the same images
    raw1 = {k: v[ids1 * 2 + 1] for k, v in dataset.params.items()}
    assert not any(torch.equal(a1["layer0.weight"][i], r["layer0.weight"][i]) for r in (raw, raw1) for i in range(3))
    assert not torch.equal(batch(8)[0]["layer0.weight"], a1["layer0.weight"])


def test_it_needs_two_seeds_per_image_for_pairs(dataset):
    with pytest.raises(ValueError, match="two different seeds .* has 1 per image: fit it with seeds_per_image >= 2"):
        PairSampler(dataset.subset(dataset.seed == 0), None, 4)
