"""2-D t-SNE maps (openTSNE) of encoder features or raw weights (the paper's Figure 3), with `place` to put new
points on an existing map (openTSNE's transform: the map itself does not move)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from openTSNE import TSNE, TSNEEmbedding

from training.probe import feature_array

MAX_POINTS = 50_000


@dataclass
class EmbeddingMap:
    """A fitted 2-D map: `coordinates` [M, 2] of the points it was made from; `place(new)` -> [K, 2]."""

    coordinates: np.ndarray
    mean: np.ndarray  # standardisation of the inputs, reused for new points
    scale: np.ndarray
    embedding: TSNEEmbedding

    def place(self, new_features: np.ndarray | torch.Tensor) -> np.ndarray:
        """Coordinates [K, 2] of new points on this map (optimised against the fixed reference points)."""
        x = feature_array(new_features)
        if x.shape[1] != self.mean.shape[0]:
            raise ValueError(f"new features have {x.shape[1]} columns, the map was made from {self.mean.shape[0]}")
        if x.shape[0] == 0:
            return np.zeros((0, 2))
        return np.asarray(self.embedding.transform((x - self.mean) / self.scale))


def tsne_map(features: np.ndarray | torch.Tensor, seed: int = 0, perplexity: float = 30.0,
             n_jobs: int = 1) -> EmbeddingMap:
    """t-SNE of standardised `features` [M, D] (M >= 4, at most MAX_POINTS) into 2-D, seeded."""
    x = feature_array(features)
    m = x.shape[0]
    if m < 4:
        raise ValueError(f"t-SNE needs at least 4 points, got {m}")
    if m > MAX_POINTS:
        raise ValueError(f"t-SNE of {m} points: at most {MAX_POINTS}; subsample first")
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    # Perplexity must stay below the number of neighbours available.
    perplexity = float(min(perplexity, max((m - 1) / 3.0, 1.0)))
    tsne = TSNE(n_components=2, perplexity=perplexity, random_state=seed, n_jobs=n_jobs, verbose=False)
    embedding = tsne.fit((x - mean) / scale)
    return EmbeddingMap(coordinates=np.asarray(embedding), mean=mean, scale=scale, embedding=embedding)
