"""The work of each run kind, given a claimed Run and its Reporter: calls into inr and training, stores artifacts.

Kept apart from tasks.py (the Celery plumbing: claiming, finishing, chaining) so each reads on its own.
"""

from __future__ import annotations

from cinr_web.runs.models import FitChunk, Run
from cinr_web.runs.progress import FitReporter
from inr import FieldSpec
from inr.fit import FitResult
from inr.fit import fit as fit_inrs

FIT_POINTS_PER_CHUNK = 100  # metric points per fit chunk and metric; a fit is plotted, not logged step by step


def fit_chunk(run: Run, chunk: FitChunk, reporter: FitReporter) -> FitResult:
    """inr.fit on the images [chunk.start, chunk.stop) with image_offset = chunk.start, so the chunks of a fit give
    exactly the INRs one unchunked fit would."""
    config = run.config
    spec = FieldSpec.from_dict(config["spec"])
    images = run.inrset.dataset.load().images[chunk.start:chunk.stop]  # [n, C, H, W]
    steps = int(config["steps"])
    last_bucket = -1
    reporter.check()

    def callback(step: int, stats: dict) -> bool:
        nonlocal last_bucket
        # Progress within this chunk; inr.fit may itself split the chunk into batches sized for the device, each
        # running all `steps`, so the chunk's x axis is its progress scaled to `steps`.
        fraction = (stats["chunk"] + step / stats["steps"]) / stats["chunks"]
        reporter.progress(fraction)
        bucket = int(fraction * FIT_POINTS_PER_CHUNK)
        if bucket != last_bucket:
            last_bucket = bucket
            x = chunk.index * steps + round(fraction * steps)
            reporter.metrics(x, {"loss": stats["loss"], "psnr_mean": stats["psnr_mean"]})
        return reporter.tick()

    return fit_inrs(spec, images, seeds=int(config["seeds_per_image"]), steps=steps, lr=float(config["lr"]),
                   anti_alias=bool(config["anti_alias"]), shared_init=bool(config["shared_init"]),
                   image_offset=chunk.start, callback=callback)
