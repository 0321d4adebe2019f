"""Both encoders (the Relational Transformer and the weight-message GNN) are invariant to hidden-neuron permutations
and sensitive to everything else."""

import pytest
import torch

import inr
from training.encoder import EncoderConfig, build_encoder, layer_activations

SPECS = [inr.FieldSpec.siren(1, hidden=8), inr.FieldSpec.siren(3, hidden=8),
         inr.FieldSpec.mfn(1, hidden=6), inr.FieldSpec.mfn(3, hidden=6)]
SMALL = dict(d_node=16, d_edge=8, d_attn=8, heads=2, layers=2, d_ff=16, feature_dim=12)


def _encoder(spec, **kw):
    torch.manual_seed(0)
    model = build_encoder(spec, EncoderConfig(**{**SMALL, **kw})).double().eval()
    for p in model.parameters():  # move away from the initialisation's symmetric parts (e.g. zero biases)
        p.data += 0.1 * torch.randn_like(p)
    return model


def _params(spec, batch=3):
    params = inr.init(spec, batch, seed=7, grid_size=8, dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    return {k: v + 0.1 * torch.randn(v.shape, generator=gen, dtype=v.dtype) for k, v in params.items()}


GNN = {"kind": "gnn"}
OPTIONS = [{}, {"probe_points": 5}, {"neuron_stats": True}, GNN, {**GNN, "probe_points": 5},
           {**GNN, "neuron_stats": True}, {**GNN, "gated_ff": True}, {**GNN, "multiplicative": True}]


def _name(options: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in options.items()) or "default"


@pytest.mark.parametrize("options", OPTIONS, ids=_name)
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.arch}-{s.out_dim}ch")
def test_it_is_invariant_to_hidden_neuron_permutations(spec, options):
    model = _encoder(spec, **options)
    params = _params(spec)
    model.set_normalization(params)
    permuted = inr.permute(spec, params, torch.Generator().manual_seed(3))
    assert any(not torch.equal(params[k], permuted[k]) for k in params)  # the weights did move
    with torch.no_grad():
        a, b = model.encode_params(params), model.encode_params(permuted)
    assert a.shape == (3, SMALL["feature_dim"])
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    assert (a[0] - a[1]).abs().max() > 1e-3  # different INRs get different features


@pytest.mark.parametrize("options", [{}, {"neuron_stats": True}, GNN, {**GNN, "neuron_stats": True}], ids=_name)
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.arch}-{s.out_dim}ch")
def test_it_changes_under_a_perturbation_that_is_not_a_symmetry(spec, options):
    model = _encoder(spec, **options)
    params = _params(spec)
    model.set_normalization(params)
    # Permute the rows of one hidden weight matrix only (no matching permutation of the next layer): the field
    # changes, and so must the features.
    name = "layer1.weight" if spec.arch == "siren" else "linear1.weight"
    broken = dict(params)
    broken[name] = params[name].roll(1, dims=1)
    coords = inr.grid(4, 4, dtype=torch.float64)
    assert (inr.evaluate(spec, params, coords) - inr.evaluate(spec, broken, coords)).abs().max() > 1e-3
    with torch.no_grad():
        diff = (model.encode_params(params) - model.encode_params(broken)).abs().max()
    assert diff > 1e-4


@pytest.mark.parametrize("options", [{}, GNN], ids=_name)
def test_it_rejects_a_graph_of_another_spec(options):
    model = _encoder(SPECS[0], **options)
    other = inr.FieldSpec.siren(1, hidden=9)
    with pytest.raises(ValueError, match="nodes"):
        model(inr.to_graph(other, inr.init(other, 2, dtype=torch.float64), dense=False))


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.arch}-{s.out_dim}ch")
def test_it_computes_probe_activations_whose_last_layer_is_the_field(spec):
    params = _params(spec)
    coords = torch.rand(5, 2, dtype=torch.float64) * 2 - 1
    acts = layer_activations(spec, params, coords)
    assert [a.shape[2] for a in acts] == spec.layer_sizes()
    torch.testing.assert_close(acts[-1], inr.evaluate(spec, params, coords))


def test_it_gives_each_neuron_its_incoming_and_outgoing_weights_or_their_statistics():
    spec = inr.FieldSpec.siren(1, hidden=8)  # 2 -> 8 -> 8 -> 1: blocks layer0.weight, layer1.weight, layer2.weight
    model = _encoder(spec, neuron_stats=True)
    params = _params(spec, batch=2)
    edges = inr.edge_values(spec, params)  # unstandardised: _neuron_stats takes whatever edges it is given
    stats = model._neuron_stats(edges)
    # slots: layer0 in (2 weights, in order: the inputs are fixed) and out (5 stats over hidden layer 1), layer1 in
    # and out (5 + 5), layer2 in (5 stats over hidden layer 2) and out (1 weight: the output is fixed)
    assert stats.shape == (2, 2 + 8 + 8 + 1, 2 + 5 + 5 + 5 + 5 + 1)
    torch.testing.assert_close(stats[:, 2:10, 0:2], params["layer0.weight"])  # each first-layer neuron's frequency
    w1 = params["layer1.weight"]  # [B, 8 out, 8 in]: hidden layer 2's incoming, hidden layer 1's outgoing weights
    expected = torch.stack([w1.mean(2), w1.std(2, unbiased=False), w1.amin(2), w1.amax(2), w1.square().mean(2).sqrt()],
                           dim=-1)
    torch.testing.assert_close(stats[:, 10:18, 7:12], expected)  # hidden layer 2 (nodes 10-17), layer1's incoming
    torch.testing.assert_close(stats[:, 2:10, 12], w1.mean(1))  # hidden layer 1, layer1's outgoing mean
    torch.testing.assert_close(stats[:, 10:18, 22], params["layer2.weight"][:, 0, :])  # weight to the output
    assert stats[:, :2, :2].abs().max() == 0  # the input neurons have no incoming weights
    assert stats[:, 18:, 22:].abs().max() == 0  # the output neuron has no outgoing weights


def test_it_reports_the_neuron_statistics_its_forward_starts_from():
    spec = inr.FieldSpec.siren(1, hidden=8)
    model = _encoder(spec, neuron_stats=True)
    params = inr.canonicalize(spec, _params(spec, batch=4))  # already canonical: canonicalising again changes nothing
    # before set_normalization the edges are standardised with mean 0 and std 1: the raw weights' statistics
    torch.testing.assert_close(model.neuron_statistics(params), model._neuron_stats(inr.edge_values(spec, params)))
    model.set_normalization(params)
    freq = model.neuron_statistics(params)[:, 2:10, 0:2]  # the first-layer frequencies, standardised over the set
    assert abs(float(freq.mean())) < 1e-6 and abs(float(freq.std()) - 1) < 0.05
    assert model.neuron_statistics(params).shape == model._neuron_stats(inr.edge_values(spec, params)).shape


@pytest.mark.parametrize("options", [{}, {"neuron_stats": True}, GNN, {**GNN, "neuron_stats": True},
                                     {**GNN, "gated_ff": True}, {**GNN, "multiplicative": True}], ids=_name)
def test_it_has_a_gradient_for_every_weight(options):
    spec = SPECS[2]
    model = _encoder(spec, **options)
    model.encode_params(_params(spec)).square().sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_it_builds_the_encoder_its_config_names():
    spec = SPECS[0]
    assert type(build_encoder(spec, EncoderConfig())).__name__ == "RelationalTransformer"
    assert type(build_encoder(spec, EncoderConfig(kind="gnn"))).__name__ == "WeightMessageGNN"
    with pytest.raises(ValueError, match="kind"):
        EncoderConfig(kind="mlp")


def test_the_gnn_message_is_the_weighted_sum_of_the_senders_states():
    # scaled_sum: m[b, o] = sum_i sum_k w[b, o, i, k] * s[b, i, k] / sqrt(n_in), checked against plain loops
    from training.gnn import scaled_sum

    gen = torch.Generator().manual_seed(0)
    w = torch.randn(2, 3, 5, 4, generator=gen, dtype=torch.float64)  # [B, o, i, K]
    s = torch.randn(2, 5, 4, 6, generator=gen, dtype=torch.float64)  # [B, i, K, d]
    expected = torch.zeros(2, 3, 6, dtype=torch.float64)
    for b in range(2):
        for o in range(3):
            for i in range(5):
                for k in range(4):
                    expected[b, o] += w[b, o, i, k] * s[b, i, k]
    torch.testing.assert_close(scaled_sum(w, s), expected / 5 ** 0.5)


@pytest.mark.parametrize("spec", [SPECS[0], SPECS[2]], ids=lambda s: s.arch)
def test_the_multiplicative_gnn_hears_the_product_of_an_mfn_layers_two_messages_and_leaves_siren_alone(spec):
    model = _encoder(spec, **GNN, multiplicative=True)
    params = _params(spec)
    with torch.no_grad():
        before = model.encode_params(params)
        for layer in model.layers:
            layer.product.weight.zero_()
        after = model.encode_params(params)
    if spec.arch == "mfn":  # hidden layers >= 1 hear their filter and the linear layer below: the product is used
        assert (before - after).abs().max() > 1e-3
    else:  # every SIREN layer hears one tensor forward: nothing to multiply
        torch.testing.assert_close(before, after)
