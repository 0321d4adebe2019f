"""NT-Xent equals a direct implementation of eq. 6; retrieval accuracy counts positives among the other views."""

import math

import pytest
import torch

from training.losses import multi_view_nt_xent, nt_xent, retrieval_accuracy, vicreg


def _eq6_by_loops(z_a, z_b, t):
    z = torch.cat([z_a, z_b])
    two_n = z.shape[0]
    n = two_n // 2

    def sim(u, v):
        return float(u @ v) / (float(u.norm()) * float(v.norm()))

    total = 0.0
    for i in range(two_n):
        j = (i + n) % two_n
        denominator = sum(math.exp(sim(z[i], z[k]) / t) for k in range(two_n) if k != i)  # 2N - 1 terms
        total += -math.log(math.exp(sim(z[i], z[j]) / t) / denominator)
    return total / two_n


@pytest.mark.parametrize("n, d, t", [(2, 3, 0.5), (5, 8, 0.1), (7, 4, 1.0)])
def test_it_matches_eq6(n, d, t):
    gen = torch.Generator().manual_seed(n * 100 + d)
    z_a = torch.randn(n, d, generator=gen, dtype=torch.float64)
    z_b = torch.randn(n, d, generator=gen, dtype=torch.float64)
    assert float(nt_xent(z_a, z_b, t)) == pytest.approx(_eq6_by_loops(z_a, z_b, t), rel=1e-10)


def test_it_is_low_for_aligned_pairs_and_high_for_random_ones():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(16, 8, generator=gen)
    assert float(nt_xent(z, z * 2.0, 0.1)) < 0.1  # scale does not matter: cosine similarity
    assert float(nt_xent(z, torch.randn(16, 8, generator=gen), 0.1)) > 2.0


def test_it_rejects_bad_input():
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(torch.randn(4, 2), torch.randn(4, 2), 0.0)
    with pytest.raises(ValueError, match="both be"):
        nt_xent(torch.randn(4, 2), torch.randn(3, 2), 0.1)


def test_it_counts_retrieval_top1_and_top5():
    z_a = torch.eye(6)
    z_b = torch.eye(6)
    assert retrieval_accuracy(z_a, z_b) == {"top1": 1.0, "top5": 1.0}
    # Swap the positives of examples 0 and 1: those 4 anchors now find a wrong view first.
    z_b = z_b[[1, 0, 2, 3, 4, 5]]
    acc = retrieval_accuracy(z_a, z_b)
    assert acc["top1"] == pytest.approx(8 / 12)
    assert acc["top5"] == 1.0


def _vicreg_by_hand(z_a, z_b):
    n, d = z_a.shape
    total = 25.0 * float(((z_a - z_b) ** 2).mean())
    for z in (z_a, z_b):
        std = [math.sqrt(float(z[:, j].var()) + 1e-4) for j in range(d)]
        total += 25.0 * sum(max(0.0, 1.0 - s) for s in std) / d / 2
        c = z - z.mean(0)
        cov = (c.T @ c) / (n - 1)
        total += sum(float(cov[i, j]) ** 2 for i in range(d) for j in range(d) if i != j) / d
    return total


def test_it_computes_vicreg_term_by_term():
    gen = torch.Generator().manual_seed(0)
    z_a = torch.randn(6, 4, generator=gen, dtype=torch.float64) * 0.5
    z_b = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    assert float(vicreg(z_a, z_b)) == pytest.approx(_vicreg_by_hand(z_a, z_b), rel=1e-10)


def test_it_penalises_collapse_under_vicreg_but_not_spread_identical_views():
    gen = torch.Generator().manual_seed(1)
    # orthonormal columns orthogonal to the ones vector: centred and uncorrelated, std 3 after the scaling
    basis = torch.cat([torch.ones(64, 1, dtype=torch.float64),
                       torch.randn(64, 8, generator=gen, dtype=torch.float64)], dim=1)
    spread = torch.linalg.qr(basis)[0][:, 1:] * math.sqrt(63) * 3
    collapsed = torch.ones(64, 8, dtype=torch.float64)
    assert float(vicreg(spread, spread)) < 1e-12  # invariant, std 3 per dimension, uncorrelated columns
    assert float(vicreg(collapsed, collapsed)) == pytest.approx(25.0 * (1 - 1e-2), rel=1e-6)  # std sqrt(1e-4)
    with pytest.raises(ValueError, match="N >= 2"):
        vicreg(torch.randn(1, 4), torch.randn(1, 4))


@pytest.mark.parametrize("n, d, t", [(2, 3, 0.5), (5, 8, 0.1)])
def test_the_multi_view_loss_is_nt_xent_for_two_views(n, d, t):
    gen = torch.Generator().manual_seed(n)
    z_a, z_b = (torch.randn(n, d, generator=gen, dtype=torch.float64) for _ in range(2))
    torch.testing.assert_close(multi_view_nt_xent(torch.stack([z_a, z_b], dim=1), t), nt_xent(z_a, z_b, t))


def test_the_multi_view_loss_averages_every_positive_of_every_anchor():
    # 3 images x 3 views: each of the 9 anchors has 2 positives; checked against a plain double loop
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(3, 3, 4, generator=gen, dtype=torch.float64)
    t = 0.3
    flat = torch.nn.functional.normalize(z.reshape(9, 4), dim=1)  # row 3 * image + view
    terms = []
    for i in range(9):
        denominator = sum(math.exp(float(flat[i] @ flat[k]) / t) for k in range(9) if k != i)
        for p in range(9):
            if p != i and p // 3 == i // 3:
                terms.append(-math.log(math.exp(float(flat[i] @ flat[p]) / t) / denominator))
    assert multi_view_nt_xent(z, t).item() == pytest.approx(sum(terms) / len(terms), rel=1e-10)
    with pytest.raises(ValueError):
        multi_view_nt_xent(z[:, :1], t)  # one view has no positive
