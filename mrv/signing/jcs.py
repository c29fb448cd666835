"""RFC 8785 (JCS) canonical JSON: exactly the bytes of ``rfc8785.dumps``, from a compiled encoder
when that provably gives the same bytes.

:func:`dumps` walks the value once. When it holds only dicts with ``str`` keys, lists, strings,
booleans, None, integers and floats of the kinds below, ``orjson`` (``OPT_SORT_KEYS``,
``OPT_STRICT_INTEGER``) writes it; anything else, and anything ``orjson`` refuses, goes to
``rfc8785`` itself, so results and errors are always those of ``rfc8785.dumps``.

Why the two agree on what the walk lets through:

* keys: JCS sorts by UTF-16 code units, orjson by UTF-8 bytes (= code points). The orders are the
  same unless a key holds a character at or above U+E000 (where a surrogate pair, U+D800..U+DFFF
  in UTF-16, sorts below it): such keys go to ``rfc8785``.
* strings: both write UTF-8, escape ``"`` and ``\\``, use ``\\b \\t \\n \\f \\r`` and lowercase
  ``\\u00xx`` for the other control characters, and nothing else. A lone surrogate cannot be
  UTF-8: orjson refuses it and ``rfc8785`` decides.
* integers: both write the decimal digits; beyond +/-(2**53 - 1) orjson refuses (strict integers)
  and ``rfc8785`` raises its own error.
* floats: ECMAScript's Number-to-String gives the shortest round-tripping digits, like orjson,
  but spells some values differently: an integral double has no fraction (``1.0`` -> ``1``,
  ``-0.0`` -> ``0``) and the switch to exponent notation is at other magnitudes. So an integral
  float within +/-(2**53 - 1) is written as the equal integer, and any other float must be
  finite with ``1e-4 <= |x| < 1e15``, where both write plain fixed notation with the same digits;
  any other float sends the whole value to ``rfc8785``.

``tests/mrv/signing/test_jcs.py`` checks the equality with hypothesis against ``rfc8785``.
"""

from __future__ import annotations

from typing import Any

import orjson
import rfc8785

_MAX_SAFE = 2**53 - 1
_HIGH = "\ue000"
_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_FLOAT_MIN = 1e-4
_FLOAT_MAX = 1e15


class _Unsupported(Exception):
    """The value needs ``rfc8785`` (see the module doc)."""


def _float(v: float) -> float | int:
    if v.is_integer():
        if -_MAX_SAFE <= v <= _MAX_SAFE:
            return int(v)
        raise _Unsupported
    a = -v if v < 0 else v
    if _FLOAT_MIN <= a < _FLOAT_MAX:
        return v
    raise _Unsupported  # NaN, infinities, very small or large magnitudes


def _prepare(value: Any) -> Any:
    """``value`` itself, or a copy with integral floats as ints; raises :class:`_Unsupported`."""
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return value
    if t is float:
        return _float(value)
    if t is dict:
        out = None
        for k, v in value.items():
            if type(k) is not str or (not k.isascii() and max(k) >= _HIGH):
                raise _Unsupported
            tv = type(v)
            if tv is str or tv is int or tv is bool or v is None:
                continue
            p = _prepare(v)
            if p is not v:
                if out is None:
                    out = dict(value)
                out[k] = p
        return value if out is None else out
    if t is list:
        out_l = None
        for i, v in enumerate(value):
            tv = type(v)
            if tv is str or tv is int or tv is bool or v is None:
                continue
            p = _prepare(v)
            if p is not v:
                if out_l is None:
                    out_l = list(value)
                out_l[i] = p
        return value if out_l is None else out_l
    raise _Unsupported


def dumps(value: Any) -> bytes:
    """``rfc8785.dumps(value)``: the same bytes, or the same exception (see the module doc)."""
    try:
        return orjson.dumps(_prepare(value), option=_OPTIONS)
    except (_Unsupported, TypeError, orjson.JSONEncodeError, RecursionError):
        return rfc8785.dumps(value)


__all__ = ["dumps"]
