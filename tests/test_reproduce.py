"""The reproduction CLI's pieces that run in milliseconds: capped stratified subsets, merging per-seed results, the
table, argument errors. (The whole CLI runs in the smoke preset: `python -m training.reproduce --dataset digits
--arch siren --preset smoke`, about a minute.)"""

import json

import numpy as np
import pytest

import inr
from training.encoder import EncoderConfig
from training.reproduce import _cap, _overrides, main, merge, paper_dataset, table
from training.sources import load_builtin


def test_it_caps_each_split_with_every_class_kept():
    images = load_builtin("digits")
    capped = _cap(images, 100, 50)
    assert abs(len(capped.train_index) - 100) <= 10 and abs(len(capped.test_index) - 50) <= 10
    assert set(np.unique(capped.labels[capped.train_index].numpy())) == set(range(10))
    assert _cap(images, 0, 0) is images


def _result(acc, seconds):
    return {"contrastive_probe_acc": [acc], "supervised_acc": [acc + 10], "random_encoder_probe_acc": [10.0],
            "raw_weights_probe_acc": [12.0], "simclr_final": [{"loss": 1.0}], "seconds_per_seed": [seconds],
            "psnr_mean": 40.0, "wall_seconds": seconds,
            "config": {"dataset": "mnist5k", "arch": "mfn", "init": "shared", "preset": "cpu", "seeds": 1}}


def test_it_merges_single_seed_runs_and_prints_mean_and_std(tmp_path):
    paths = []
    for k, acc in enumerate([40.0, 50.0]):
        paths.append(tmp_path / f"s{k}.json")
        paths[-1].write_text(json.dumps(_result(acc, 100.0)))
    merged = merge([str(p) for p in paths])
    assert merged["contrastive_probe_acc"] == [40.0, 50.0] and merged["wall_seconds"] == 200.0
    assert merged["config"]["seeds"] == 2
    text = table(merged)
    assert "45.00 ±  7.07" in text and "42.97" in text  # mean ± sample std, and the paper's MFN MNIST number
    assert main(["--merge", str(tmp_path / "all.json"), *map(str, paths)]) == 0
    assert json.loads((tmp_path / "all.json").read_text())["supervised_acc"] == [50.0, 60.0]


def test_it_compares_with_the_paper_only_where_the_paper_has_a_cell():
    assert [paper_dataset(d) for d in ("mnist5k", "../shared/data/cifar10-train-5k", "fashion-mnist5k", "digits")] \
        == ["mnist", "cifar", None, None]
    fashion = _result(40.0, 100.0)
    fashion["config"].update(dataset="fashion-mnist5k", test_dataset="heldout-images-idx3-ubyte.gz")
    text = table(fashion)
    assert "42.97" not in text and "54.71" not in text  # no paper column for Fashion-MNIST
    assert "test images heldout-images-idx3-ubyte.gz" in text


def test_it_rejects_bad_arguments():
    with pytest.raises(SystemExit):
        main(["--dataset", "digits", "--arch", "siren", "--seeds", "0"])
    with pytest.raises(SystemExit):
        main(["--dataset", "digits", "--arch", "resnet"])
    with pytest.raises(SystemExit, match="intensity_probability"):
        main(["--dataset", "digits", "--arch", "siren", "--augment", "intensity_probability=0.5"])
    with pytest.raises(SystemExit, match="not a valid int"):
        main(["--dataset", "digits", "--arch", "siren", "--encoder", "layers=three"])
    with pytest.raises(SystemExit):
        main(["--dataset", "digits", "--arch", "siren", "--simclr-steps", "-1"])
    with pytest.raises(SystemExit):
        main(["--dataset", "digits", "--arch", "siren", "--fit-lr", "0"])
    with pytest.raises(SystemExit):
        main(["--dataset", "digits", "--arch", "siren", "--fit-steps", "-5"])
    with pytest.raises(SystemExit):
        main(["--dataset", "digits", "--arch", "siren", "--seeds-per-image", "1"])


def test_it_reads_augment_and_encoder_overrides():
    assert _overrides(["intensity_prob=0.5", "max_gain=2"], inr.AugmentPolicy, "--augment") == {
        "intensity_prob": 0.5, "max_gain": 2.0}
    assert _overrides(["layers=3"], EncoderConfig, "--encoder") == {"layers": 3}
    with pytest.raises(SystemExit, match="not a valid int"):
        _overrides(["layers=3.7"], EncoderConfig, "--encoder")
    assert _overrides(["canonicalize=false"], EncoderConfig, "--encoder") == {"canonicalize": False}
    assert _overrides(["canonicalize=True"], EncoderConfig, "--encoder") == {"canonicalize": True}
    with pytest.raises(SystemExit, match="not a valid bool"):
        _overrides(["canonicalize=yes please"], EncoderConfig, "--encoder")


def _image_folder(root, channels: int = 1):
    from PIL import Image

    rng = np.random.default_rng(0)
    shape = (8, 8) if channels == 1 else (8, 8, channels)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


def test_it_runs_the_supervised_baseline_alone_when_simclr_steps_is_0(tmp_path):
    out = tmp_path / "out.json"
    assert main(["--dataset", str(_image_folder(tmp_path / "images")), "--arch", "siren", "--preset", "smoke",
                 "--quiet", "--simclr-steps", "0", "--supervised-steps", "2", "--cache-dir", str(tmp_path / "cache"),
                 "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert np.isnan(result["contrastive_probe_acc"][0]) and result["simclr_final"] == [None]
    assert 0.0 <= result["supervised_acc"][0] <= 100.0 and result["config"]["simclr"] is None


def test_it_fits_with_the_given_seeds_steps_and_learning_rate(tmp_path):
    out = tmp_path / "out.json"
    args = ["--dataset", str(_image_folder(tmp_path / "images")), "--arch", "siren", "--preset", "smoke", "--quiet",
            "--simclr-steps", "0", "--supervised-steps", "0", "--cache-dir", str(tmp_path / "cache"),
            "--json", str(out)]
    assert main(args) == 0
    assert json.loads(out.read_text())["config"]["fit"] == {
        "seeds": [0, 1], "steps": 100, "lr": inr.DEFAULT_FIT["siren"].lr, "anti_alias": False, "shared_init": False}
    assert main([*args, "--fit-steps", "7", "--fit-lr", "3e-3", "--seeds-per-image", "3"]) == 0
    fit = json.loads(out.read_text())["config"]["fit"]
    # a new fit, not the cached one of the preset's recipe
    assert fit["steps"] == 7 and fit["lr"] == 3e-3 and fit["seeds"] == [0, 1, 2]
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 2


def test_it_fits_grey_and_colour_images_at_the_cpu_presets_own_learning_rates(tmp_path):
    from training.presets import PRESETS

    lrs = {}
    for channels in (1, 3):
        out = tmp_path / f"out{channels}.json"
        assert main(["--dataset", str(_image_folder(tmp_path / f"images{channels}", channels)), "--arch", "siren",
                     "--preset", "cpu", "--quiet", "--fit-steps", "2", "--simclr-steps", "0", "--supervised-steps",
                     "0", "--cache-dir", str(tmp_path / "cache"), "--json", str(out)]) == 0
        result = json.loads(out.read_text())
        assert result["config"]["spec"]["out_dim"] == channels
        lrs[channels] = result["config"]["fit"]["lr"]
    # the gentle SIREN fit was chosen on MNIST; CIFAR-10's validation split chose lr 1e-3 for colour images
    assert lrs == {1: 2e-4, 3: 1e-3}
    assert lrs == {c: PRESETS["cpu"].fit_lr_for("siren", c) for c in (1, 3)}


def test_it_caps_the_images_from_the_command_line(tmp_path):
    out = tmp_path / "out.json"
    assert main(["--dataset", "digits", "--arch", "siren", "--preset", "smoke", "--quiet", "--max-train-images", "20",
                 "--max-test-images", "10", "--fit-steps", "2", "--simclr-steps", "0", "--supervised-steps", "0",
                 "--cache-dir", str(tmp_path / "cache"), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    # two INRs per image (the smoke preset), every class kept in each split
    assert result["num_train_inrs"] == 2 * 20 and result["num_test_inrs"] == 2 * 10
    assert result["config"]["max_train_images"] == 20 and result["config"]["max_test_images"] == 10
    with pytest.raises(SystemExit):
        main(["--dataset", "digits", "--arch", "siren", "--max-train-images", "-1"])


def test_it_fits_mfns_of_grey_images_at_the_presets_input_scale_and_colour_ones_at_the_papers():
    from training.presets import PRESETS
    from training.reproduce import spec_for

    grey = load_builtin("digits")
    assert spec_for("mfn", grey, PRESETS["cpu"]).input_scale == 1.5
    assert spec_for("mfn", grey).input_scale == 3.03  # no preset: the paper's Table 1
    assert PRESETS["cpu"].spec("mfn", 3).input_scale == 3.46 and PRESETS["full"].spec("mfn", 1).input_scale == 3.03
    assert spec_for("siren", grey, PRESETS["cpu"]) == inr.FieldSpec.siren()
