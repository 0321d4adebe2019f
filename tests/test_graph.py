"""Graph view of INRs: layout, ids, dense and sparse edges, and consistency under neuron permutations."""

import pytest
import torch

import inr

SPECS = [
    inr.FieldSpec.siren(out_dim=1, hidden=5, layers=3),
    inr.FieldSpec.siren(out_dim=3, hidden=4, layers=4),
    inr.FieldSpec.mfn(out_dim=1, hidden=4, filters=3),
    inr.FieldSpec.mfn(out_dim=3, hidden=3, filters=2),
]


def test_it_places_siren_weights_and_biases():
    spec = inr.FieldSpec.siren(out_dim=2, hidden=3, layers=3)
    params = inr.init(spec, 2, seed=4, dtype=torch.float64)
    g = inr.to_graph(spec, params)
    # nodes: 2 inputs, 3 hidden, 3 hidden, 2 outputs
    assert g.node_layer.tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 3, 3]
    assert g.node_kind.tolist() == [0, 0, 1, 1, 1, 1, 1, 1, 2, 2]
    assert g.node_position.tolist() == [0, 1, 2, 2, 2, 3, 3, 3, 4, 5]
    assert g.num_positions == 6
    assert g.node_features.shape == (2, 10, 1) and g.edge_features.shape == (2, 10, 10, 1)
    w0, w1, w2 = (params[f"layer{i}.weight"] for i in range(3))
    # edge src -> dst carries W[dst, src]
    assert torch.equal(g.edge_features[:, 0:2, 2:5, 0], w0.transpose(1, 2))
    assert torch.equal(g.edge_features[:, 2:5, 5:8, 0], w1.transpose(1, 2))
    assert torch.equal(g.edge_features[:, 5:8, 8:10, 0], w2.transpose(1, 2))
    assert torch.equal(g.node_features[:, 2:5, 0], params["layer0.bias"])
    assert torch.equal(g.node_features[:, 8:10, 0], params["layer2.bias"])
    assert torch.all(g.node_features[:, 0:2] == 0)
    mask = torch.zeros(10, 10, dtype=torch.bool)
    mask[0:2, 2:5] = mask[2:5, 5:8] = mask[5:8, 8:10] = True
    assert torch.equal(g.edge_mask, mask)
    assert torch.all(g.edge_features[:, ~mask] == 0)


def test_it_places_mfn_filters_as_in_figure_1():
    spec = inr.FieldSpec.mfn(out_dim=1, hidden=3, filters=2)
    params = inr.init(spec, 2, seed=1, dtype=torch.float64)
    g = inr.to_graph(spec, params)
    # nodes: 2 inputs, hidden z1 (3), hidden z2 (3), 1 output
    assert g.node_layer.tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 3]
    assert g.node_position.tolist() == [0, 1, 2, 2, 2, 3, 3, 3, 4]
    assert g.node_features.shape == (2, 9, 2)
    # every filter reads the inputs directly
    assert torch.equal(g.edge_features[:, 0:2, 2:5, 0], params["filter0.omega"].transpose(1, 2))
    assert torch.equal(g.edge_features[:, 0:2, 5:8, 0], params["filter1.omega"].transpose(1, 2))
    assert torch.equal(g.edge_features[:, 2:5, 5:8, 0], params["linear0.weight"].transpose(1, 2))
    assert torch.equal(g.edge_features[:, 5:8, 8:9, 0], params["linear1.weight"].transpose(1, 2))
    # hidden layer l: [bias of linear{l-1} (0 for l = 0), phi of filter l]; output: [bias, 0]
    assert torch.all(g.node_features[:, 2:5, 0] == 0)
    assert torch.equal(g.node_features[:, 2:5, 1], params["filter0.phi"])
    assert torch.equal(g.node_features[:, 5:8, 0], params["linear0.bias"])
    assert torch.equal(g.node_features[:, 5:8, 1], params["filter1.phi"])
    assert torch.equal(g.node_features[:, 8:9, 0], params["linear1.bias"])
    assert torch.all(g.node_features[:, 8:9, 1] == 0)
    assert int(g.edge_mask.sum()) == 2 * 3 * 2 + 3 * 3 + 3


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_it_keeps_sparse_and_dense_forms_equal(spec):
    params = inr.init(spec, 3, seed=2)
    g = inr.to_graph(spec, params)
    layout = inr.graph_layout(spec)
    assert g.edge_index.shape == (2, layout.num_edges) and g.edge_values.shape == (3, layout.num_edges, 1)
    assert layout.num_edges == sum(params[r.name][0].numel() for r in layout.weights)
    src, dst = g.edge_index
    assert torch.equal(g.edge_features[:, src, dst], g.edge_values)
    assert torch.equal(g.edge_mask.nonzero().T.sort(dim=1).values, g.edge_index.sort(dim=1).values)
    assert int(g.edge_mask.sum()) == layout.num_edges
    # every parameter lands somewhere exactly once
    n_node_values = int((g.node_features != 0).sum())
    n_bias_values = sum(params[r.name][0].numel() for r in layout.biases) * 3
    assert n_node_values == n_bias_values
    sparse_only = inr.to_graph(spec, params, dense=False)
    assert torch.equal(sparse_only.edge_values, g.edge_values)


def test_it_gives_each_input_and_output_its_own_position_and_each_hidden_layer_one():
    spec = inr.FieldSpec.mfn(out_dim=3, hidden=4, filters=3)
    layout = inr.graph_layout(spec)
    pos, kind = layout.node_position, layout.node_kind
    assert len(set(pos[kind == 0].tolist())) == 2 and len(set(pos[kind == 2].tolist())) == 3
    for layer in layout.hidden_layers:
        assert len(set(pos[layout.node_layer == layer].tolist())) == 1
    assert len(set(pos.tolist())) == layout.num_positions == 2 + 3 + 3
