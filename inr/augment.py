"""Weight-space augmentations of batched INRs.

Geometric augmentations are exact in the sense of the paper's eq. 8: the augmented weights represent
g(x) = f(A^{-1} x) for every x, not an approximation on a grid. Coordinates are the stored [row, col] vectors of
`inr.grid`; an INR reads them only through its first layer (SIREN: layer0, h = W x + b) or its filters (MFN:
omega_i x + phi_i), so the new weights are W' = W A^{-1} and, for a shift t, b' = b - W t:

- `rotate(angle)`:    g(x) = f(R(angle)^T x), R(a) = [[cos a, -sin a], [sin a, cos a]]  ->  W' = W R^T
- `translate(shift)`: g(x) = f(x - shift)                                                ->  b' = b - W shift
- `scale(factor)`:    g(x) = f(x / factor)                                                ->  W' = W / factor

`intensity(gain, offset)` is exact too, on the values instead of the coordinates: g(x) = gain * f(x) + offset
changes the output layer only (W' = gain W, b' = gain b + offset), the weight-space twin of an image SimCLR's
colour jitter: it takes away the mean brightness and contrast that pairs of INRs of one image share.

Each takes one value for the whole batch or one per INR. Standard augmentations (Gaussian noise, dropout) and the
policy-driven `random_augment` draw one set of random values per INR, all in batched tensor operations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from inr.fields import Params, check_params
from inr.spec import FieldSpec
from inr.symmetry import apply_permutations, random_permutations


def input_layers(spec: FieldSpec) -> list[tuple[str, str]]:
    """(weight, bias) names of the layers that read the coordinates: SIREN layer0; MFN every filter."""
    if spec.arch == "siren":
        return [("layer0.weight", "layer0.bias")]
    return [(f"filter{i}.omega", f"filter{i}.phi") for i in range(spec.filters)]


def _per_inr(value: float | torch.Tensor, batch: int, like: torch.Tensor,
             trailing: tuple[int, ...] = ()) -> torch.Tensor:
    """`value` (a scalar, `trailing`-shaped, or `[B, *trailing]`) as a `[B, *trailing]` tensor like `like`."""
    t = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if tuple(t.shape) == trailing:
        t = t.expand(batch, *trailing)
    if tuple(t.shape) != (batch, *trailing):
        shapes = " or ".join(f"[{', '.join(map(str, s))}]" for s in (trailing, (batch, *trailing)))
        raise ValueError(f"expected a value of shape {shapes} for {batch} INRs, got {list(t.shape)}")
    return t


def _reference(params: Params) -> torch.Tensor:
    return next(iter(params.values()))


def rotate(spec: FieldSpec, params: Params, angle: float | torch.Tensor) -> Params:
    """g(x) = f(R(angle)^T x): the image rotated by `angle` radians (float or [B]) about the grid centre."""
    batch = check_params(spec, params)
    a = _per_inr(angle, batch, _reference(params))
    cos, sin = torch.cos(a), torch.sin(a)
    rot = torch.stack([torch.stack([cos, -sin], dim=-1), torch.stack([sin, cos], dim=-1)], dim=-2)  # [B, 2, 2]
    out = dict(params)
    for weight, _ in input_layers(spec):
        out[weight] = torch.bmm(params[weight], rot.transpose(1, 2))  # [B, n, 2] @ R^T
    return out


def translate(spec: FieldSpec, params: Params, shift: torch.Tensor | tuple[float, float]) -> Params:
    """g(x) = f(x - shift): the image moved by `shift` ([2] or [B, 2], (rows, cols) in coordinate units; the grid
    spans [-1, 1], so a shift of 2 / (H - 1) rows is one pixel down)."""
    batch = check_params(spec, params)
    t = _per_inr(shift, batch, _reference(params), trailing=(2,))
    out = dict(params)
    for weight, bias in input_layers(spec):
        out[bias] = params[bias] - torch.bmm(params[weight], t.unsqueeze(2)).squeeze(2)  # b - W t
    return out


def scale(spec: FieldSpec, params: Params, factor: float | torch.Tensor) -> Params:
    """g(x) = f(x / factor): the image enlarged by `factor` (float or [B]; > 1 zooms in) about the grid centre."""
    batch = check_params(spec, params)
    s = _per_inr(factor, batch, _reference(params))
    if bool((s == 0).any()):
        raise ValueError("scale factor must be non-zero")
    out = dict(params)
    for weight, _ in input_layers(spec):
        out[weight] = params[weight] / s[:, None, None]
    return out


def output_layer(spec: FieldSpec) -> tuple[str, str]:
    """(weight, bias) names of the layer that writes the values: SIREN's last layer, an MFN's last linear."""
    last = f"layer{spec.layers - 1}" if spec.arch == "siren" else f"linear{spec.filters - 1}"
    return f"{last}.weight", f"{last}.bias"


def intensity(spec: FieldSpec, params: Params, gain: float | torch.Tensor,
              offset: float | torch.Tensor = 0.0) -> Params:
    """g(x) = gain * f(x) + offset: contrast and brightness (float or [B] each, the same for every channel)."""
    batch = check_params(spec, params)
    ref = _reference(params)
    a, c = _per_inr(gain, batch, ref), _per_inr(offset, batch, ref)
    weight, bias = output_layer(spec)
    out = dict(params)
    out[weight] = params[weight] * a[:, None, None]
    out[bias] = params[bias] * a[:, None] + c[:, None]
    return out


def colour(spec: FieldSpec, params: Params, matrix: torch.Tensor) -> Params:
    """g(x) = M f(x): a linear map M of the output channels (colour balance, saturation), `matrix` [C, C] or
    [B, C, C]. Exact, as `intensity` is: only the output layer changes (W <- M W, b <- M b)."""
    batch = check_params(spec, params)
    ref = _reference(params)
    m = torch.as_tensor(matrix).to(device=ref.device, dtype=ref.dtype)
    m = m.expand(batch, -1, -1) if m.dim() == 2 else m
    if tuple(m.shape) != (batch, spec.out_dim, spec.out_dim):
        raise ValueError(f"colour matrix must be [{spec.out_dim}, {spec.out_dim}] or [{batch}, {spec.out_dim}, "
                         f"{spec.out_dim}] for this spec, got {list(m.shape)}")
    weight, bias = output_layer(spec)
    out = dict(params)
    out[weight] = m @ params[weight]  # [B, C, C] @ [B, C, H]
    out[bias] = (m @ params[bias][..., None])[..., 0]
    return out


def colour_matrix(gains: torch.Tensor, saturation: torch.Tensor) -> torch.Tensor:
    """[B, C, C]: per-channel gains `gains` [B, C] (colour balance), then saturation `saturation` [B] (0 = grey,
    1 = unchanged, > 1 = more saturated) around the luminance (Rec. 601 weights for 3 channels, the mean otherwise).
    With 1 channel the map is the gain alone."""
    channels = gains.shape[-1]
    luma = (torch.tensor([0.299, 0.587, 0.114], dtype=gains.dtype, device=gains.device) if channels == 3
            else torch.full((channels,), 1.0 / channels, dtype=gains.dtype, device=gains.device))
    eye = torch.eye(channels, dtype=gains.dtype, device=gains.device)
    s = saturation[:, None, None]
    blend = s * eye + (1 - s) * luma[None, None, :]  # [B, C, C]: every row mixes in the same grey
    return blend * gains[:, None, :]  # blend @ diag(gains)


# -- standard augmentations ----------------------------------------------------------------------------------------

def _generator_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def _randn(shape: tuple[int, ...], generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """Standard normal draws from `generator` (on its own device), delivered like `like`."""
    draw = torch.randn(shape, generator=generator, device=_generator_device(generator), dtype=torch.float32)
    return draw.to(device=like.device, dtype=like.dtype)


def _rand(shape: tuple[int, ...], generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    draw = torch.rand(shape, generator=generator, device=_generator_device(generator), dtype=torch.float32)
    return draw.to(device=like.device, dtype=like.dtype)


def tensor_std(t: torch.Tensor) -> torch.Tensor:
    """Per-INR std `[B]` of a parameter tensor `[B, ...]` over its own entries; a one-entry tensor (e.g. a grey
    output bias) has no spread, so its magnitude stands in for it."""
    flat = t.reshape(t.shape[0], -1)
    if flat.shape[1] == 1:
        return flat[:, 0].abs()
    return flat.std(dim=1, correction=0)


def add_noise(spec: FieldSpec, params: Params, std: float | torch.Tensor,
              generator: torch.Generator | None = None) -> Params:
    """Adds real Gaussian noise to every tensor: entry += N(0, 1) * std * (that tensor's std in that INR).
    `std` is relative, one float or one per INR ([B]; 0 leaves that INR exactly unchanged)."""
    batch = check_params(spec, params)
    out = {}
    for name, t in params.items():
        rel = _per_inr(std, batch, t)
        sigma = (rel * tensor_std(t)).reshape(batch, *([1] * (t.dim() - 1)))
        out[name] = t + _randn(tuple(t.shape), generator, t) * sigma
    return out


def dropout(spec: FieldSpec, params: Params, p: float | torch.Tensor,
            generator: torch.Generator | None = None) -> Params:
    """Sets each parameter entry to zero with probability `p` (one float or one per INR, [B]). The survivors are not
    rescaled by 1 / (1 - p): that would inflate every weight, including the frequencies of the first layer, and move
    the whole field instead of perturbing it."""
    batch = check_params(spec, params)
    out = {}
    for name, t in params.items():
        prob = _per_inr(p, batch, t)
        if bool(((prob < 0) | (prob > 1)).any()):
            raise ValueError("dropout probability must be in [0, 1]")
        keep = _rand(tuple(t.shape), generator, t) >= prob.reshape(batch, *([1] * (t.dim() - 1)))
        out[name] = t * keep
    return out


# -- random augmentation policy ------------------------------------------------------------------------------------

@dataclass
class AugmentPolicy:
    """What `random_augment` may do to each INR; every augmentation is applied to an INR with its own probability.

    Defaults (for SimCLR on MNIST/CIFAR-sized INRs, coordinates in [-1, 1]):
    - rotation: uniform in +-max_rotation = pi/6 (30 degrees), probability 0.5. Full turns (pi) are allowed but
      make 6 and 9 the same digit; a moderate range keeps object identity.
    - scale: log-uniform in [0.8, 1.25], probability 0.5 (zooming out shows the field outside [-1, 1], which the
      INR was never fitted on, so the range stays small).
    - translation: each axis uniform in +-0.2 coordinate units (about 3 pixels on a 28x28 grid), probability 0.5.
    - Gaussian noise: std 0.05 relative to each tensor's per-INR std, probability 0.5.
    - dropout: each entry zeroed with p = 0.05, probability 0.5.
    - intensity (contrast and brightness, `intensity`): probability 0, off as in the paper. On: gain log-uniform
      in [1 / max_gain, max_gain], offset uniform in +-max_offset (image values are in [0, 1]).
    - colour (the weight-space twin of SimCLR's colour jitter, `colour`): probability 0, off as in the paper. On:
      each channel's gain log-uniform in [1 / max_channel_gain, max_channel_gain], then saturation uniform in
      [1 - max_saturation, 1 + max_saturation]. On 1-channel images only the gain is left: a contrast change.
    - permutation: probability 0: a Relational Transformer with shared hidden-layer positions is invariant to it.
      Turn it on for encoders that are not (e.g. an MLP on flattened weights).
    Geometric parts compose as g(x) = f(R^T (x - t) / s): rotate, then scale, then translate, then intensity,
    colour, permute, noise and dropout.
    """

    rotation_prob: float = 0.5
    max_rotation: float = math.pi / 6
    scale_prob: float = 0.5
    min_scale: float = 0.8
    max_scale: float = 1.25
    translation_prob: float = 0.5
    max_translation: float = 0.2
    noise_prob: float = 0.5
    noise_std: float = 0.05
    dropout_prob: float = 0.5
    dropout: float = 0.05
    permute_prob: float = 0.0
    intensity_prob: float = 0.0
    max_gain: float = 1.5
    max_offset: float = 0.2
    colour_prob: float = 0.0
    max_channel_gain: float = 1.25
    max_saturation: float = 0.5

    def __post_init__(self) -> None:
        for name in ("rotation_prob", "scale_prob", "translation_prob", "noise_prob", "dropout_prob", "permute_prob",
                     "intensity_prob", "colour_prob", "dropout", "max_saturation"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"AugmentPolicy.{name} must be in [0, 1], got {value}")
        for name in ("max_rotation", "max_translation", "noise_std", "max_offset"):
            if getattr(self, name) < 0:
                raise ValueError(f"AugmentPolicy.{name} must be >= 0, got {getattr(self, name)}")
        if not 0 < self.min_scale <= self.max_scale:
            raise ValueError(f"AugmentPolicy needs 0 < min_scale <= max_scale, got {self.min_scale}, {self.max_scale}")
        for name in ("max_gain", "max_channel_gain"):
            if getattr(self, name) < 1:
                raise ValueError(f"AugmentPolicy.{name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def none(cls) -> AugmentPolicy:
        """A policy that changes nothing."""
        return cls(rotation_prob=0.0, scale_prob=0.0, translation_prob=0.0, noise_prob=0.0, dropout_prob=0.0,
                   permute_prob=0.0, intensity_prob=0.0, colour_prob=0.0)


@dataclass
class AugmentDraw:
    """One random draw per INR: the values `random_augment` applies (identity values where an augmentation is off)."""

    angle: torch.Tensor  # [B] radians, 0 where not rotated
    factor: torch.Tensor  # [B], 1 where not scaled
    shift: torch.Tensor  # [B, 2], 0 where not translated
    noise_std: torch.Tensor  # [B], 0 where no noise
    dropout: torch.Tensor  # [B], 0 where no dropout
    permute: torch.Tensor  # [B] bool
    gain: torch.Tensor  # [B], 1 where the intensity is unchanged
    offset: torch.Tensor  # [B], 0 where the intensity is unchanged
    colour: torch.Tensor  # [B, C, C], the identity where the colours are unchanged


def sample_augmentation(policy: AugmentPolicy, batch: int, generator: torch.Generator | None = None,
                        dtype: torch.dtype = torch.float32, channels: int = 1) -> AugmentDraw:
    """Draws the per-INR augmentation values of `policy` for INRs of `channels` output channels (always the same
    number of draws from `generator`, so a seed gives the same values whatever the probabilities). Tensors live on
    the generator's device."""
    device = _generator_device(generator)

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=generator, device=device, dtype=torch.float64)

    def chosen(prob: float) -> torch.Tensor:
        return uniform(batch) < prob

    rot_on, scale_on = chosen(policy.rotation_prob), chosen(policy.scale_prob)
    shift_on, noise_on = chosen(policy.translation_prob), chosen(policy.noise_prob)
    drop_on, perm_on = chosen(policy.dropout_prob), chosen(policy.permute_prob)
    angle = (uniform(batch) * 2 - 1) * policy.max_rotation
    log_lo, log_hi = math.log(policy.min_scale), math.log(policy.max_scale)
    factor = torch.exp(log_lo + uniform(batch) * (log_hi - log_lo))
    shift = (uniform(batch, 2) * 2 - 1) * policy.max_translation
    # Drawn after the others, so adding intensity did not change what a seed gives for the older augmentations.
    gain_on = chosen(policy.intensity_prob)
    gain = torch.exp((uniform(batch) * 2 - 1) * math.log(policy.max_gain))
    offset = (uniform(batch) * 2 - 1) * policy.max_offset
    # Colour last, for the same reason.
    colour_on = chosen(policy.colour_prob)
    gains = torch.exp((uniform(batch, channels) * 2 - 1) * math.log(policy.max_channel_gain))
    saturation = 1 + (uniform(batch) * 2 - 1) * policy.max_saturation
    eye = torch.eye(channels, dtype=torch.float64, device=device).expand(batch, -1, -1)
    return AugmentDraw(
        angle=torch.where(rot_on, angle, 0.0).to(dtype),
        factor=torch.where(scale_on, factor, 1.0).to(dtype),
        shift=torch.where(shift_on[:, None], shift, 0.0).to(dtype),
        noise_std=torch.where(noise_on, policy.noise_std, 0.0).to(dtype),
        dropout=torch.where(drop_on, policy.dropout, 0.0).to(dtype),
        permute=perm_on,
        gain=torch.where(gain_on, gain, 1.0).to(dtype),
        offset=torch.where(gain_on, offset, 0.0).to(dtype),
        colour=torch.where(colour_on[:, None, None], colour_matrix(gains, saturation), eye).to(dtype),
    )


def apply_augmentation(spec: FieldSpec, params: Params, draw: AugmentDraw,
                       generator: torch.Generator | None = None) -> Params:
    """Applies a drawn augmentation: rotate, scale, translate, intensity, colour, permute, noise, dropout (noise,
    dropout and permutations draw their random values from `generator`)."""
    batch = check_params(spec, params)
    device = _reference(params).device
    out = rotate(spec, params, draw.angle.to(device))
    out = scale(spec, out, draw.factor.to(device))
    out = translate(spec, out, draw.shift.to(device))
    if bool(((draw.gain != 1) | (draw.offset != 0)).any()):
        out = intensity(spec, out, draw.gain.to(device), draw.offset.to(device))
    eye = torch.eye(draw.colour.shape[-1], dtype=draw.colour.dtype, device=draw.colour.device)
    if not bool((draw.colour == eye).all()):
        out = colour(spec, out, draw.colour.to(device))
    if bool(draw.permute.any()):
        perms = random_permutations(spec, batch, generator, device=device)
        on = draw.permute.to(device)[:, None]
        perms = [torch.where(on, p, torch.arange(p.shape[1], device=device)) for p in perms]
        out = apply_permutations(spec, out, perms)
    if bool((draw.noise_std != 0).any()):
        out = add_noise(spec, out, draw.noise_std.to(device), generator)
    if bool((draw.dropout != 0).any()):
        out = dropout(spec, out, draw.dropout.to(device), generator)
    return out


def random_augment(spec: FieldSpec, params: Params, policy: AugmentPolicy,
                   generator: torch.Generator | None = None) -> Params:
    """One random augmentation per INR drawn from `policy`, applied to the whole batch at once."""
    batch = check_params(spec, params)
    draw = sample_augmentation(policy, batch, generator, dtype=_reference(params).dtype, channels=spec.out_dim)
    return apply_augmentation(spec, params, draw, generator)
