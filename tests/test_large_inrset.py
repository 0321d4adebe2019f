"""A 100,000-INR set stays quick to browse: its page, a page of its INR list, a render and an INR's band facts answer
in seconds and read only the rows they show, never the whole weight file (`INRDataset.load` is refused here)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest
import torch
from django.core.files.storage import InMemoryStorage
from django.utils._os import safe_join

import inr
from cinr_web.api.rendering import RenderOptions, render_png
from cinr_web.datasets.models import ImageDataset
from cinr_web.inrsets.models import INRSet
from cinr_web.inrsets.services import psnr_histogram
from cinr_web.storage import save_file
from tests.api_support import client_for
from training.data import INRDataset

pytestmark = pytest.mark.django_db

SPEC = inr.FieldSpec.siren(hidden=8, layers=3)  # 105 weights: 100,000 INRs are a 45 MB file
IMAGES, SEEDS = 50_000, 2
COUNT = IMAGES * SEEDS
SECONDS = 10.0  # a wide bound: this machine is shared; loading and rendering every INR would take far longer


@pytest.fixture
def large_inrset() -> tuple[INRSet, INRDataset]:
    """A registered INR set of 50,000 images x 2 seeds, without a fit: one initial SIREN (inr.init) plus noise of
    each INR's own (inr.init of 100,000 INRs alone takes most of a minute here)."""
    image_index = torch.arange(COUNT) // SEEDS
    generator = torch.Generator().manual_seed(0)
    params = {name: value + 0.1 * torch.randn((COUNT, *value.shape[1:]), generator=generator)
              for name, value in inr.init(SPEC, 1, seed=0).items()}
    data = INRDataset(spec=SPEC, params=params, labels=image_index % 10,
                      image_index=image_index, seed=torch.arange(COUNT) % SEEDS, is_train=image_index % 5 != 0,
                      psnr=torch.linspace(20.0, 40.0, COUNT), class_names=[str(c) for c in range(10)])
    dataset = ImageDataset.objects.create(name="large", source="import", channels=1, height=8, width=8,
                                          class_names=data.class_names, num_images=IMAGES)
    inrset = INRSet.objects.create(dataset=dataset, spec=SPEC.to_dict(), seeds_per_image=SEEDS, num_inrs=COUNT,
                                   fit_config={"steps": 1, "lr": 1e-3, "anti_alias": False, "shared_init": False},
                                   psnr_mean=float(data.psnr.mean()), psnr_min=20.0, psnr_max=40.0,
                                   psnr_histogram=psnr_histogram(data.psnr), status="succeeded")
    with tempfile.TemporaryDirectory() as tmp:
        data.save(Path(tmp) / "weights.safetensors")
        inrset.weights.name = save_file(f"inrsets/{inrset.pk}/weights.safetensors", Path(tmp) / "weights.safetensors")
    inrset.save(update_fields=["weights"])
    return inrset, data


@pytest.fixture
def whole_set_refused(monkeypatch) -> None:
    def refuse(cls, path, *args, **kwargs):
        raise AssertionError(f"the whole INR set {path} was loaded to show a part of it")

    monkeypatch.setattr(INRDataset, "load", classmethod(refuse))


def timed(request):
    started = time.perf_counter()
    response = request()
    return response, time.perf_counter() - started


def test_it_shows_a_100000_inr_set_page_by_page(large_inrset, whole_set_refused, normal_user, client):
    inrset, data = large_inrset
    client.force_login(normal_user)
    page, seconds = timed(lambda: client.get(f"/inrsets/{inrset.pk}/"))
    assert page.status_code == 200 and seconds < SECONDS, seconds
    assert "100000 INRs" in page.content.decode() and len(page.content) < 200_000  # facts, not a row per INR

    api = client_for(normal_user)
    listing, seconds = timed(lambda: api.get(f"/api/inrsets/{inrset.pk}/inrs/", {"page": 734, "page_size": 100}))
    assert listing.status_code == 200 and seconds < SECONDS, seconds
    body = listing.json()
    rows = body["results"]
    assert body["count"] == COUNT and len(rows) == 100
    assert [r["index"] for r in rows] == list(range(73_300, 73_400))
    assert [(r["image_index"], r["seed"]) for r in rows[:3]] == [(36_650, 0), (36_650, 1), (36_651, 0)]
    assert [r["psnr"] for r in rows] == data.psnr[73_300:73_400].tolist()
    last = api.get(f"/api/inrsets/{inrset.pk}/inrs/", {"page": 100, "page_size": 1000}).json()["results"]
    assert [r["index"] for r in last] == list(range(99_000, COUNT))
    assert api.get(f"/api/inrsets/{inrset.pk}/inrs/", {"page": 101, "page_size": 1000}).json()["results"] == []


def test_it_renders_one_inr_of_a_100000_inr_set(large_inrset, whole_set_refused, normal_user, client):
    inrset, data = large_inrset
    api = client_for(normal_user)
    url = f"/api/inrsets/{inrset.pk}/inrs/{COUNT - 1}/render.png"
    render, seconds = timed(lambda: api.get(url, {"size": 32}))
    assert render.status_code == 200 and seconds < SECONDS, seconds
    last = {name: value[COUNT - 1:] for name, value in data.params.items()}
    assert render.content == render_png(SPEC, last, 8, 8, RenderOptions(size=32))  # that INR, not another
    assert api.get(f"/api/inrsets/{inrset.pk}/inrs/{COUNT}/render.png").status_code == 404

    client.force_login(normal_user)
    band, seconds = timed(lambda: client.get(f"/inrsets/{inrset.pk}/inrs/{COUNT - 1}/band.json"))
    assert band.status_code == 200 and seconds < SECONDS, seconds
    assert client.get(f"/inrsets/{inrset.pk}/inrs/{COUNT}/band.json").status_code == 404


def test_it_reads_rows_of_a_weight_file_as_load_reads_them(tmp_path):
    from inr.rows import load_rows

    params = inr.init(SPEC, 10, seed=3)
    path = tmp_path / "ten.safetensors"
    inr.save(path, SPEC, params, metadata={"seed": torch.arange(10), "names": ["a", "b"]})
    rows = load_rows(path, 7, 20)  # clipped to the 10 INRs the file holds
    assert (rows.count, rows.start, rows.metadata["names"]) == (10, 7, ["a", "b"])
    assert torch.equal(rows.metadata["seed"], torch.arange(7, 10))
    for name, value in params.items():
        assert torch.equal(rows.params[name], value[7:]), name
    assert load_rows(path, 10, 12).params["layer0.weight"].shape[0] == 0

    wrong, narrow = tmp_path / "wrong.safetensors", inr.FieldSpec.siren(hidden=4, layers=3)
    inr.save(wrong, narrow, inr.init(narrow, 2))
    # the same bytes with a spec the weights do not fit
    wrong.write_bytes(wrong.read_bytes().replace(b'\\"hidden\\": 4', b'\\"hidden\\": 8'))
    with pytest.raises(inr.InvalidWeights, match="wrong shapes"):
        load_rows(wrong, 0, 1)
    (tmp_path / "junk.safetensors").write_bytes(b"not a weight file" * 4)
    with pytest.raises(inr.InvalidWeights):
        load_rows(tmp_path / "junk.safetensors", 0, 1)


class RemoteLikeStorage(InMemoryStorage):
    """Files kept in memory, with no local paths: what S3 storage looks like to cinr_web.storage."""

    def path(self, name: str) -> str:
        raise NotImplementedError("this storage has no local paths")

    def _relative_path(self, name: str) -> str:  # InMemoryStorage finds its files through path(): not here
        return os.path.relpath(safe_join(self.location, name), self.location)


REMOTE = {"default": {"BACKEND": "tests.test_large_inrset.RemoteLikeStorage"},
          "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}


def test_it_downloads_a_remote_weight_file_once_for_many_renders(normal_user):
    """Media on a remote storage (S3; here files in memory, without local paths): the first INR read
    downloads the weight file, the next ones read rows of that copy."""
    from django.test import override_settings

    from cinr_web.storage import MAX_COPIES, kept_local_path, save_bytes

    data = INRDataset(spec=SPEC, params=inr.init(SPEC, 4, seed=1), labels=torch.arange(4) % 2,
                      image_index=torch.arange(4), seed=torch.zeros(4), is_train=torch.ones(4, dtype=torch.bool),
                      psnr=torch.full((4,), 30.0), class_names=["a", "b"])
    with override_settings(STORAGES=REMOTE), tempfile.TemporaryDirectory() as tmp:
        data.save(Path(tmp) / "four.safetensors")
        dataset = ImageDataset.objects.create(name="remote", source="import", channels=1, height=8, width=8,
                                              class_names=["a", "b"], num_images=4)
        inrset = INRSet.objects.create(dataset=dataset, spec=SPEC.to_dict(), num_inrs=4, status="succeeded")
        inrset.weights.name = save_file(f"inrsets/{inrset.pk}/weights.safetensors", Path(tmp) / "four.safetensors")
        inrset.save(update_fields=["weights"])
        api = client_for(normal_user)
        assert api.get(f"/api/inrsets/{inrset.pk}/inrs/3/render.png").status_code == 200
        copy = kept_local_path(inrset.weights.name)
        assert copy.read_bytes() == (Path(tmp) / "four.safetensors").read_bytes()
        inode = copy.stat().st_ino
        assert api.get(f"/api/inrsets/{inrset.pk}/inrs/2/render.png").status_code == 200
        assert kept_local_path(inrset.weights.name) == copy and copy.stat().st_ino == inode  # not downloaded again
        others = [save_bytes(f"other-{i}.bin", b"x") for i in range(MAX_COPIES)]
        for name in others:
            kept_local_path(name)
        assert not copy.exists()  # the least recently used copy made room
        assert api.get(f"/api/inrsets/{inrset.pk}/inrs/1/render.png").status_code == 200  # downloaded again
