"""FieldSpec: the architecture of a neural field, independent of its weights."""

from __future__ import annotations

import json
import math
import operator
from dataclasses import asdict, dataclass

ARCHITECTURES = ("siren", "mfn")
SIZE_FIELDS = ("out_dim", "hidden", "layers", "filters")


@dataclass(frozen=True)
class SpecLimits:
    """Upper bounds of a FieldSpec's sizes. They are checked with arithmetic alone, before any list of parameter
    names or any tensor is made: a spec read from a file of a few hundred bytes may claim millions of layers."""

    out_dim: int = 64
    hidden: int = 8192
    layers: int = 256  # SIREN
    filters: int = 256  # MFN
    params: int = 1 << 28  # parameters of one INR (1 GiB of float32)


# Every FieldSpec obeys these; a service that reads specs from users checks its own, tighter ones (check_limits).
LIBRARY_LIMITS = SpecLimits()


@dataclass(frozen=True)
class FieldSpec:
    """Architecture of a batched neural field R^2 -> R^out_dim.

    SIREN (paper eq. 3): `layers` linear layers, sine after every one but the last, h -> sin(omega0 * (W h + b)).
    MFN / FourierNet (paper eq. 4): `filters` sine filters g_i(x) = sin(omega_i x + phi_i), multiplied into
    `filters - 1` hidden linear layers, then a linear output layer.

    MFN `input_scale` is in radians per pixel: at initialisation each filter's frequencies are drawn
    U(-1, 1) / sqrt(2) * input_scale / sqrt(filters) radians per pixel of the grid the field is fitted on
    (see `inr.init`'s `grid_size`). With the paper's 3.03 (MNIST) and 3.46 (CIFAR-10) and 3 filters, the sum of the
    filters' largest frequencies, the network's band limit, starts near pi radians per pixel: the Nyquist frequency.
    """

    arch: str
    out_dim: int = 1
    hidden: int = 32
    layers: int = 3  # SIREN: number of linear layers (3 = 2-32-32-out)
    omega0: float = 30.0  # SIREN
    filters: int = 3  # MFN: number of sine filters (= number of linear layers)
    input_scale: float = 3.03  # MFN, radians per pixel

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.arch!r}; expected one of {ARCHITECTURES}")
        for name in SIZE_FIELDS:  # numpy integers become ints (equal hashes); floats, bools and text are refused
            value = getattr(self, name)
            if isinstance(value, bool):
                raise ValueError(f"{name} must be an integer, got {value!r}")
            try:
                object.__setattr__(self, name, operator.index(value))
            except TypeError:
                raise ValueError(f"{name} must be an integer, got {_short(value)}") from None
        for name in ("omega0", "input_scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {_short(value)}")
        if self.out_dim < 1 or self.hidden < 1:
            raise ValueError("out_dim and hidden must be positive")
        if self.arch == "siren" and self.layers < 2:
            raise ValueError("a SIREN needs at least 2 layers")
        if self.arch == "mfn" and self.filters < 1:
            raise ValueError("an MFN needs at least 1 filter")
        self.check_limits(LIBRARY_LIMITS)

    def check_limits(self, limits: SpecLimits) -> None:
        """Raises ValueError naming the first size over `limits` (arithmetic only: nothing is allocated)."""
        depth = ("layers", self.layers) if self.arch == "siren" else ("filters", self.filters)
        for name, value in (("out_dim", self.out_dim), ("hidden", self.hidden), depth):
            limit = getattr(limits, name)
            if value > limit:
                raise ValueError(f"{name}={value} is over the limit of {limit}")
        if self.num_params > limits.params:
            raise ValueError(f"{self.num_params} parameters per INR is over the limit of {limits.params}")

    @classmethod
    def siren(cls, out_dim: int = 1, hidden: int = 32, layers: int = 3, omega0: float = 30.0) -> FieldSpec:
        return cls("siren", out_dim=out_dim, hidden=hidden, layers=layers, omega0=float(omega0), filters=0,
                   input_scale=0.0)

    @classmethod
    def mfn(cls, out_dim: int = 1, hidden: int = 16, filters: int = 3, input_scale: float = 3.03) -> FieldSpec:
        return cls("mfn", out_dim=out_dim, hidden=hidden, layers=0, omega0=0.0, filters=filters,
                   input_scale=float(input_scale))

    # -- serialisation -------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        if self.arch == "siren":
            for k in ("filters", "input_scale"):
                d.pop(k)
        else:
            for k in ("layers", "omega0"):
                d.pop(k)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> FieldSpec:
        d = dict(d)
        arch = d.pop("arch", None)
        if arch == "siren":
            return cls.siren(**d)
        if arch == "mfn":
            return cls.mfn(**d)
        raise ValueError(f"unknown architecture {arch!r}; expected one of {ARCHITECTURES}")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, s: str) -> FieldSpec:
        return cls.from_dict(json.loads(s))

    # -- parameters ----------------------------------------------------------------------------------------------
    def layer_sizes(self) -> list[int]:
        """Widths of the computation graph's layers, input first: SIREN [2, 32, 32, 1]; MFN [2, 16, 16, 16, 1]."""
        if self.arch == "siren":
            return [2] + [self.hidden] * (self.layers - 1) + [self.out_dim]
        return [2] + [self.hidden] * self.filters + [self.out_dim]

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Ordered parameter names -> shapes, without the batch dimension.

        SIREN: layer{i}.weight [out, in], layer{i}.bias [out] for i < layers.
        MFN: filter{i}.omega [hidden, 2], filter{i}.phi [hidden] for i < filters; linear{i}.weight, linear{i}.bias
        for i < filters, where linear{i} maps z^(i+1) to the next hidden layer and the last one is the output layer.
        """
        sizes = self.layer_sizes()
        shapes: dict[str, tuple[int, ...]] = {}
        if self.arch == "siren":
            for i in range(self.layers):
                shapes[f"layer{i}.weight"] = (sizes[i + 1], sizes[i])
                shapes[f"layer{i}.bias"] = (sizes[i + 1],)
            return shapes
        for i in range(self.filters):
            shapes[f"filter{i}.omega"] = (self.hidden, 2)
            shapes[f"filter{i}.phi"] = (self.hidden,)
        for i in range(self.filters):
            shapes[f"linear{i}.weight"] = (sizes[i + 2], sizes[i + 1])
            shapes[f"linear{i}.bias"] = (sizes[i + 2],)
        return shapes

    @property
    def num_params(self) -> int:
        """Parameters of one INR, counted without building param_shapes() (equal to the sum over its shapes)."""
        h, out = self.hidden, self.out_dim
        if self.arch == "siren":  # 2 -> h, (layers - 2) times h -> h, h -> out; weights and biases
            return 3 * h + (self.layers - 2) * (h + 1) * h + (h + 1) * out
        # filters: omega [h, 2] and phi [h] each; linear layers: (filters - 1) times h -> h, then h -> out
        return 3 * h * self.filters + (self.filters - 1) * (h + 1) * h + (h + 1) * out


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
