"""INR datasets: the INRs of N images x S seeds with their labels and split, saved as ONE `inr` weight file; the fit
that makes them (with an on-disk cache); and the SimCLR pair sampler.

Rows are ordered image-major, as `inr.fit` returns them: image i, seed s at row i * S + s.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

import inr
from inr import FieldSpec, Params
from inr.rows import load_rows
from training.sources import ImageSet

FORMAT = "cinr.inrdataset/1"
CACHE_VERSION = 1  # bump when a change to fitting makes old cached datasets wrong
DEFAULT_MAX_BYTES = 8 << 30  # our own dataset files: 5,000 images x 10 seeds of a SIREN is about 240 MB


@dataclass
class INRDataset:
    """M = N * S INRs of N images (S seeds each) and what they came from.

    params: name -> CPU float32 [M, ...]; labels, image_index, seed: int64 [M]; is_train: bool [M]; psnr: float32 [M]
    dB of each fit; class_names: names of the labels; meta: JSON-serialisable extras (fit settings, source, ...).
    """

    spec: FieldSpec
    params: Params
    labels: torch.Tensor
    image_index: torch.Tensor
    seed: torch.Tensor
    is_train: torch.Tensor
    psnr: torch.Tensor
    class_names: list[str]
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = inr.check_params(self.spec, self.params)
        self.params = {k: v.detach().to("cpu", torch.float32) for k, v in self.params.items()}
        self.labels = torch.as_tensor(self.labels, dtype=torch.int64).reshape(-1)
        self.image_index = torch.as_tensor(self.image_index, dtype=torch.int64).reshape(-1)
        self.seed = torch.as_tensor(self.seed, dtype=torch.int64).reshape(-1)
        self.is_train = torch.as_tensor(self.is_train, dtype=torch.bool).reshape(-1)
        self.psnr = torch.as_tensor(self.psnr, dtype=torch.float32).reshape(-1)
        self.class_names = [str(c) for c in self.class_names]
        for name in ("labels", "image_index", "seed", "is_train", "psnr"):
            if getattr(self, name).shape[0] != m:
                raise ValueError(f"INRDataset: {name} has {getattr(self, name).shape[0]} rows for {m} INRs")
        if m and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise ValueError(f"INRDataset: labels must lie in [0, {len(self.class_names)})")

    # -- views -----------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_images(self) -> int:
        return int(self.image_index.unique().numel())

    @property
    def seeds_per_image(self) -> int:
        """S, the number of INRs of every image; ValueError if images have different numbers."""
        if len(self) == 0:
            return 0
        counts = torch.unique(self.image_index, return_counts=True)[1]
        if not bool((counts == counts[0]).all()):
            raise ValueError(f"images have between {int(counts.min())} and {int(counts.max())} INRs each")
        return int(counts[0])

    def subset(self, mask: torch.Tensor | np.ndarray | Sequence[int]) -> INRDataset:
        """The rows selected by a bool mask [M] or an index list, e.g. `ds.subset(ds.is_train)`, `ds.subset(ds.seed <
        2)`."""
        rows = torch.as_tensor(np.asarray(mask))
        if rows.dtype == torch.bool:
            if rows.shape != (len(self),):
                raise ValueError(f"mask of shape {list(rows.shape)} for {len(self)} INRs")
            rows = torch.nonzero(rows).reshape(-1)
        rows = rows.to(torch.int64)
        return INRDataset(spec=self.spec, params={k: v[rows] for k, v in self.params.items()},
                          labels=self.labels[rows], image_index=self.image_index[rows], seed=self.seed[rows],
                          is_train=self.is_train[rows], psnr=self.psnr[rows], class_names=list(self.class_names),
                          meta=dict(self.meta))

    def train(self) -> INRDataset:
        return self.subset(self.is_train)

    def validation_split(self, fraction: float = 0.2, seed: int = 0) -> tuple[INRDataset, INRDataset]:
        """(rest, validation): a seeded `fraction` of the images of every class, with all their INRs, held out
        for choosing recipes, encoders and presets, so that a test split only ever reports. Images, not INRs: two
        seeds of one image on both sides would make validation a retrieval task."""
        if not 0 < fraction < 1:
            raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
        generator = torch.Generator().manual_seed(seed)
        images = torch.unique(self.image_index)
        image_labels = torch.stack([self.labels[self.image_index == i][0] for i in images.tolist()])
        held_out = []
        for c in torch.unique(image_labels):
            members = images[image_labels == c]
            count = int(round(fraction * len(members)))
            held_out.append(members[torch.randperm(len(members), generator=generator)[:count]])
        is_validation = torch.isin(self.image_index, torch.cat(held_out))
        return self.subset(~is_validation), self.subset(is_validation)

    def test(self) -> INRDataset:
        return self.subset(~self.is_train)

    def labels_of(self, image_ids: torch.Tensor) -> torch.Tensor:
        """The label of each image id (global image index), e.g. for a PairSampler batch."""
        ids, first = np.unique(self.image_index.numpy(), return_index=True)
        where = np.searchsorted(ids, image_ids.cpu().numpy())
        if np.any(where >= ids.size) or np.any(ids[np.minimum(where, ids.size - 1)] != image_ids.cpu().numpy()):
            raise ValueError("labels_of: an image id is not in this dataset")
        return self.labels[torch.from_numpy(first[where])].to(image_ids.device)

    # -- files -----------------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """One inr weight file (atomic: temp file + rename): params, per-INR tensors as `meta.<key>`, the rest JSON."""
        inr.save(path, self.spec, self.params, metadata={
            "format": FORMAT,
            "label": self.labels, "image_index": self.image_index, "seed": self.seed, "is_train": self.is_train,
            "psnr": self.psnr, "class_names": self.class_names, "dataset": self.meta,
        })

    @classmethod
    def load(cls, path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> INRDataset:
        """Reads a file written by `save`; raises inr.InvalidWeights if it is not one."""
        spec, params, meta = inr.load(path, max_bytes=max_bytes)
        return cls._from_file(path, spec, params, meta)

    @classmethod
    def load_rows(cls, path: str | Path, start: int, stop: int) -> tuple[INRDataset, int]:
        """(the INRs [start, stop) of a file written by `save`, the number of INRs in the file), reading only those
        rows: a page of a 100,000-INR set without its hundreds of megabytes. Rows past the end give a shorter page."""
        rows = load_rows(path, start, stop)
        return cls._from_file(path, rows.spec, rows.params, rows.metadata), rows.count

    @classmethod
    def _from_file(cls, path: str | Path, spec: FieldSpec, params: Params, meta: dict) -> INRDataset:
        if meta.get("format") != FORMAT:
            raise inr.InvalidWeights(f"{path}: not an INR dataset (format {meta.get('format')!r}, expected {FORMAT!r})")
        for key in ("label", "image_index", "seed", "is_train", "psnr"):
            if not isinstance(meta.get(key), torch.Tensor) or meta[key].dim() != 1:
                raise inr.InvalidWeights(f"{path}: INR dataset without a per-INR tensor meta.{key}")
        names = meta.get("class_names")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise inr.InvalidWeights(f"{path}: INR dataset without a list of class names")
        dataset_meta = meta.get("dataset", {})
        try:
            return cls(spec=spec, params=params, labels=meta["label"], image_index=meta["image_index"],
                       seed=meta["seed"], is_train=meta["is_train"], psnr=meta["psnr"], class_names=names,
                       meta=dataset_meta if isinstance(dataset_meta, dict) else {})
        except ValueError as exc:
            raise inr.InvalidWeights(f"{path}: {exc}") from None

    @classmethod
    def from_fit(cls, images: ImageSet, results: Sequence, meta: dict | None = None) -> INRDataset:
        """An INRDataset from one or more `inr.FitResult`s of `images` (e.g. shards fitted with image_offset),
        their rows sorted by (image, seed). Labels and split come from `images` by each row's image_index."""
        if not isinstance(results, Sequence):
            results = [results]
        if not results:
            raise ValueError("from_fit: no fit results")
        spec = results[0].spec
        if any(r.spec != spec for r in results):
            raise ValueError("from_fit: the fit results have different specs")
        order = torch.from_numpy(np.lexsort((torch.cat([r.seed for r in results]).numpy(),
                                             torch.cat([r.image_index for r in results]).numpy())))
        in_order = bool((order == torch.arange(order.numel())).all())

        def rows(parts: list[torch.Tensor]) -> torch.Tensor:
            # One fit result already in (image, seed) order is taken as it is: a 50,000 x S fit's params are
            # gigabytes, and a cat and a gather would hold them three times over
            joined = parts[0] if len(parts) == 1 else torch.cat(parts)
            return joined if in_order else joined[order]

        image_index, seed = rows([r.image_index for r in results]), rows([r.seed for r in results])
        if torch.stack([image_index, seed], dim=1).unique(dim=0).shape[0] != image_index.numel():
            raise ValueError("from_fit: the fit results hold the same (image, seed) INR more than once")
        if image_index.numel() and (image_index.min() < 0 or image_index.max() >= images.num_images):
            raise ValueError(f"from_fit: image indices out of range for {images.num_images} images")
        params = {k: rows([r.params[k] for r in results]) for k in spec.param_shapes()}
        return cls(spec=spec, params=params, labels=images.labels[image_index], image_index=image_index, seed=seed,
                   is_train=images.is_train()[image_index], psnr=rows([r.psnr for r in results]),
                   class_names=list(images.class_names), meta=dict(meta or {}))


# ------------------------------------------------------------------------------------------------------------------
# fitting, with a cache


def _resolved_fit_settings(spec: FieldSpec, seeds_per_image: int | Sequence[int], steps: int | None,
                           lr: float | None, anti_alias: bool, shared_init: bool) -> dict:
    defaults = inr.DEFAULT_FIT[spec.arch]
    seeds = list(range(seeds_per_image)) if isinstance(seeds_per_image, int) else [int(s) for s in seeds_per_image]
    return {"seeds": seeds, "steps": defaults.steps if steps is None else int(steps),
            "lr": defaults.lr if lr is None else float(lr), "anti_alias": bool(anti_alias),
            "shared_init": bool(shared_init)}


def dataset_cache_key(images: ImageSet, spec: FieldSpec, settings: dict) -> str:
    """sha256 of everything a fit depends on: pixels, spec, fit settings. Not the labels, class names or split: the
    fit never reads them, so the same images split another way (all of them training images for a --test-dataset
    run) reuse the fit, and `fit_inr_dataset` takes them from the images it is given."""
    h = hashlib.sha256()
    h.update(json.dumps({"version": CACHE_VERSION, "spec": spec.to_dict(), "fit": settings,
                         "shape": list(images.images.shape)}, sort_keys=True).encode())
    h.update(np.ascontiguousarray(images.images.to(torch.float32).numpy()).tobytes())
    return h.hexdigest()


def fit_inr_dataset(images: ImageSet, spec: FieldSpec, seeds_per_image: int | Sequence[int] = 1, *,
                    steps: int | None = None, lr: float | None = None, anti_alias: bool = False,
                    shared_init: bool = True, device: torch.device | str | None = None,
                    callback: Callable[[int, dict], bool | None] | None = None, chunk_size: int | None = None,
                    cache_dir: str | Path | None = None, image_offset: int = 0) -> INRDataset:
    """Fits `seeds_per_image` INRs (an int S = seeds 0..S-1, or a list of seed ids) to every image of `images`
    (train and test split) with `inr.fit`, and returns them as an INRDataset.

    steps / lr None = `inr.DEFAULT_FIT[spec.arch]`. With `cache_dir`, the dataset is stored there under a hash of the
    images' pixels, spec and the resolved fit settings (the device is not part of it), and a later call with the same
    inputs loads the file instead of fitting (the callback is then never called), with the labels, class names and
    split of the images it is given. Writes are atomic.

    image_offset: with independent initialisations, image k starts from the weights drawn for global image
    `image_offset + k`. Give a held-out image set an offset past the training images (e.g. their count), or its
    image k starts from exactly the weights of training image k, and a nearest neighbour in weight space finds it.
    """
    if spec.out_dim != images.channels:
        raise ValueError(f"spec.out_dim is {spec.out_dim} but the images have {images.channels} channel(s)")
    settings = _resolved_fit_settings(spec, seeds_per_image, steps, lr, anti_alias, shared_init)
    if image_offset < 0:
        raise ValueError(f"image_offset must be >= 0, got {image_offset}")
    if image_offset and not shared_init:  # (a shared initialisation does not depend on the image)
        settings["image_offset"] = int(image_offset)
    meta = {"image_set": images.name, "source": str(images.meta.get("source", images.name)), "fit": settings}
    cache_path = None
    if cache_dir is not None:
        key = dataset_cache_key(images, spec, settings)
        meta["cache_key"] = key
        safe_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", images.name)[:60] or "images"
        cache_path = Path(cache_dir) / f"{safe_name}-{spec.arch}-{key[:24]}.safetensors"
        if cache_path.is_file():
            try:
                cached = INRDataset.load(cache_path)
            except inr.InvalidWeights:
                cached = None  # a damaged cache file is fitted again and replaced
            if cached is not None and cached.meta.get("cache_key") == key:
                return replace(cached, labels=images.labels[cached.image_index],
                               is_train=images.is_train()[cached.image_index],
                               class_names=list(images.class_names), meta={**cached.meta, **meta})
    result = inr.fit(spec, images.images, seeds=settings["seeds"], steps=settings["steps"], lr=settings["lr"],
                     anti_alias=anti_alias, shared_init=shared_init, device=device, chunk_size=chunk_size,
                     image_offset=settings.get("image_offset", 0), callback=callback)
    result = replace(result, image_index=result.image_index - settings.get("image_offset", 0))
    meta["fit_seconds"] = float(result.seconds)
    meta["psnr_mean"] = float(result.psnr.mean())
    dataset = INRDataset.from_fit(images, [result], meta)
    if cache_path is not None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        dataset.save(cache_path)
    return dataset


# ------------------------------------------------------------------------------------------------------------------
# SimCLR pairs


class PairSampler:
    """Batches of SimCLR positive pairs: for each image of a batch, two DIFFERENT seeds' INRs, each augmented by
    `inr.random_augment(spec, params, policy, generator)` (policy None = no augmentation).

    Iterating gives one epoch (every image once, in an order drawn from `generator`); `sample()` gives one batch of
    distinct random images. Each batch is (view_a params, view_b params, image_ids [B] long), params on `device`.
    All randomness comes from `generator`, so a seeded generator gives the same batches again.
    """

    def __init__(self, dataset: INRDataset, policy: inr.AugmentPolicy | None, batch_size: int,
                 generator: torch.Generator | None = None, *, drop_last: bool = False,
                 device: torch.device | str | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(dataset) == 0:
            raise ValueError("PairSampler: the dataset is empty")
        seeds = dataset.seeds_per_image
        if seeds < 2:
            raise ValueError(f"SimCLR pairs need two different seeds (INRs) of each image, but this dataset has "
                             f"{seeds} per image: fit it with seeds_per_image >= 2")
        self.dataset, self.policy, self.batch_size, self.drop_last = dataset, policy, int(batch_size), drop_last
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        order = torch.from_numpy(np.lexsort((dataset.seed.numpy(), dataset.image_index.numpy())))
        self.rows = order.reshape(-1, seeds)  # [num_images, S]: row of image k's s-th seed
        self.image_ids = dataset.image_index[self.rows[:, 0]]  # [num_images]

    @property
    def num_images(self) -> int:
        return int(self.rows.shape[0])

    def __len__(self) -> int:
        full, rest = divmod(self.num_images, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def _draw(self, fn: Callable[..., torch.Tensor], *args) -> torch.Tensor:
        return fn(*args, generator=self.generator, device=self.generator.device).cpu()

    def __iter__(self) -> Iterator[tuple[Params, Params, torch.Tensor]]:
        perm = self._draw(torch.randperm, self.num_images)
        for start in range(0, self.num_images, self.batch_size):
            which = perm[start:start + self.batch_size]
            if self.drop_last and which.numel() < self.batch_size:
                return
            yield self.pair(which)

    def sample(self) -> tuple[Params, Params, torch.Tensor]:
        """One batch of min(batch_size, num_images) distinct random images."""
        return self.pair(self._draw(torch.randperm, self.num_images)[:self.batch_size])

    def pair(self, which: torch.Tensor) -> tuple[Params, Params, torch.Tensor]:
        """The pair views of images `which` (positions 0..num_images-1 in this sampler, not image ids)."""
        s = self.rows.shape[1]
        b = which.numel()
        seed_a = self._draw(torch.randint, s, (b,))
        seed_b = (seed_a + 1 + self._draw(torch.randint, s - 1, (b,))) % s  # any seed but seed_a
        views = []
        for seed_pos in (seed_a, seed_b):
            rows = self.rows[which, seed_pos]
            params = {k: v[rows].to(self.device) for k, v in self.dataset.params.items()}
            if self.policy is not None:
                params = inr.random_augment(self.dataset.spec, params, self.policy, self.generator)
            views.append(params)
        return views[0], views[1], self.image_ids[which]

    def sample_views(self, count: int) -> tuple[list[Params], torch.Tensor]:
        """`count` views of each of min(batch_size, num_images) distinct random images: `count` DIFFERENT seeds'
        INRs of every image (in a random order), each augmented as in `pair`. -> (list of `count` params, image_ids)."""
        s = self.rows.shape[1]
        if not 2 <= count <= s:
            raise ValueError(f"views per image must be between 2 and the {s} seeds per image, got {count}")
        which = self._draw(torch.randperm, self.num_images)[:self.batch_size]
        order = self._draw(torch.rand, which.numel(), s).argsort(dim=1)[:, :count]  # [b, count] distinct seeds
        views = []
        for v in range(count):
            params = {k: t[self.rows[which, order[:, v]]].to(self.device) for k, t in self.dataset.params.items()}
            if self.policy is not None:
                params = inr.random_augment(self.dataset.spec, params, self.policy, self.generator)
            views.append(params)
        return views, self.image_ids[which]
