"""Permutation symmetries: the function is unchanged and the graph's nodes move consistently."""

import pytest
import torch

import inr

SPECS = [
    inr.FieldSpec.siren(out_dim=1, hidden=6, layers=3),
    inr.FieldSpec.siren(out_dim=3, hidden=5, layers=4),
    inr.FieldSpec.mfn(out_dim=1, hidden=6, filters=3),
    inr.FieldSpec.mfn(out_dim=3, hidden=5, filters=2),
]


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_it_leaves_the_function_unchanged(spec):
    params = inr.init(spec, 4, seed=0, grid_size=10, dtype=torch.float64)
    permuted = inr.permute(spec, params, torch.Generator().manual_seed(0))
    coords = inr.grid(10, 10, dtype=torch.float64)
    assert (inr.evaluate(spec, permuted, coords) - inr.evaluate(spec, params, coords)).abs().max() < 1e-6
    # ... while the hidden weights really moved, differently per INR
    changed = [n for n in params if not torch.equal(permuted[n], params[n])]
    assert changed
    assert all(sorted(permuted[n][b].flatten().tolist()) == sorted(params[n][b].flatten().tolist())
               for n in params for b in range(4))


def test_it_follows_eq_5_for_mfn():
    spec = inr.FieldSpec.mfn(out_dim=2, hidden=4, filters=3)
    params = inr.init(spec, 2, seed=1, dtype=torch.float64)
    perms = inr.random_permutations(spec, 2, torch.Generator().manual_seed(3))
    assert len(perms) == 3 and all(p.shape == (2, 4) for p in perms)
    out = inr.apply_permutations(spec, params, perms)
    for b in range(2):
        eye = torch.eye(4, dtype=torch.float64)
        p = [eye[perm[b]] for perm in perms]  # P_i with (P x)[j] = x[perm[j]]
        for i in range(3):
            torch.testing.assert_close(out[f"filter{i}.omega"][b], p[i] @ params[f"filter{i}.omega"][b])
            torch.testing.assert_close(out[f"filter{i}.phi"][b], p[i] @ params[f"filter{i}.phi"][b])
        for i in range(2):
            torch.testing.assert_close(out[f"linear{i}.weight"][b], p[i + 1] @ params[f"linear{i}.weight"][b] @ p[i].T)
            torch.testing.assert_close(out[f"linear{i}.bias"][b], p[i + 1] @ params[f"linear{i}.bias"][b])
        torch.testing.assert_close(out["linear2.weight"][b], params["linear2.weight"][b] @ p[2].T)
        torch.testing.assert_close(out["linear2.bias"][b], params["linear2.bias"][b])


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_it_permutes_the_graph_nodes_consistently(spec):
    params = inr.init(spec, 3, seed=2, dtype=torch.float64)
    perms = inr.random_permutations(spec, 3, torch.Generator().manual_seed(4))
    g = inr.to_graph(spec, params)
    gp = inr.to_graph(spec, inr.apply_permutations(spec, params, perms))
    idx = inr.node_permutation(spec, perms)  # [B, N]
    assert idx.shape == (3, g.num_nodes)
    for b in range(3):
        assert torch.equal(gp.node_features[b], g.node_features[b, idx[b]])
        assert torch.equal(gp.edge_features[b], g.edge_features[b][idx[b]][:, idx[b]])
    # the batch-free structure is permutation invariant: ids of a node and its image agree
    assert torch.equal(g.node_position[idx], g.node_position.expand(3, -1))
    assert torch.equal(g.node_layer[idx], g.node_layer.expand(3, -1))
    assert torch.equal(g.edge_mask[idx[0]][:, idx[0]], g.edge_mask)
    assert not torch.equal(gp.node_features, g.node_features)


def test_it_accepts_one_permutation_for_the_whole_batch():
    spec = SPECS[0]
    params = inr.init(spec, 2, seed=0, dtype=torch.float64)
    perms = [torch.tensor([5, 4, 3, 2, 1, 0]), torch.tensor([1, 0, 2, 3, 4, 5])]
    out = inr.apply_permutations(spec, params, perms)
    assert torch.equal(out["layer0.bias"], params["layer0.bias"].flip(1))
    assert torch.equal(out["layer2.weight"][:, :, 0], params["layer2.weight"][:, :, 1])
    assert inr.node_permutation(spec, perms).tolist() == [0, 1, 7, 6, 5, 4, 3, 2, 9, 8, 10, 11, 12, 13, 14]


def test_it_rejects_bad_permutations():
    spec = SPECS[0]
    params = inr.init(spec, 2, seed=0)
    with pytest.raises(ValueError, match="one per hidden layer"):
        inr.apply_permutations(spec, params, [torch.arange(6)])
    with pytest.raises(ValueError, match="not a permutation"):
        inr.apply_permutations(spec, params, [torch.zeros(6, dtype=torch.long), torch.arange(6)])
    with pytest.raises(ValueError, match="shape"):
        inr.apply_permutations(spec, params, [torch.arange(5), torch.arange(6)])
