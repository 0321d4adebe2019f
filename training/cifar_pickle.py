"""CIFAR python batches without running code from them.

The CIFAR-10/100 "python version" files are pickles, and unpickling runs whatever code the file names (a
`__reduce__` can call os.system). So `pickle.load` is never used on them. `_SafeUnpickler.find_class` resolves only
the globals that numpy needs to rebuild a plain numeric array (`_reconstruct`, `ndarray`, `dtype`, `_frombuffer`, and
`_codecs.encode` for latin-1 text in protocol-2 pickles) and maps each of them to a stand-in written here, made fresh
for every file, that checks its arguments and builds the array with `np.frombuffer` from the bytes in the file: no
numpy pickle machinery, no object arrays, no structured dtypes. Any other global (os.system, builtins.eval, ...) is
refused before it can be called, so a malicious batch fails with `InvalidImages` and runs nothing.
"""

from __future__ import annotations

import io
import math
import pickle
from typing import BinaryIO

import numpy as np

from training.sources import InvalidImages

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class _NDArrayType:
    """Stands in for numpy.ndarray: only an argument of `_reconstruct`, never callable."""

    def __call__(self, *args, **kwargs):
        raise pickle.UnpicklingError("numpy.ndarray may not be called")


_NUMERIC_DTYPES = {"u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f4", "f8", "b1"}


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, str):
        return value
    raise pickle.UnpicklingError(f"expected text, got {type(value).__name__}")


class _DType:
    """Stands in for numpy.dtype: a plain numeric type code, with the byte order set by __setstate__."""

    def __init__(self, code: object, align: object = False, copy: object = True) -> None:
        code = _text(code)
        if code not in _NUMERIC_DTYPES:
            raise pickle.UnpicklingError(f"dtype {code!r} is not a plain numeric type")
        self.code, self.order = code, "|" if code in ("u1", "i1", "b1") else "<"

    def __setstate__(self, state: object) -> None:
        if not isinstance(state, tuple) or len(state) < 2:
            raise pickle.UnpicklingError("malformed dtype state")
        order = _text(state[1])
        if order not in ("<", ">", "|", "="):
            raise pickle.UnpicklingError(f"dtype byte order {order!r}")
        if any(s is not None for s in state[2:5]):
            raise pickle.UnpicklingError("structured dtypes are not allowed")
        self.order = "<" if order == "=" else order

    def numpy(self) -> np.dtype:
        return np.dtype(self.order + self.code)


class _ArrayState:
    """Stands in for the empty array that `numpy.core.multiarray._reconstruct` makes; BUILD fills it from bytes."""

    array: np.ndarray | None = None

    def __setstate__(self, state: object) -> None:
        if not isinstance(state, tuple) or len(state) != 5:
            raise pickle.UnpicklingError("malformed array state")
        _, shape, dtype, fortran, raw = state
        self.array = _array_from_bytes(raw, dtype, shape, "F" if fortran else "C")


def _array_from_bytes(raw: object, dtype: object, shape: object, order: str) -> np.ndarray:
    if not isinstance(dtype, _DType):
        raise pickle.UnpicklingError("array without a numeric dtype")
    if isinstance(raw, str):
        raw = raw.encode("latin-1")
    if isinstance(raw, pickle.PickleBuffer):
        raw = bytes(raw.raw())
    if not isinstance(raw, (bytes, bytearray)):
        raise pickle.UnpicklingError("array data is not bytes (object arrays are not allowed)")
    if not isinstance(shape, tuple) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise pickle.UnpicklingError("malformed array shape")
    dt = dtype.numpy()
    if math.prod(shape) * dt.itemsize != len(raw):  # exact Python ints: no overflow
        raise pickle.UnpicklingError(f"array of shape {shape} does not match its {len(raw)} bytes of data")
    return np.frombuffer(bytes(raw), dtype=dt).reshape(shape, order=order)


def _frombuffer(buffer: object, dtype: object, shape: object, order: object) -> np.ndarray:
    return _array_from_bytes(buffer, dtype, shape, "F" if _text(order) == "F" else "C")


def _codecs_encode(text: object, encoding: object = "utf-8") -> bytes:
    # Python 3 writes bytes into protocol-2 pickles as _codecs.encode(str, "latin1").
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is allowed only for latin-1 text")
    return text.encode("latin-1")


class _SafeUnpickler(pickle.Unpickler):
    """Resolves only the numpy array globals, each to a stand-in made for this unpickler alone: BUILD may set
    attributes on the objects a pickle gets hold of, and fresh stand-ins keep that from reaching the next file."""

    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file, encoding="bytes")
        ndarray = _NDArrayType()

        def reconstruct(subtype: object, shape: object, code: object) -> _ArrayState:
            if subtype is not ndarray:
                raise pickle.UnpicklingError("_reconstruct of something other than numpy.ndarray")
            return _ArrayState()

        def frombuffer(buffer: object, dtype: object, shape: object, order: object) -> np.ndarray:
            return _frombuffer(buffer, dtype, shape, order)

        def codecs_encode(text: object, encoding: object = "utf-8") -> bytes:
            return _codecs_encode(text, encoding)

        dtype = type("dtype", (_DType,), {})
        self._allowed: dict[tuple[str, str], object] = {
            ("numpy.core.multiarray", "_reconstruct"): reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): reconstruct,
            ("numpy", "ndarray"): ndarray,
            ("numpy", "dtype"): dtype,
            ("numpy.core.numeric", "_frombuffer"): frombuffer,
            ("numpy._core.numeric", "_frombuffer"): frombuffer,
            ("_codecs", "encode"): codecs_encode,
        }

    def find_class(self, module: str, name: str) -> object:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused to load the global {module}.{name}") from None

    def persistent_load(self, pid: object) -> object:
        raise pickle.UnpicklingError("persistent ids are not allowed")


def unpickle(source: str, data: bytes) -> dict:
    """A CIFAR pickle -> dict with str keys; arrays come back as numpy arrays."""
    try:
        obj = _SafeUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, RecursionError, UnicodeDecodeError, OverflowError) as exc:
        raise InvalidImages(f"{source}: not a valid CIFAR python batch ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise InvalidImages(f"{source}: a CIFAR batch is a dict, got {type(obj).__name__}")
    out = {}
    for key, value in obj.items():
        if isinstance(value, _ArrayState):
            value = value.array
        try:
            out[_text(key)] = value
        except pickle.UnpicklingError:
            raise InvalidImages(f"{source}: dict key of type {type(key).__name__}") from None
    return out


def parse_batch(source: str, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [n, 3, 32, 32], labels int64 [n]) of one batch."""
    batch = unpickle(source, data)
    pixels = batch.get("data")
    labels = batch.get("labels", batch.get("fine_labels"))
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim != 2 or pixels.shape[1] != 3072:
        raise InvalidImages(f"{source}: 'data' must be a uint8 array [n, 3072] (32x32 RGB)")
    if isinstance(labels, np.ndarray):
        labels = labels.tolist()
    if not isinstance(labels, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in labels):
        raise InvalidImages(f"{source}: 'labels' must be a list of integers")
    if len(labels) != pixels.shape[0]:
        raise InvalidImages(f"{source}: {pixels.shape[0]} images but {len(labels)} labels")
    labels_array = np.asarray(labels, dtype=np.int64)
    if labels_array.size and (labels_array.min() < 0 or labels_array.max() > 99):
        raise InvalidImages(f"{source}: labels must lie in 0..99")
    return pixels.reshape(-1, 3, 32, 32), labels_array


def parse_class_names(source: str, meta: bytes | None, num_labels: int) -> list[str]:
    if meta is None:
        if num_labels <= 10:
            return list(CIFAR10_CLASSES)
        return [str(i) for i in range(num_labels)]
    d = unpickle(source, meta)
    names = d.get("label_names", d.get("fine_label_names"))
    if not isinstance(names, list) or not names:
        raise InvalidImages(f"{source}: no label_names list in the meta file")
    try:
        names = [_text(n) for n in names]
    except pickle.UnpicklingError:
        raise InvalidImages(f"{source}: label_names must be text") from None
    if len(names) < num_labels:
        raise InvalidImages(f"{source}: {len(names)} label names for labels up to {num_labels - 1}")
    return names
