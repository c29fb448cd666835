"""RFC 8785 (JCS) canonical JSON, fast for the documents the registry hashes.

:func:`dumps` gives exactly the bytes of ``rfc8785.dumps`` and raises the same errors. For a value
made of dicts with string keys, lists, strings, booleans, None and integers within +/-(2**53 - 1)
(what the audit log holds: it refuses floats), the standard library's C JSON encoder already
writes the JCS form: keys sorted, no whitespace, ``\\b \\t \\n \\f \\r \\" \\\\`` and ``\\u00xx``
escapes for the other control characters, everything else as UTF-8. Two differences are ruled out
by the walk before it: JCS sorts keys by UTF-16 code units and Python by code points, which only
disagree for characters at and above U+E000, and a lone surrogate is an error in UTF-8. Anything
else (floats, big integers, other types, such keys) goes to ``rfc8785`` itself.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

_MAX_SAFE = 2**53 - 1
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False).encode
_HIGH = "\ue000"


def _plain(value: Any) -> bool:
    """True when the standard encoder writes ``value`` exactly as JCS does (see the module doc)."""
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is str or v is None or t is bool:
            continue
        if t is int:
            if -_MAX_SAFE <= v <= _MAX_SAFE:
                continue
            return False
        if t is dict:
            for k in v:
                if type(k) is not str or (k and not k.isascii() and max(k) >= _HIGH):
                    return False
            stack.extend(v.values())
            continue
        if t is list:
            stack.extend(v)
            continue
        return False
    return True


def dumps(value: Any) -> bytes:
    """``rfc8785.dumps(value)``, faster for plain documents (see the module doc)."""
    if _plain(value):
        try:
            return _encode(value).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: rfc8785 decides what to do with it
            pass
    return rfc8785.dumps(value)


__all__ = ["dumps"]
