"""JSON from untrusted sources with bounded nesting: the depth is measured before `json.loads` recurses into it.

Python's decoder recurses once per nested array or object: a body of a few hundred KB of "[" reaches the interpreter's
recursion limit (RecursionError, not a ValueError, so callers that catch decode errors answer 500). `nesting_depth`
counts brackets outside strings in linear time, without recursion and without decoding anything.
"""

from __future__ import annotations

import json

import numpy as np

_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPEN, _CLOSE = (ord("["), ord("{")), (ord("]"), ord("}"))
_CHUNK = 1 << 20  # bytes per vectorised step: memory stays a few MB whatever the size of the text

DEFAULT_MAX_DEPTH = 32


class TooDeep(ValueError):
    """JSON nested deeper than allowed."""


def nesting_depth(text: str | bytes | bytearray | memoryview) -> int:
    """The deepest nesting of arrays and objects in `text` (0 for a scalar), brackets in strings not counted.

    Valid or not, the answer bounds the recursion a decoder does on it: a decoder stops where the text stops being
    JSON, and the deepest level of that prefix is at most the deepest level of the whole text. Vectorised (numpy, in
    chunks): a string starts or ends at every quote not preceded by an odd run of backslashes."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    deepest = depth = 0
    in_string, backslashes = 0, 0  # carried from one chunk to the next
    for start in range(0, len(raw), _CHUNK):
        chunk = np.frombuffer(raw, dtype=np.uint8, count=min(_CHUNK, len(raw) - start), offset=start)
        quotes = chunk == _QUOTE
        plain = chunk != _BACKSLASH
        if backslashes or not plain.all():  # some quote may be escaped
            at = np.arange(len(chunk), dtype=np.int32)
            # index of the last non-backslash byte at or before each position (a run carried in counts as before 0)
            last_plain = np.maximum.accumulate(np.where(plain, at, np.int32(-1 - backslashes)))
            run_before = at - 1 - np.concatenate(([-1 - backslashes], last_plain[:-1]))
            quotes &= run_before % 2 == 0
            backslashes = int(len(chunk) - 1 - last_plain[-1])
        outside = (in_string + np.cumsum(quotes, dtype=np.int32)) % 2 == 0
        steps = (((chunk == _OPEN[0]) | (chunk == _OPEN[1])) & outside).astype(np.int32)
        steps -= ((chunk == _CLOSE[0]) | (chunk == _CLOSE[1])) & outside
        levels = np.cumsum(steps, dtype=np.int32)
        deepest, depth = max(deepest, depth + int(levels.max())), depth + int(levels[-1])
        in_string = int(not outside[-1])
    return deepest


def check_depth(text: str | bytes | bytearray | memoryview, max_depth: int = DEFAULT_MAX_DEPTH,
                what: str = "JSON") -> None:
    """Raises TooDeep when `text` nests arrays and objects deeper than `max_depth`."""
    depth = nesting_depth(text)
    if depth > max_depth:
        raise TooDeep(f"{what} is nested {depth} levels deep; the limit is {max_depth}")


def loads(text: str | bytes | bytearray, max_depth: int = DEFAULT_MAX_DEPTH, what: str = "JSON") -> object:
    """json.loads after check_depth: TooDeep or json.JSONDecodeError (both ValueError) on bad input."""
    check_depth(text, max_depth, what)
    return json.loads(text)
