"""t-SNE maps keep clusters apart, and new points land next to their own cluster."""

import numpy as np
import pytest

from training.embed import tsne_map


def _clusters(rng, per=40):
    centres = np.array([[0.0] * 5, [12.0] * 5])
    x = np.concatenate([c + rng.normal(size=(per, 5)) for c in centres])
    return x, np.repeat([0, 1], per)


def test_it_maps_clusters_apart_and_places_new_points_beside_their_cluster():
    rng = np.random.default_rng(0)
    x, y = _clusters(rng)
    m = tsne_map(x, seed=0)
    assert m.coordinates.shape == (80, 2)
    centre = [m.coordinates[y == k].mean(axis=0) for k in (0, 1)]
    spread = max(np.linalg.norm(m.coordinates[y == k] - centre[k], axis=1).mean() for k in (0, 1))
    assert np.linalg.norm(centre[0] - centre[1]) > 2 * spread
    new, new_y = _clusters(rng, per=5)
    placed = m.place(new)
    nearest = np.argmin([np.linalg.norm(placed - c, axis=1) for c in centre], axis=0)
    assert (nearest == new_y).all()
    again = tsne_map(x, seed=0)
    # Seeded: the same map up to the small run-to-run noise of the Barnes-Hut approximation.
    np.testing.assert_allclose(again.coordinates, m.coordinates, atol=0.5)


def test_it_rejects_bad_features():
    with pytest.raises(ValueError, match="at least 4"):
        tsne_map(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        tsne_map(np.full((10, 2), np.nan))
    m = tsne_map(np.random.default_rng(0).normal(size=(20, 3)))
    with pytest.raises(ValueError, match="columns"):
        m.place(np.zeros((2, 4)))
