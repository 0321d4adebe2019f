"""SimCLR's NT-Xent loss (paper eq. 6), its multi-view form, VICReg, and positive-pair retrieval accuracy within a
batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _similarities(z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
    """Cosine similarities of all 2N views with each other, `[2N, 2N]`, self-similarity masked to -inf.

    Rows 0..N-1 are view a of examples 0..N-1, rows N..2N-1 view b, so the positive of row i is row (i + N) mod 2N.
    """
    if z_a.shape != z_b.shape or z_a.dim() != 2:
        raise ValueError(f"z_a and z_b must both be [N, D]; got {list(z_a.shape)} and {list(z_b.shape)}")
    z = F.normalize(torch.cat([z_a, z_b], dim=0), dim=1)  # [2N, D], unit rows
    sim = z @ z.T  # [2N, 2N] cosine similarities
    self_mask = torch.eye(sim.shape[0], dtype=torch.bool, device=sim.device)
    return sim.masked_fill(self_mask, float("-inf"))  # the indicator 1[k != i] of eq. 6


def _positive_index(n: int, device: torch.device) -> torch.Tensor:
    return torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(device)  # [2N]


def nt_xent(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent, eq. 6, averaged over all 2N anchors (both views of each of N positive pairs).

    z_a, z_b: [N, D] projections of the two views; row i of z_a and row i of z_b are a positive pair.
    l(i, j) = -log( exp(sim(z_i, z_j) / t) / sum_{k != i} exp(sim(z_i, z_k) / t) ): for each anchor the denominator
    has 2N - 1 terms: its positive and the 2N - 2 other views in the batch.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    n = z_a.shape[0]
    if n < 2:
        raise ValueError("nt_xent needs at least 2 pairs (a negative for each anchor)")
    logits = _similarities(z_a, z_b) / temperature  # [2N, 2N]
    # Cross-entropy with the positive as the target class = -log softmax over the 2N - 1 non-self entries.
    return F.cross_entropy(logits, _positive_index(n, logits.device))


def multi_view_nt_xent(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent with V >= 2 views of each of N images, every other view of the anchor's image a positive (the
    multi-positive form of Khosla et al. 2020, "L_out"); with V = 2 it is exactly `nt_xent`.

    z: [N, V, D] projections, z[n, v] view v of image n. For each of the N V anchors and each of its V - 1 positives p:
    -log( exp(sim(z_i, z_p) / t) / sum_{k != i} exp(sim(z_i, z_k) / t) ), the denominator over all N V - 1 other
    views; averaged over anchors and positives. Several INRs of one image (its seeds, "neural views") then all pull
    together in one step, instead of one pair per image.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if z.dim() != 3 or z.shape[1] < 2 or z.shape[0] < 2:
        raise ValueError(f"z must be [N, V, D] with N >= 2 images and V >= 2 views; got {list(z.shape)}")
    n, v, _ = z.shape
    flat = F.normalize(z.transpose(0, 1).reshape(n * v, -1), dim=1)  # [V N, D], view-major: row v * N + image
    logits = (flat @ flat.T) / temperature  # [V N, V N]
    self_mask = torch.eye(n * v, dtype=torch.bool, device=z.device)
    log_prob = torch.log_softmax(logits.masked_fill(self_mask, float("-inf")), dim=1)  # over the V N - 1 others
    image = torch.arange(n, device=z.device).repeat(v)  # [V N]
    positive = (image[:, None] == image[None, :]) & ~self_mask  # [V N, V N], V - 1 per row
    return -log_prob[positive].mean()


@torch.no_grad()
def retrieval_accuracy(z_a: torch.Tensor, z_b: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """Fraction of the 2N anchors whose positive is among the k most similar other views, for each k:
    {"top1": ..., "top5": ...}. k is capped at 2N - 1 (then it is trivially 1)."""
    sim = _similarities(z_a.float(), z_b.float())  # [2N, 2N]
    positive = _positive_index(z_a.shape[0], sim.device)
    pos_sim = sim.gather(1, positive.unsqueeze(1))  # [2N, 1]
    # Rank of the positive = number of other views strictly more similar (ties count in the positive's favour).
    rank = (sim > pos_sim).sum(dim=1)  # [2N]
    return {f"top{k}": float((rank < k).float().mean()) for k in ks}


def vicreg(z_a: torch.Tensor, z_b: torch.Tensor, invariance: float = 25.0, variance: float = 25.0,
           covariance: float = 1.0) -> torch.Tensor:
    """VICReg (Bardes et al. 2022): no negatives; the two views' embeddings are pulled together while every
    dimension keeps a standard deviation of at least 1 over the batch and the dimensions stay decorrelated, which
    is what prevents collapse. Weights are the paper's (25, 25, 1).

    z_a, z_b: [N, D] embeddings of the two views; row i of each is a positive pair.
    """
    if z_a.shape != z_b.shape or z_a.dim() != 2 or z_a.shape[0] < 2:
        raise ValueError(f"z_a and z_b must both be [N, D] with N >= 2; got {list(z_a.shape)} and {list(z_b.shape)}")
    n, d = z_a.shape
    invariance_term = F.mse_loss(z_a, z_b)  # mean over N x D
    variance_term = z_a.new_zeros(())
    covariance_term = z_a.new_zeros(())
    for z in (z_a, z_b):
        z = z - z.mean(dim=0)  # [N, D]
        std = torch.sqrt(z.var(dim=0) + 1e-4)  # [D]
        variance_term = variance_term + F.relu(1.0 - std).mean() / 2
        cov = (z.T @ z) / (n - 1)  # [D, D]
        off_diagonal = cov - torch.diag(torch.diagonal(cov))
        covariance_term = covariance_term + off_diagonal.square().sum() / d
    return invariance * invariance_term + variance * variance_term + covariance * covariance_term
